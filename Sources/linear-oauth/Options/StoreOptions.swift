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
        name: .customLong("lock-timeout"),
        help: ArgumentHelp(
            "Seconds to wait for another process's refresh or write lock. (env: LINEAR_OAUTH_LOCK_TIMEOUT; default: 35, longer than two Linear calls)",
            valueName: "seconds"))
    var lockTimeout: Double?

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
    func openStore(_ settings: Settings) async throws -> any TokenStore {
        let url = try url(settings)
        let lockTimeout = try settings.seconds(
            "LINEAR_OAUTH_LOCK_TIMEOUT", flag: lockTimeout, default: 35, name: "the lock timeout")
        let store: any TokenStore
        switch url {
        case .sqlite(let path): store = try SQLiteTokenStore(path: path, lockTimeout: lockTimeout)
        case .postgres(let settings): store = PostgresTokenStore(settings: settings, lockTimeout: lockTimeout)
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
    func withStore<Result>(_ settings: Settings? = nil, _ body: (any TokenStore) async throws -> Result) async throws -> Result {
        let store = try await openStore(settings ?? CommandSettings.current(databaseURLFlag: databaseURL))
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
        _ keys: KeyOptions, _ settings: Settings? = nil, _ body: (TokenVault) async throws -> Result
    ) async throws -> Result {
        let settings = settings ?? CommandSettings.current(databaseURLFlag: databaseURL)
        let keyRing = try keys.keyRing(settings)
        return try await withStore(settings) { store in try await body(TokenVault(store: store, keyRing: keyRing)) }
    }
}
