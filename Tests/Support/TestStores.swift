import Foundation
import LinearOAuth
import LinearOAuthPostgres
import LinearOAuthSQLite

/// The two store backends; the store suites run against both.
public enum StoreKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }
}

/// A store with a database of its own for one test, and its `DATABASE_URL` for child processes.
public struct TestStore: Sendable {
    public let store: any TokenStore
    public let databaseURL: String
    public let kind: StoreKind
    /// The SQLite file, for the SQLite store.
    public let sqlitePath: String?
    /// The database settings, for the PostgreSQL store.
    public let postgres: DatabaseURL.PostgresSettings?

    /// Opens another store on the same database (another connection pool, as another process would).
    public func openAnother(lockTimeout: Duration = .seconds(5)) async throws -> any TokenStore {
        let store: any TokenStore
        switch kind {
        case .sqlite: store = try SQLiteTokenStore(path: sqlitePath!, lockTimeout: lockTimeout)
        case .postgres: store = PostgresTokenStore(settings: postgres!, lockTimeout: lockTimeout, minConnections: 0, connectionTimeout: .seconds(60))
        }
        do {
            try await store.migrate()
        } catch {
            try? await store.close()
            throw error
        }
        return store
    }
}

/// Runs `body` with a migrated, empty store of `kind`, removed afterwards.
public func withTestStore<Result>(
    _ kind: StoreKind, lockTimeout: Duration = .seconds(5), migrate: Bool = true,
    _ body: (TestStore) async throws -> Result
) async throws -> Result {
    SecretAudit.start()
    switch kind {
    case .sqlite:
        let directory = try TemporaryDirectory()
        let path = directory.path + "/tokens.sqlite"
        let store = try SQLiteTokenStore(path: path, lockTimeout: lockTimeout)
        if migrate { try await store.migrate() }
        let test = TestStore(store: store, databaseURL: "sqlite:\(path)", kind: .sqlite, sqlitePath: path, postgres: nil)
        return try await running(body, test) { try? await store.close(); directory.remove() }
    case .postgres:
        let settings = try await PostgresTestServer.shared.createDatabase()
        // Patient: the fault suite may be loading the same server.
        let store = PostgresTokenStore(settings: settings, lockTimeout: lockTimeout, minConnections: 0, connectionTimeout: .seconds(60))
        if migrate { try await store.migrate() }
        let url = "postgres://\(settings.username)@\(settings.host):\(settings.port)/\(settings.database)?sslmode=disable"
        let test = TestStore(store: store, databaseURL: url, kind: .postgres, sqlitePath: nil, postgres: settings)
        return try await running(body, test) {
            try? await store.close()
            try? await PostgresTestServer.shared.dropDatabase(settings)
        }
    }
}

private func running<Result>(
    _ body: (TestStore) async throws -> Result, _ store: TestStore, cleanup: () async -> Void
) async throws -> Result {
    do {
        let result = try await body(store)
        await cleanup()
        return result
    } catch {
        await cleanup()
        throw error
    }
}

/// A directory under the system's temporary directory, removed by ``remove()``.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("linear-oauth-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

import Logging
import PostgresNIO
import SQLiteNIO

extension TestStore {
    /// Runs raw SQL on the test database over a separate connection (for tampering and inspection).
    public func execute(_ sql: String) async throws {
        switch kind {
        case .sqlite:
            _ = try await sqliteRows(sql)
        case .postgres:
            try await withPostgresConnection { connection in
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "linear-oauth.test"))
            }
        }
    }

    /// Every byte the database holds on disk or in a dump: the SQLite file with its WAL, or `pg_dump`'s output.
    public func dump() async throws -> Data {
        switch kind {
        case .sqlite:
            var data = Data()
            for suffix in ["", "-wal", "-shm", "-journal"] {
                if let bytes = FileManager.default.contents(atPath: sqlitePath! + suffix) { data.append(bytes) }
            }
            return data
        case .postgres:
            let settings = postgres!
            let binary = (try? ThrowawayCluster.binDirectory()).map { $0 + "/pg_dump" } ?? "/usr/bin/pg_dump"
            let output = try await runProcess(
                URL(fileURLWithPath: binary),
                ["-h", settings.host, "-p", String(settings.port), "-U", settings.username, "--no-owner", settings.database],
                environment: childEnvironment(settings.password.map { ["PGPASSWORD": $0.value] } ?? [:]))
            guard output.status == 0 else { throw TestSupportError("pg_dump failed: \(output.stderr)") }
            return Data(output.stdout.utf8)
        }
    }
}

extension TestStore {
    /// The columns of a table, as the database itself reports them.
    public func columns(of table: String) async throws -> Set<String> {
        switch kind {
        case .sqlite:
            return Set(try await sqliteRows("SELECT name FROM pragma_table_info('\(table)')").compactMap { $0.column("name")?.string })
        case .postgres:
            var names: Set<String> = []
            try await withPostgresConnection { connection in
                let rows = try await connection.query(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = \(table)",
                    logger: Logger(label: "linear-oauth.test"))
                for try await name in rows.decode(String.self) { names.insert(name) }
            }
            return names
        }
    }

    /// The tables of the database (PostgreSQL: in the public schema).
    public func tables() async throws -> Set<String> {
        switch kind {
        case .sqlite:
            return Set(try await sqliteRows("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .compactMap { $0.column("name")?.string })
        case .postgres:
            var names: Set<String> = []
            try await withPostgresConnection { connection in
                let rows = try await connection.query(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'", logger: Logger(label: "linear-oauth.test"))
                for try await name in rows.decode(String.self) { names.insert(name) }
            }
            return names
        }
    }

    /// The migrations the store recorded, in order: version and name.
    public func appliedMigrations() async throws -> [String] {
        switch kind {
        case .sqlite:
            return try await sqliteRows("SELECT version, name FROM linear_oauth_schema_migrations ORDER BY version").map {
                "\($0.column("version")?.integer ?? -1) \($0.column("name")?.string ?? "?")"
            }
        case .postgres:
            var applied: [String] = []
            try await withPostgresConnection { connection in
                let rows = try await connection.query(
                    "SELECT version, name FROM linear_oauth_schema_migrations ORDER BY version", logger: Logger(label: "linear-oauth.test"))
                for try await (version, name) in rows.decode((Int, String).self) { applied.append("\(version) \(name)") }
            }
            return applied
        }
    }

    func sqliteRows(_ sql: String) async throws -> [SQLiteRow] {
        let connection = try await SQLiteConnection.open(storage: .file(path: sqlitePath!))
        do {
            let rows = try await connection.query(sql)
            try await connection.close()
            return rows
        } catch {
            try? await connection.close()
            throw error
        }
    }

    public func withPostgresConnection(_ body: (PostgresConnection) async throws -> Void) async throws {
        let settings = postgres!
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: settings.host, port: settings.port, username: settings.username,
                password: settings.password?.value, database: settings.database, tls: .disable),
            id: 3, logger: Logger(label: "linear-oauth.test"))
        do {
            try await body(connection)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }
}
