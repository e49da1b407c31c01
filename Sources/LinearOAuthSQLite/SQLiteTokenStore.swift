import Foundation
import LinearOAuth
import Logging
import SQLiteNIO

/// The embedded ``TokenStore``: one SQLite file in WAL mode, shared safely by several processes on
/// one machine. The refresh lock is SQLite's write lock (`BEGIN IMMEDIATE`), waited for up to the
/// lock timeout through SQLite's busy timeout.
public final class SQLiteTokenStore: TokenStore {
    /// The database file.
    public let path: String
    /// How long a writer waits for the file's write lock (and so for another holder's refresh). The
    /// default outlasts two calls to Linear (15 s each), which a refresh or revocation holds it across.
    public let lockTimeout: Duration

    private let threadPool: NIOThreadPool
    private let readers: SQLiteConnectionPool
    private let writers: SQLiteConnectionPool

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
        let busyMilliseconds = Self.milliseconds(lockTimeout)
        let open: @Sendable () async throws -> SQLiteConnection = {
            let connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: threadPool, logger: logger,
                on: MultiThreadedEventLoopGroup.singleton.any())
            do {
                // busy_timeout replaces SQLiteNIO's default handler, which retries forever.
                _ = try await connection.query("PRAGMA busy_timeout = \(busyMilliseconds)")
                _ = try await connection.query("PRAGMA journal_mode = WAL")
                // FULL: a committed refresh token survives power loss, not just a crash.
                _ = try await connection.query("PRAGMA synchronous = FULL")
            } catch {
                try? await connection.close()
                throw Self.mapError(error, organizationID: nil)
            }
            return connection
        }
        self.readers = SQLiteConnectionPool(capacity: maxConnections, makeConnection: open)
        self.writers = SQLiteConnectionPool(capacity: maxConnections, makeConnection: open)
    }

    // MARK: - Migrations

    /// Schema versions, in order; each runs once, in one transaction.
    static let migrations: [(version: Int, name: String, statements: [String])] = [
        (1, "create linear_tokens", [
            """
            CREATE TABLE linear_tokens (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                organization_id TEXT NOT NULL UNIQUE,
                app_user_id TEXT NOT NULL,
                access_token BLOB NOT NULL,
                refresh_token BLOB NOT NULL,
                expires_at INTEGER NOT NULL,
                scopes TEXT NOT NULL DEFAULT '',
                key_id TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'reauthorization_required')),
                last_refresh_at INTEGER,
                last_error TEXT,
                refresh_failures INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX linear_tokens_key_id ON linear_tokens (key_id)",
            "CREATE INDEX linear_tokens_status_expires_at ON linear_tokens (status, expires_at)",
        ]),
        (2, "create linear_app_tokens", [
            """
            CREATE TABLE linear_app_tokens (
                client_id TEXT PRIMARY KEY,
                access_token BLOB NOT NULL,
                expires_at INTEGER NOT NULL,
                scopes TEXT NOT NULL DEFAULT '',
                key_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT
            """,
        ]),
        (3, "create linear_oauth_states", [
            """
            CREATE TABLE linear_oauth_states (
                state TEXT PRIMARY KEY,
                code_verifier BLOB NOT NULL,
                expires_at INTEGER NOT NULL,
                created_at INTEGER NOT NULL
            ) STRICT
            """,
        ]),
        (4, "add linear_tokens.installed_at", [
            "ALTER TABLE linear_tokens ADD COLUMN installed_at INTEGER NOT NULL DEFAULT 0",
            "UPDATE linear_tokens SET installed_at = created_at",
        ]),
    ]

    public func migrate() async throws {
        try await write(organizationID: nil) { connection in
            _ = try await connection.query("""
                CREATE TABLE IF NOT EXISTS linear_oauth_schema_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT
                """)
            let current = try await connection.query("SELECT COALESCE(MAX(version), 0) AS version FROM linear_oauth_schema_migrations")
                .first?.column("version")?.integer ?? 0
            let latest = Self.migrations.last!.version
            guard current <= latest else {
                throw TokenStoreError.schemaTooNew(databaseVersion: Int(current), supportedVersion: latest)
            }
            for migration in Self.migrations where migration.version > current {
                for statement in migration.statements { _ = try await connection.query(statement) }
                _ = try await connection.query(
                    "INSERT INTO linear_oauth_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    [.integer(numericCast(migration.version)), .text(migration.name), .integer(Self.microseconds(Date()))])
            }
        }
    }

    // MARK: - TokenStore

    static let columns = """
        organization_id, app_user_id, access_token, refresh_token, expires_at, scopes, key_id, status,
        last_refresh_at, last_error, refresh_failures, created_at, updated_at, installed_at
        """
    static let metadataColumns = """
        organization_id, app_user_id, expires_at, scopes, key_id, status,
        last_refresh_at, last_error, refresh_failures, created_at, updated_at, installed_at
        """

    public func save(_ installations: [SealedInstallation]) async throws {
        guard !installations.isEmpty else { return }
        try await write(organizationID: nil) { connection in
            for installation in installations { try await Self.upsert(installation, on: connection) }
        }
    }

    public func load(organizationID: String) async throws -> SealedInstallation? {
        try await read { connection in
            try await connection.query(
                "SELECT \(Self.columns) FROM linear_tokens WHERE organization_id = ?", [.text(organizationID)]
            ).first.map(Self.decodeSealed)
        }
    }

    public func delete(organizationID: String) async throws -> Bool {
        try await write(organizationID: nil) { connection in
            !(try await connection.query(
                "DELETE FROM linear_tokens WHERE organization_id = ? RETURNING organization_id", [.text(organizationID)]
            ).isEmpty)
        }
    }

    public func listMetadata() async throws -> [InstallationMetadata] {
        try await read { connection in
            try await connection.query("SELECT \(Self.metadataColumns) FROM linear_tokens ORDER BY organization_id")
                .map(Self.decodeMetadata)
        }
    }

    public func page(after organizationID: String?, limit: Int, matching filter: InstallationFilter) async throws
        -> [SealedInstallation]
    {
        var conditions = ["organization_id > ?"]
        var binds: [SQLiteData] = [.text(organizationID ?? "")]
        switch filter {
        case .all: break
        case .notSealedUnder(let keyID):
            conditions.append("key_id <> ?")
            binds.append(.text(keyID))
        case .activeExpiringBefore(let date):
            conditions.append("status = 'active' AND expires_at < ?")
            binds.append(.integer(Self.microseconds(date)))
        }
        binds.append(.integer(numericCast(limit)))
        let sql = "SELECT \(Self.columns) FROM linear_tokens WHERE \(conditions.joined(separator: " AND ")) ORDER BY organization_id LIMIT ?"
        return try await read { connection in
            try await connection.query(sql, binds).map(Self.decodeSealed)
        }
    }

    private struct Transaction: TokenStoreTransaction {
        let connection: SQLiteConnection
        let organizationID: String

        func save(_ installation: SealedInstallation) async throws {
            guard installation.organizationID == organizationID else {
                throw TokenStoreError.database(
                    "the refresh lock of organization \(organizationID) cannot write organization \(installation.organizationID)")
            }
            do {
                try await SQLiteTokenStore.upsert(installation, on: connection)
            } catch {
                throw SQLiteTokenStore.mapError(error, organizationID: organizationID)
            }
        }

        func delete() async throws {
            do {
                _ = try await connection.query("DELETE FROM linear_tokens WHERE organization_id = ?", [.text(organizationID)])
            } catch {
                throw SQLiteTokenStore.mapError(error, organizationID: organizationID)
            }
        }
    }

    public func withRefreshLock<Result: Sendable>(
        organizationID: String,
        _ body: (SealedInstallation?, any TokenStoreTransaction) async throws -> Result
    ) async throws -> Result {
        try await write(organizationID: organizationID) { connection in
            let row = try await connection.query(
                "SELECT \(Self.columns) FROM linear_tokens WHERE organization_id = ?", [.text(organizationID)]
            ).first.map(Self.decodeSealed)
            return try await body(row, Transaction(connection: connection, organizationID: organizationID))
        }
    }

    public func resealBatch(
        notSealedUnder keyID: String, limit: Int, _ reseal: (SealedInstallation) throws -> SealedInstallation
    ) async throws -> Int {
        try await write(organizationID: nil) { connection in
            let rows = try await connection.query(
                "SELECT \(Self.columns) FROM linear_tokens WHERE key_id <> ? ORDER BY organization_id LIMIT ?",
                [.text(keyID), .integer(numericCast(limit))]
            ).map(Self.decodeSealed)
            for row in rows {
                let resealed = try reseal(row)
                _ = try await connection.query(
                    "UPDATE linear_tokens SET access_token = ?, refresh_token = ?, key_id = ? WHERE organization_id = ?",
                    [.blob(ByteBuffer(bytes: resealed.accessToken)), .blob(ByteBuffer(bytes: resealed.refreshToken)),
                     .text(resealed.keyID), .text(row.organizationID)])
            }
            return rows.count
        }
    }

    public func loadAppToken(clientID: String) async throws -> SealedAppToken? {
        try await read { connection in
            try await connection.query(
                "SELECT client_id, access_token, expires_at, scopes, key_id FROM linear_app_tokens WHERE client_id = ?",
                [.text(clientID)]
            ).first.map(Self.decodeAppToken)
        }
    }

    public func saveAppToken(_ token: SealedAppToken) async throws {
        try await write(organizationID: nil) { connection in
            let now = SQLiteData.integer(Self.microseconds(Date()))
            _ = try await connection.query(
                """
                INSERT INTO linear_app_tokens (client_id, access_token, expires_at, scopes, key_id, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (client_id) DO UPDATE SET access_token = excluded.access_token, expires_at = excluded.expires_at,
                    scopes = excluded.scopes, key_id = excluded.key_id, updated_at = excluded.updated_at
                """,
                [.text(token.clientID), .blob(ByteBuffer(bytes: token.accessToken)), .integer(Self.microseconds(token.expiresAt)),
                 .text(token.scopes.joined(separator: " ")), .text(token.keyID), now, now])
        }
    }

    public func resealAppTokens(notSealedUnder keyID: String, _ reseal: (SealedAppToken) throws -> SealedAppToken) async throws -> Int {
        try await write(organizationID: nil) { connection in
            let tokens = try await connection.query(
                "SELECT client_id, access_token, expires_at, scopes, key_id FROM linear_app_tokens WHERE key_id <> ?", [.text(keyID)]
            ).map(Self.decodeAppToken)
            for token in tokens {
                let resealed = try reseal(token)
                _ = try await connection.query(
                    "UPDATE linear_app_tokens SET access_token = ?, key_id = ? WHERE client_id = ?",
                    [.blob(ByteBuffer(bytes: resealed.accessToken)), .text(resealed.keyID), .text(token.clientID)])
            }
            return tokens.count
        }
    }

    public func saveAuthorizationState(_ state: String, sealedVerifier: [UInt8], expiresAt: Date) async throws {
        try await write(organizationID: nil) { connection in
            let now = Date()
            _ = try await connection.query("DELETE FROM linear_oauth_states WHERE expires_at < ?", [.integer(Self.microseconds(now))])
            _ = try await connection.query(
                "INSERT INTO linear_oauth_states (state, code_verifier, expires_at, created_at) VALUES (?, ?, ?, ?)",
                [.text(state), .blob(ByteBuffer(bytes: sealedVerifier)), .integer(Self.microseconds(expiresAt)), .integer(Self.microseconds(now))])
        }
    }

    public func takeAuthorizationState(_ state: String) async throws -> (sealedVerifier: [UInt8], expiresAt: Date)? {
        try await write(organizationID: nil) { connection in
            try await connection.query(
                "DELETE FROM linear_oauth_states WHERE state = ? RETURNING code_verifier, expires_at", [.text(state)]
            ).first.map { row in (try Self.bytes(row, "code_verifier"), try Self.date(row, "expires_at")) }
        }
    }

    static func decodeAppToken(_ row: SQLiteRow) throws -> SealedAppToken {
        SealedAppToken(
            clientID: try text(row, "client_id"), accessToken: try bytes(row, "access_token"),
            expiresAt: try date(row, "expires_at"), scopes: try text(row, "scopes").split(separator: " ").map(String.init),
            keyID: try text(row, "key_id"))
    }

    public func close() async throws {
        try await readers.close()
        try await writers.close()
        try await threadPool.shutdownGracefully()
    }

    // MARK: - Plumbing

    private func read<Result>(_ body: (SQLiteConnection) async throws -> Result) async throws -> Result {
        do {
            return try await readers.withConnection(
                timeout: lockTimeout, onTimeout: { TokenStoreError.database("timed out waiting for a free SQLite connection") }, body)
        } catch {
            throw Self.mapError(error, organizationID: nil)
        }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: it holds the database's write lock, commits
    /// when `body` returns and rolls back when it throws.
    private func write<Result>(organizationID: String?, _ body: (SQLiteConnection) async throws -> Result) async throws -> Result {
        let lockError: @Sendable () -> any Error = {
            organizationID.map { TokenStoreError.lockTimeout(organizationID: $0) }
                ?? TokenStoreError.database("timed out waiting for the SQLite write lock")
        }
        do {
            return try await writers.withConnection(timeout: lockTimeout, onTimeout: lockError) { connection in
                do {
                    _ = try await connection.query("BEGIN IMMEDIATE")
                } catch let error as SQLiteError where Self.isBusy(error) {
                    throw lockError()
                }
                do {
                    let result = try await body(connection)
                    _ = try await connection.query("COMMIT")
                    return result
                } catch {
                    do {
                        _ = try await connection.query("ROLLBACK")
                    } catch {
                        // Still inside a transaction, holding the write lock: never hand it out again.
                        try? await connection.close()
                    }
                    throw error
                }
            }
        } catch {
            throw Self.mapError(error, organizationID: organizationID)
        }
    }

    private static func isBusy(_ error: SQLiteError) -> Bool {
        switch error.reason {
        case .busy, .busyTimeout, .busyInRecovery, .busyInSnapshot, .locked: true
        default: false
        }
    }

    /// Maps SQLite errors to ``TokenStoreError``; errors of the caller's own pass through.
    static func mapError(_ error: any Error, organizationID: String?) -> any Error {
        guard let error = error as? SQLiteError else { return error }
        if isBusy(error), let organizationID { return TokenStoreError.lockTimeout(organizationID: organizationID) }
        return TokenStoreError.database("SQLite: \(error.message)")
    }

    static func upsert(_ installation: SealedInstallation, on connection: SQLiteConnection) async throws {
        let m = installation.metadata
        let now = SQLiteData.integer(microseconds(Date()))
        let lastRefreshAt: SQLiteData = m.lastRefreshAt.map { .integer(microseconds($0)) } ?? .null
        let lastError: SQLiteData = m.lastError.map { .text($0) } ?? .null
        let binds: [SQLiteData] = [
            .text(m.organizationID), .text(m.appUserID),
            .blob(ByteBuffer(bytes: installation.accessToken)), .blob(ByteBuffer(bytes: installation.refreshToken)),
            .integer(microseconds(m.expiresAt)), .text(m.scopes.joined(separator: " ")), .text(m.keyID),
            .text(m.status.rawValue), lastRefreshAt, lastError, .integer(numericCast(m.refreshFailures)), now, now,
            .integer(microseconds(m.installedAt)),
        ]
        _ = try await connection.query(
            """
            INSERT INTO linear_tokens (\(columns))
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (organization_id) DO UPDATE SET
                app_user_id = excluded.app_user_id, access_token = excluded.access_token,
                refresh_token = excluded.refresh_token, expires_at = excluded.expires_at,
                scopes = excluded.scopes, key_id = excluded.key_id, status = excluded.status,
                last_refresh_at = excluded.last_refresh_at, last_error = excluded.last_error,
                refresh_failures = excluded.refresh_failures, updated_at = excluded.updated_at,
                installed_at = excluded.installed_at
            """,
            binds)
    }

    static func decodeSealed(_ row: SQLiteRow) throws -> SealedInstallation {
        SealedInstallation(
            metadata: try decodeMetadata(row),
            accessToken: try bytes(row, "access_token"),
            refreshToken: try bytes(row, "refresh_token"))
    }

    static func decodeMetadata(_ row: SQLiteRow) throws -> InstallationMetadata {
        let statusText = try text(row, "status")
        guard let status = InstallationStatus(rawValue: statusText) else {
            throw TokenStoreError.database("unknown installation status \"\(statusText)\"")
        }
        let scopes = try text(row, "scopes")
        return InstallationMetadata(
            organizationID: try text(row, "organization_id"),
            appUserID: try text(row, "app_user_id"),
            expiresAt: try date(row, "expires_at"),
            scopes: scopes.split(separator: " ").map(String.init),
            status: status,
            keyID: try text(row, "key_id"),
            lastRefreshAt: row.column("last_refresh_at")?.integer.map(date(microseconds:)),
            lastError: row.column("last_error")?.string,
            refreshFailures: Int(row.column("refresh_failures")?.integer ?? 0),
            createdAt: try date(row, "created_at"),
            updatedAt: try date(row, "updated_at"),
            installedAt: try date(row, "installed_at"))
    }

    private static func text(_ row: SQLiteRow, _ name: String) throws -> String {
        guard case .text(let value) = row.column(name) else { throw TokenStoreError.database("column \(name) is missing") }
        return value
    }

    private static func bytes(_ row: SQLiteRow, _ name: String) throws -> [UInt8] {
        guard case .blob(let buffer) = row.column(name) else { throw TokenStoreError.database("column \(name) is missing") }
        return Array(buffer.readableBytesView)
    }

    private static func date(_ row: SQLiteRow, _ name: String) throws -> Date {
        guard case .integer(let value) = row.column(name) else { throw TokenStoreError.database("column \(name) is missing") }
        return date(microseconds: value)
    }

    /// Times are stored as microseconds since the Unix epoch (UTC): PostgreSQL's precision.
    static func microseconds(_ date: Date) -> SQLiteInt64 {
        SQLiteInt64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    static func date(microseconds: SQLiteInt64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
