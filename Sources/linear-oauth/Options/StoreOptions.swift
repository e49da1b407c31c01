import ArgumentParser
import Foundation
import LinearOAuth
import LinearOAuthPostgres
import LinearOAuthSQLite

/// Where the tokens are stored.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: ArgumentHelp(
            "postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=MODE, or sqlite:PATH. (env: DATABASE_URL; default: sqlite:./linear-oauth.sqlite)",
            valueName: "url"))
    var databaseURL: String?

    @Option(
        name: .customLong("lock-timeout"), parsing: .unconditional,
        help: ArgumentHelp(
            "Seconds to wait for another process's refresh or write lock. (env: LINEAR_OAUTH_LOCK_TIMEOUT; default: 35, longer than two Linear calls)",
            valueName: "seconds"))
    var lockTimeout: Double?

    @Option(
        name: .customLong("database-connections"), parsing: .unconditional,
        help: ArgumentHelp(
            "PostgreSQL connections this process opens at most (not used with SQLite); serve opens them all at start and keeps them. A refresh holds one while it calls Linear. (env: LINEAR_OAUTH_DATABASE_CONNECTIONS; default: 20)",
            valueName: "count"))
    var databaseConnections: Int?

    func validate() throws {
        if let databaseURL, case .postgres(let settings)? = try? DatabaseURL(parsing: databaseURL), settings.password != nil {
            Settings.warnSecretFlag("--database-url with a password", DatabaseURL.variable)
        }
    }

    /// The database URL the settings name.
    func url(_ settings: Settings) throws -> DatabaseURL {
        try DatabaseURL(parsing: settings.string(DatabaseURL.variable, flag: databaseURL))
    }

    /// Opens the store and applies pending migrations.
    /// - Parameter keepConnections: Keep every pooled PostgreSQL connection open, named
    ///   `linear-oauth serve` (a long-running process; see ``PostgresTokenStore``'s `minConnections`).
    func openStore(_ settings: Settings, keepConnections: Bool = false) async throws -> any TokenStore {
        let url = try url(settings)
        let lockTimeout = try settings.seconds(
            "LINEAR_OAUTH_LOCK_TIMEOUT", flag: lockTimeout, default: 35, name: "the lock timeout")
        let connections = try settings.count("LINEAR_OAUTH_DATABASE_CONNECTIONS", flag: databaseConnections, default: 20)
        guard connections > 0 else { throw ValidationError("LINEAR_OAUTH_DATABASE_CONNECTIONS must be at least 1") }
        let store: any TokenStore
        switch url {
        case .sqlite(let path): store = try SQLiteTokenStore(path: path, lockTimeout: lockTimeout)
        case .postgres(let settings):
            store = PostgresTokenStore(
                settings: settings, lockTimeout: lockTimeout, maxConnections: connections, minConnections: keepConnections ? connections : 0,
                applicationName: keepConnections ? "linear-oauth serve" : PostgresTokenStore.defaultApplicationName)
        }
        do {
            try await store.migrate()
        } catch {
            try? await store.close()
            throw error
        }
        return store
    }

    /// Opens the store, runs `body`, and closes the store whatever happens.
    /// Without `settings`: the command's (``CommandSettings``: the environment, or the development world).
    func withStore<Result>(
        _ settings: Settings? = nil, keepConnections: Bool = false, _ body: (any TokenStore) async throws -> Result
    ) async throws -> Result {
        let store = try await openStore(settings ?? CommandSettings.current(databaseURLFlag: databaseURL), keepConnections: keepConnections)
        do {
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Opens the store behind a vault with the configured keys (keys are checked first, so a
    /// missing key never touches the database).
    func withVault<Result>(
        _ keys: KeyOptions, _ settings: Settings? = nil, keepConnections: Bool = false, _ body: (TokenVault) async throws -> Result
    ) async throws -> Result {
        let settings = settings ?? CommandSettings.current(databaseURLFlag: databaseURL)
        let keyRing = try keys.keyRing(settings)
        return try await withStore(settings, keepConnections: keepConnections) { store in try await body(TokenVault(store: store, keyRing: keyRing)) }
    }
}
