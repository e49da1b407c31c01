import Foundation
import LinearOAuth
import Logging
import SQLiteNIO

/// The embedded ``TokenStore``: one SQLite file in WAL mode, shared safely by several processes on
/// one machine. The refresh lock is SQLite's write lock (`BEGIN IMMEDIATE`), waited for up to the
/// lock timeout through SQLite's busy timeout.
///
/// By aspect: `+Migrations`, `+Installations` (rows and the refresh lock), `+AppTokens`,
/// `+AuthorizationStates`, `+Connection` (transactions and errors), `+Rows` (encoding and decoding).
public final class SQLiteTokenStore: TokenStore {
    /// The database file.
    public let path: String
    /// How long a writer waits for the file's write lock (and so for another holder's refresh). The
    /// default outlasts two calls to Linear (15 s each), which a refresh or revocation holds it across.
    public let lockTimeout: Duration

    let threadPool: NIOThreadPool
    let readers: SQLiteConnectionPool
    let writers: SQLiteConnectionPool

    /// Opens (creating if needed, mode 0600) the SQLite file at `path`. Call ``migrate()`` before use.
    /// - Parameters:
    ///   - path: The database file.
    ///   - lockTimeout: How long to wait for the write lock before ``TokenStoreError/lockTimeout(organizationID:)``.
    ///   - maxConnections: Readers and writers each get up to this many connections.
    public init(path: String, lockTimeout: Duration = .seconds(35), maxConnections: Int = 4, logger: Logger = Logger(label: "linear-oauth.sqlite")) throws {
        self.path = path
        self.lockTimeout = lockTimeout
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw TokenStoreError.database("cannot create the SQLite file \(path)")
            }
        }
        // Writers waiting for the lock sleep in SQLite's busy handler on a pool thread: give them
        // their own threads so readers never starve.
        let threadPool = NIOThreadPool(numberOfThreads: 2 * maxConnections)
        threadPool.start()
        self.threadPool = threadPool
        let open = Self.opener(path: path, busyTimeout: lockTimeout, threadPool: threadPool, logger: logger)
        self.readers = SQLiteConnectionPool(capacity: maxConnections, makeConnection: open)
        self.writers = SQLiteConnectionPool(capacity: maxConnections, makeConnection: open)
    }

    public func close() async throws {
        try await readers.close()
        try await writers.close()
        try await threadPool.shutdownGracefully()
    }
}
