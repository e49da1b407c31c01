import Foundation
import LinearOAuth
import Logging
import PostgresNIO

/// The shared ``TokenStore`` for any number of processes: PostgreSQL through a `PostgresClient`
/// connection pool. The refresh lock is the organization's row lock (`SELECT ... FOR UPDATE`) under
/// a `lock_timeout`.
///
/// By aspect: `+Configuration` (URL settings, TLS, the first connection), `+Migrations`,
/// `+Installations` (rows and the refresh lock), `+AppTokens`, `+AuthorizationStates`, `+Changes`
/// (LISTEN/NOTIFY), `+Connection` (time-outs, transactions, errors), `+Rows`.
public final class PostgresTokenStore: TokenStore {
    /// The connection pool.
    public let client: PostgresClient
    /// How long a locking statement waits for another holder's row lock.
    public let lockTimeout: Duration
    /// How long a transaction waits for a pooled connection, and a single statement for its answer,
    /// before it fails as unavailable (503 in the service).
    public let connectionTimeout: Duration
    let logger: Logger
    private let runTask: Task<Void, Never>
    /// Keeps single statements' deadlines (``rows(_:)``).
    let watchdog: StatementWatchdog
    /// The URL settings, when the store was made from them (for ``checkConnection()``).
    let settings: DatabaseURL.PostgresSettings?

    /// Connects with settings parsed from a `postgres://` URL and starts the pool.
    /// Call ``migrate()`` before use and ``close()`` when done.
    ///
    /// - Parameters:
    ///   - maxConnections: The pool's size. A refresh holds a connection while it calls Linear, so
    ///     this also bounds the refreshes in flight.
    ///   - minConnections: Connections opened at start and kept while idle; the others close after
    ///     60 s idle. By default all of them (a fixed pool), which a long-running process wants:
    ///     each time a connection above the minimum goes idle the pool starts a 60 s timer, and a
    ///     cancelled timer's memory (about 0.4 kB) stays until it would have fired
    ///     (swiftlang/swift#60441), so memory would grow with the request rate (a `serve` with an
    ///     on-demand pool held 1.5 kB a request). A command that runs once can pass 0.
    ///   - keepAlive: An idle connection runs `SELECT 1` after this long, so that a connection that
    ///     died silently is found before a caller waits on it; `nil` turns it off. Like the idle
    ///     timer, it is started each time a connection goes idle, so memory holds about
    ///     0.4 kB × releases a second × this many seconds: 5 s by default (PostgresNIO's is 30 s).
    ///   - applicationName: What `pg_stat_activity` shows for the connections.
    public convenience init(
        settings: DatabaseURL.PostgresSettings, lockTimeout: Duration = .seconds(35), maxConnections: Int = 20,
        minConnections: Int? = nil, keepAlive: Duration? = .seconds(5), applicationName: String = defaultApplicationName,
        connectionTimeout: Duration = .seconds(5), logger: Logger = Logger(label: "linear-oauth.postgres")
    ) {
        let minConnections = minConnections ?? maxConnections
        precondition(maxConnections > 0 && (0...maxConnections).contains(minConnections), "0 <= minConnections <= maxConnections, 0 < maxConnections")
        var configuration = Self.configuration(settings, applicationName: applicationName)
        configuration.options.maximumConnections = maxConnections
        configuration.options.minimumConnections = minConnections
        configuration.options.keepAliveBehavior = keepAlive.map { PostgresClient.Configuration.Options.KeepAliveBehavior(frequency: $0) }
        // The pool warns when leased before `run()` has begun, which the run task started in `init`
        // cannot rule out; failures still surface as errors of the operations themselves.
        var backgroundLogger = logger
        backgroundLogger.logLevel = .error
        self.init(
            client: PostgresClient(configuration: configuration, backgroundLogger: backgroundLogger),
            lockTimeout: lockTimeout, connectionTimeout: connectionTimeout, logger: logger, settings: settings)
    }

    /// Uses a client you configured; the store runs it until ``close()``.
    public convenience init(
        client: PostgresClient, lockTimeout: Duration = .seconds(35), connectionTimeout: Duration = .seconds(5),
        logger: Logger = Logger(label: "linear-oauth.postgres")
    ) {
        self.init(client: client, lockTimeout: lockTimeout, connectionTimeout: connectionTimeout, logger: logger, settings: nil)
    }

    private init(
        client: PostgresClient, lockTimeout: Duration, connectionTimeout: Duration, logger: Logger, settings: DatabaseURL.PostgresSettings?
    ) {
        self.client = client
        self.lockTimeout = lockTimeout
        self.connectionTimeout = connectionTimeout
        self.logger = logger
        self.settings = settings
        self.watchdog = StatementWatchdog(timeout: connectionTimeout)
        self.runTask = Task { await client.run() }
    }

    public func close() async throws {
        watchdog.stop()
        runTask.cancel()
        await runTask.value
    }
}
