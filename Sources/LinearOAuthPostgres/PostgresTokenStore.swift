import Foundation
import LinearOAuth
import Logging
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

private final class LeasePhase: Sendable {
    let value = Atomic<Int>(0)
}

/// A value handed to a child task that is known to finish before the value's owner returns.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// The shared ``TokenStore`` for any number of processes: PostgreSQL through a `PostgresClient`
/// connection pool. The refresh lock is the organization's row lock (`SELECT ... FOR UPDATE`) under
/// a `lock_timeout`.
public final class PostgresTokenStore: TokenStore {
    /// The connection pool.
    public let client: PostgresClient
    /// How long a locking statement waits for another holder's row lock.
    public let lockTimeout: Duration
    /// How long a transaction waits for a pooled connection, and a single statement for its answer,
    /// before it fails as unavailable (503 in the service).
    public let connectionTimeout: Duration
    private let logger: Logger
    private let runTask: Task<Void, Never>
    /// The URL settings, when the store was made from them (for ``checkConnection()``).
    private let settings: DatabaseURL.PostgresSettings?

    /// Connects with settings parsed from a `postgres://` URL and starts the pool.
    /// Call ``migrate()`` before use and ``close()`` when done.
    public convenience init(
        settings: DatabaseURL.PostgresSettings, lockTimeout: Duration = .seconds(35), maxConnections: Int = 20,
        connectionTimeout: Duration = .seconds(5), logger: Logger = Logger(label: "linear-oauth.postgres")
    ) {
        var configuration = Self.configuration(settings)
        configuration.options.maximumConnections = maxConnections
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
        self.runTask = Task { await client.run() }
    }

    /// Connects once outside the pool, so that an unreachable server or a refused login fails at
    /// once with a clear error. (The pool itself waits for the server to come back: right for a
    /// running service, wrong for a command that has just started.) ``migrate()`` calls it first.
    public func checkConnection() async throws {
        guard let settings else { return }
        let configuration: PostgresConnection.Configuration
        if let socket = settings.unixSocketPath {
            configuration = .init(
                unixSocketPath: socket, username: settings.username, password: settings.password?.value,
                database: settings.database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch Self.tls(settings.sslMode) {
            case .disable: tls = .disable
            case .prefer(let tlsConfiguration): tls = .prefer(try NIOSSLContext(configuration: tlsConfiguration))
            case .require(let tlsConfiguration): tls = .require(try NIOSSLContext(configuration: tlsConfiguration))
            }
            configuration = .init(
                host: settings.host, port: settings.port, username: settings.username,
                password: settings.password?.value, database: settings.database, tls: tls)
        }
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try await connection.close()
        } catch {
            let location = settings.unixSocketPath ?? "\(settings.host):\(settings.port)"
            let reason = (Self.mapError(error, organizationID: nil) as? TokenStoreError).map { error in
                if case .database(let message) = error { return message }
                return error.description
            } ?? "\(error)"
            throw TokenStoreError.database("cannot connect to \(location) as \(settings.username): \(reason)")
        }
    }

    private enum TLSChoice {
        case disable
        case prefer(TLSConfiguration)
        case require(TLSConfiguration)
    }

    /// libpq's `sslmode` meanings: `prefer` and `require` encrypt without checking the certificate,
    /// `verify-ca` checks the chain, `verify-full` also the host name.
    private static func tls(_ mode: DatabaseURL.PostgresSettings.SSLMode) -> TLSChoice {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable:
            return .disable
        case .allow, .prefer:
            configuration.certificateVerification = .none
            return .prefer(configuration)
        case .require:
            configuration.certificateVerification = .none
            return .require(configuration)
        case .verifyCA:
            configuration.certificateVerification = .noHostnameVerification
            return .require(configuration)
        case .verifyFull:
            return .require(configuration)
        }
    }

    /// The `PostgresClient` configuration for URL settings, with libpq's `sslmode` meanings.
    public static func configuration(_ settings: DatabaseURL.PostgresSettings) -> PostgresClient.Configuration {
        if let socket = settings.unixSocketPath {
            return PostgresClient.Configuration(
                unixSocketPath: socket, username: settings.username, password: settings.password?.value,
                database: settings.database)
        }
        let tls: PostgresClient.Configuration.TLS
        switch Self.tls(settings.sslMode) {
        case .disable: tls = .disable
        case .prefer(let configuration): tls = .prefer(configuration)
        case .require(let configuration): tls = .require(configuration)
        }
        return PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password?.value,
            database: settings.database, tls: tls)
    }

    // MARK: - Migrations

    /// Schema versions, in order; each runs once, in one transaction. Same meaning as SQLite's.
    static let migrations: [(version: Int, name: String, statements: [String])] = [
        (1, "create linear_tokens", [
            """
            CREATE TABLE linear_tokens (
                id BIGSERIAL PRIMARY KEY,
                organization_id TEXT NOT NULL UNIQUE,
                app_user_id TEXT NOT NULL,
                access_token BYTEA NOT NULL,
                refresh_token BYTEA NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL,
                scopes TEXT NOT NULL DEFAULT '',
                key_id TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'reauthorization_required')),
                last_refresh_at TIMESTAMPTZ,
                last_error TEXT,
                refresh_failures INTEGER NOT NULL DEFAULT 0,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX linear_tokens_key_id ON linear_tokens (key_id)",
            "CREATE INDEX linear_tokens_status_expires_at ON linear_tokens (status, expires_at)",
        ]),
        (2, "create linear_app_tokens", [
            """
            CREATE TABLE linear_app_tokens (
                client_id TEXT PRIMARY KEY,
                access_token BYTEA NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL,
                scopes TEXT NOT NULL DEFAULT '',
                key_id TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
        ]),
        (3, "create linear_oauth_states", [
            """
            CREATE TABLE linear_oauth_states (
                state TEXT PRIMARY KEY,
                code_verifier BYTEA NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
        ]),
        (4, "add linear_tokens.installed_at", [
            "ALTER TABLE linear_tokens ADD COLUMN installed_at TIMESTAMPTZ",
            "UPDATE linear_tokens SET installed_at = created_at",
            "ALTER TABLE linear_tokens ALTER COLUMN installed_at SET NOT NULL",
        ]),
    ]

    /// Serializes concurrent migrators across processes (an arbitrary, fixed advisory lock key).
    static let migrationLockKey: Int64 = 0x4C_494E_4F41_5554

    public func migrate() async throws {
        try await checkConnection()
        try await transaction(organizationID: nil) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", logger: self.logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS linear_oauth_schema_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: self.logger)
            var current = 0
            for try await version in try await connection.query(
                "SELECT COALESCE(MAX(version), 0) FROM linear_oauth_schema_migrations", logger: self.logger
            ).decode(Int.self) {
                current = version
            }
            let latest = Self.migrations.last!.version
            guard current <= latest else {
                throw TokenStoreError.schemaTooNew(databaseVersion: current, supportedVersion: latest)
            }
            for migration in Self.migrations where migration.version > current {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO linear_oauth_schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: self.logger)
            }
        }
    }

    // MARK: - TokenStore

    static let columns = """
        organization_id, app_user_id, access_token, refresh_token, expires_at, scopes, key_id, status, \
        last_refresh_at, last_error, refresh_failures, created_at, updated_at, installed_at
        """
    static let metadataColumns = """
        organization_id, app_user_id, expires_at, scopes, key_id, status, \
        last_refresh_at, last_error, refresh_failures, created_at, updated_at, installed_at
        """

    public func save(_ installations: [SealedInstallation]) async throws {
        guard !installations.isEmpty else { return }
        try await transaction(organizationID: nil) { connection in
            for installation in installations { try await self.upsert(installation, on: connection) }
        }
    }

    public func load(organizationID: String) async throws -> SealedInstallation? {
        try await run(organizationID: nil) {
            try await self.rows(
                "SELECT \(unescaped: Self.columns) FROM linear_tokens WHERE organization_id = \(organizationID)"
            ).first.map(Self.decodeSealed)
        }
    }

    public func delete(organizationID: String) async throws -> Bool {
        // One transaction, under the lock timeout: the row and its notification go together, and a
        // refresh holding the row delays the delete by at most the lock timeout.
        try await transaction(organizationID: organizationID) { connection in
            let deleted = !(try await connection.query(
                "DELETE FROM linear_tokens WHERE organization_id = \(organizationID) RETURNING organization_id", logger: self.logger
            ).collect().isEmpty)
            if deleted {
                try await connection.query("SELECT pg_notify(\(Self.changesChannel), \(organizationID))", logger: self.logger)
            }
            return deleted
        }
    }

    public func listMetadata() async throws -> [InstallationMetadata] {
        try await run(organizationID: nil) {
            try await self.rows(
                "SELECT \(unescaped: Self.metadataColumns) FROM linear_tokens ORDER BY organization_id").map(Self.decodeMetadata)
        }
    }

    public func page(after organizationID: String?, limit: Int, matching filter: InstallationFilter) async throws
        -> [SealedInstallation]
    {
        let after = organizationID ?? ""
        let query: PostgresQuery
        switch filter {
        case .all:
            query = """
                SELECT \(unescaped: Self.columns) FROM linear_tokens WHERE organization_id > \(after)
                ORDER BY organization_id LIMIT \(limit)
                """
        case .notSealedUnder(let keyID):
            query = """
                SELECT \(unescaped: Self.columns) FROM linear_tokens WHERE organization_id > \(after) AND key_id <> \(keyID)
                ORDER BY organization_id LIMIT \(limit)
                """
        case .activeExpiringBefore(let date):
            query = """
                SELECT \(unescaped: Self.columns) FROM linear_tokens
                WHERE organization_id > \(after) AND status = 'active' AND expires_at < \(date)
                ORDER BY organization_id LIMIT \(limit)
                """
        }
        return try await run(organizationID: nil) {
            try await self.rows(query).map(Self.decodeSealed)
        }
    }

    private struct Transaction: TokenStoreTransaction, @unchecked Sendable {
        // Used only inside the locked body, on the task that runs it.
        let connection: PostgresConnection
        let organizationID: String
        let store: PostgresTokenStore

        func save(_ installation: SealedInstallation) async throws {
            guard installation.organizationID == organizationID else {
                throw TokenStoreError.database(
                    "the refresh lock of organization \(organizationID) cannot write organization \(installation.organizationID)")
            }
            do {
                try await store.upsert(installation, on: connection)
            } catch {
                throw PostgresTokenStore.mapError(error, organizationID: organizationID)
            }
        }

        func delete() async throws {
            do {
                try await connection.query(
                    "DELETE FROM linear_tokens WHERE organization_id = \(organizationID)", logger: store.logger)
                try await connection.query(
                    "SELECT pg_notify(\(PostgresTokenStore.changesChannel), \(organizationID))", logger: store.logger)
            } catch {
                throw PostgresTokenStore.mapError(error, organizationID: organizationID)
            }
        }
    }

    public func withRefreshLock<Result: Sendable>(
        organizationID: String,
        _ body: (SealedInstallation?, any TokenStoreTransaction) async throws -> Result
    ) async throws -> Result {
        try await transaction(organizationID: organizationID) { connection in
            let row = try await connection.query(
                "SELECT \(unescaped: Self.columns) FROM linear_tokens WHERE organization_id = \(organizationID) FOR UPDATE",
                logger: self.logger
            ).collect().first.map(Self.decodeSealed)
            return try await body(row, Transaction(connection: connection, organizationID: organizationID, store: self))
        }
    }

    public func resealBatch(
        notSealedUnder keyID: String, limit: Int, _ reseal: (SealedInstallation) throws -> SealedInstallation
    ) async throws -> Int {
        try await transaction(organizationID: nil) { connection in
            // FOR UPDATE waits for a refresh holding a row; READ COMMITTED then re-checks the
            // condition, so a row the refresh already sealed under the new key drops out.
            let rows = try await connection.query(
                """
                SELECT \(unescaped: Self.columns) FROM linear_tokens WHERE key_id <> \(keyID)
                ORDER BY organization_id LIMIT \(limit) FOR UPDATE
                """,
                logger: self.logger
            ).collect().map(Self.decodeSealed)
            for row in rows {
                let resealed = try reseal(row)
                try await connection.query(
                    """
                    UPDATE linear_tokens SET access_token = \(ByteBuffer(bytes: resealed.accessToken)),
                        refresh_token = \(ByteBuffer(bytes: resealed.refreshToken)), key_id = \(resealed.keyID)
                    WHERE organization_id = \(row.organizationID)
                    """,
                    logger: self.logger)
            }
            return rows.count
        }
    }

    public func loadAppToken(clientID: String) async throws -> SealedAppToken? {
        try await run(organizationID: nil) {
            try await self.rows(
                "SELECT client_id, access_token, expires_at, scopes, key_id FROM linear_app_tokens WHERE client_id = \(clientID)").first.map(Self.decodeAppToken)
        }
    }

    public func saveAppToken(_ token: SealedAppToken) async throws {
        try await run(organizationID: nil) {
            _ = try await self.rows(
                """
                INSERT INTO linear_app_tokens (client_id, access_token, expires_at, scopes, key_id)
                VALUES (\(token.clientID), \(ByteBuffer(bytes: token.accessToken)), \(token.expiresAt),
                    \(token.scopes.joined(separator: " ")), \(token.keyID))
                ON CONFLICT (client_id) DO UPDATE SET access_token = excluded.access_token, expires_at = excluded.expires_at,
                    scopes = excluded.scopes, key_id = excluded.key_id, updated_at = now()
                """)
        }
    }

    public func resealAppTokens(notSealedUnder keyID: String, _ reseal: (SealedAppToken) throws -> SealedAppToken) async throws -> Int {
        try await transaction(organizationID: nil) { connection in
            let tokens = try await connection.query(
                "SELECT client_id, access_token, expires_at, scopes, key_id FROM linear_app_tokens WHERE key_id <> \(keyID) FOR UPDATE",
                logger: self.logger
            ).collect().map(Self.decodeAppToken)
            for token in tokens {
                let resealed = try reseal(token)
                try await connection.query(
                    """
                    UPDATE linear_app_tokens SET access_token = \(ByteBuffer(bytes: resealed.accessToken)), key_id = \(resealed.keyID)
                    WHERE client_id = \(token.clientID)
                    """,
                    logger: self.logger)
            }
            return tokens.count
        }
    }

    public func saveAuthorizationState(_ state: String, sealedVerifier: [UInt8], expiresAt: Date) async throws {
        try await transaction(organizationID: nil) { connection in
            try await connection.query("DELETE FROM linear_oauth_states WHERE expires_at < now()", logger: self.logger)
            try await connection.query(
                """
                INSERT INTO linear_oauth_states (state, code_verifier, expires_at)
                VALUES (\(state), \(ByteBuffer(bytes: sealedVerifier)), \(expiresAt))
                """,
                logger: self.logger)
        }
    }

    public func takeAuthorizationState(_ state: String) async throws -> (sealedVerifier: [UInt8], expiresAt: Date)? {
        try await run(organizationID: nil) {
            try await self.rows(
                "DELETE FROM linear_oauth_states WHERE state = \(state) RETURNING code_verifier, expires_at").first.map { row in
                let (verifier, expiresAt) = try row.decode((ByteBuffer, Date).self)
                return (Array(verifier.readableBytesView), expiresAt)
            }
        }
    }

    static func decodeAppToken(_ row: PostgresRow) throws -> SealedAppToken {
        let (clientID, access, expiresAt, scopes, keyID) = try row.decode((String, ByteBuffer, Date, String, String).self)
        return SealedAppToken(
            clientID: clientID, accessToken: Array(access.readableBytesView), expiresAt: expiresAt,
            scopes: scopes.split(separator: " ").map(String.init), keyID: keyID)
    }

    public func close() async throws {
        runTask.cancel()
        await runTask.value
    }

    // MARK: - Plumbing

    private func run<Result>(organizationID: String?, _ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch {
            throw Self.mapError(error, organizationID: organizationID)
        }
    }

    /// Runs one statement (outside a transaction: reads, and single-statement writes that take no
    /// row lock) on a pooled connection and collects its rows. If no answer has come within
    /// ``connectionTimeout`` (the server is down, or a connection hangs around its restart), the
    /// caller gets "unavailable" and the statement is left to finish or fail on its own. One task
    /// and one event-loop timer per statement: this is the cold path of every token lookup.
    private func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let client = self.client, logger = self.logger, limit = connectionTimeout
        return try await withCheckedThrowingContinuation { continuation in
            let answer = ResumeOnce(continuation)
            let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(Int64(limit.timeInterval * 1e9))) {
                answer.resume(throwing: TokenStoreError.database(
                    "PostgreSQL did not answer within \(Self.milliseconds(limit)) ms; is the server up?"))
            }
            Task {
                do {
                    let rows = try await client.withConnection { try await $0.query(query, logger: logger).collect() }
                    timer.cancel()
                    answer.resume(with: .success(rows))
                } catch {
                    timer.cancel()
                    answer.resume(throwing: error)
                }
            }
        }
    }

    /// A pooled connection, waited for at most ``connectionTimeout``: while the server is down the
    /// pool would wait for it forever, and callers should hear "unavailable" instead. Once the body
    /// runs, it is not timed (a refresh holds its lock while it calls Linear).
    private func withConnection<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let timeout = connectionTimeout
        let client = self.client
        return try await withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            // 0: waiting for a connection, 1: running the body, 2: timed out (the body must not run).
            let phase = LeasePhase()
            let timedOut = TokenStoreError.database("no connection to PostgreSQL within \(Self.milliseconds(timeout)) ms; is the server up?")
            return try await withThrowingTaskGroup(of: Result?.self) { group in
                group.addTask {
                    try await client.withConnection { connection in
                        guard phase.value.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged else {
                            throw timedOut
                        }
                        return try await work.value(connection)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                while let next = try await group.next() {
                    if let result = next {
                        group.cancelAll()
                        return result
                    }
                    if phase.value.compareExchange(expected: 0, desired: 2, ordering: .acquiringAndReleasing).exchanged {
                        group.cancelAll()
                        throw timedOut
                    }
                }
                throw CancellationError()
            }
        }
    }

    /// Runs `body` in a transaction with the lock timeout set: commits when it returns, rolls back
    /// when it throws.
    private func transaction<Result: Sendable>(
        organizationID: String?, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await run(organizationID: organizationID) {
            try await withConnection { connection in
                try await connection.query("BEGIN", logger: self.logger)
                do {
                    try await connection.query(
                        "SET LOCAL lock_timeout = '\(unescaped: String(Self.milliseconds(self.lockTimeout)))ms'",
                        logger: self.logger)
                    let result = try await body(connection)
                    try await connection.query("COMMIT", logger: self.logger)
                    return result
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: self.logger)
                    throw error
                }
            }
        }
    }

    /// Maps PostgresNIO errors to ``TokenStoreError``; the caller's own errors pass through.
    static func mapError(_ error: any Error, organizationID: String?) -> any Error {
        guard let error = error as? PSQLError else { return error }
        if let state = error.serverInfo?[.sqlState] {
            if state == PostgresError.Code.lockNotAvailable.raw {
                if let organizationID { return TokenStoreError.lockTimeout(organizationID: organizationID) }
                return TokenStoreError.database("timed out waiting for rows locked by another transaction; try again")
            }
            return TokenStoreError.database("PostgreSQL \(state): \(error.serverInfo?[.message] ?? "error")")
        }
        let underlying = error.underlying.map { ": \($0)" } ?? ""
        return TokenStoreError.database("PostgreSQL \(error.code)\(underlying)")
    }

    func upsert(_ installation: SealedInstallation, on connection: PostgresConnection) async throws {
        let m = installation.metadata
        try await connection.query(
            """
            INSERT INTO linear_tokens (\(unescaped: Self.columns))
            VALUES (\(m.organizationID), \(m.appUserID), \(ByteBuffer(bytes: installation.accessToken)),
                \(ByteBuffer(bytes: installation.refreshToken)), \(m.expiresAt), \(m.scopes.joined(separator: " ")),
                \(m.keyID), \(m.status.rawValue), \(m.lastRefreshAt), \(m.lastError), \(m.refreshFailures), now(), now(), \(m.installedAt))
            ON CONFLICT (organization_id) DO UPDATE SET
                app_user_id = excluded.app_user_id, access_token = excluded.access_token,
                refresh_token = excluded.refresh_token, expires_at = excluded.expires_at,
                scopes = excluded.scopes, key_id = excluded.key_id, status = excluded.status,
                last_refresh_at = excluded.last_refresh_at, last_error = excluded.last_error,
                refresh_failures = excluded.refresh_failures, updated_at = excluded.updated_at,
                installed_at = excluded.installed_at
            """,
            logger: logger)
        try await connection.query("SELECT pg_notify(\(Self.changesChannel), \(m.organizationID))", logger: logger)
    }

    /// The LISTEN/NOTIFY channel that carries the ids of organizations whose tokens changed.
    static let changesChannel = "linear_oauth_token_changes"

    public func watchChanges(_ onChange: @escaping @Sendable (String) -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: Self.changesChannel) { notifications in
                for try await notification in notifications { onChange(notification.payload) }
            }
        }
    }

    static func decodeSealed(_ row: PostgresRow) throws -> SealedInstallation {
        let (organizationID, appUserID, access, refresh, expiresAt, scopes, keyID, status, lastRefreshAt, lastError,
            refreshFailures, createdAt, updatedAt, installedAt) = try row.decode(
                (String, String, ByteBuffer, ByteBuffer, Date, String, String, String, Date?, String?, Int, Date, Date, Date).self)
        return SealedInstallation(
            metadata: try metadata(
                organizationID, appUserID, expiresAt, scopes, keyID, status, lastRefreshAt, lastError, refreshFailures,
                createdAt, updatedAt, installedAt),
            accessToken: Array(access.readableBytesView),
            refreshToken: Array(refresh.readableBytesView))
    }

    static func decodeMetadata(_ row: PostgresRow) throws -> InstallationMetadata {
        let (organizationID, appUserID, expiresAt, scopes, keyID, status, lastRefreshAt, lastError, refreshFailures,
            createdAt, updatedAt, installedAt) = try row.decode(
                (String, String, Date, String, String, String, Date?, String?, Int, Date, Date, Date).self)
        return try metadata(
            organizationID, appUserID, expiresAt, scopes, keyID, status, lastRefreshAt, lastError, refreshFailures,
            createdAt, updatedAt, installedAt)
    }

    private static func metadata(
        _ organizationID: String, _ appUserID: String, _ expiresAt: Date, _ scopes: String, _ keyID: String,
        _ status: String, _ lastRefreshAt: Date?, _ lastError: String?, _ refreshFailures: Int, _ createdAt: Date,
        _ updatedAt: Date, _ installedAt: Date
    ) throws -> InstallationMetadata {
        guard let status = InstallationStatus(rawValue: status) else {
            throw TokenStoreError.database("unknown installation status \"\(status)\"")
        }
        return InstallationMetadata(
            organizationID: organizationID, appUserID: appUserID, expiresAt: expiresAt,
            scopes: scopes.split(separator: " ").map(String.init), status: status, keyID: keyID,
            lastRefreshAt: lastRefreshAt, lastError: lastError, refreshFailures: refreshFailures,
            createdAt: createdAt, updatedAt: updatedAt, installedAt: installedAt)
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        max(1, duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
