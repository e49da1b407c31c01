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

    /// Opens the store and applies pending migrations.
    func openStore(environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> any TokenStore {
        let url = try DatabaseURL(parsing: databaseURL ?? environment[DatabaseURL.variable])
        var timeout = lockTimeout
        if timeout == nil, let text = environment["LINEAR_OAUTH_LOCK_TIMEOUT"] {
            guard let seconds = Double(text) else {
                throw ValidationError("LINEAR_OAUTH_LOCK_TIMEOUT must be a number of seconds")
            }
            timeout = seconds
        }
        guard (timeout ?? 35) > 0 else { throw ValidationError("the lock timeout must be positive") }
        let lockTimeout = Duration.milliseconds(Int64((timeout ?? 35) * 1000))
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
}

/// The encryption keys.
struct KeyOptions: ParsableArguments {
    @Option(
        name: .customLong("encryption-keys"),
        help: ArgumentHelp(
            "Comma-separated ID:BASE64 32-byte keys; the first encrypts, all decrypt. Prefer the environment or a file: flags show in the process list. (env: LINEAR_OAUTH_ENCRYPTION_KEYS)",
            valueName: "keys"))
    var encryptionKeys: String?

    @Option(
        name: .customLong("encryption-keys-file"),
        help: ArgumentHelp(
            "A file holding the keys in the same format, mode 0600. (env: LINEAR_OAUTH_ENCRYPTION_KEYS_FILE)",
            valueName: "path"))
    var encryptionKeysFile: String?

    func keyRing(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> KeyRing {
        try KeyRing.load(keys: encryptionKeys, keysFile: encryptionKeysFile, environment: environment)
    }
}

extension StoreOptions {
    /// Opens the store, runs `body`, and closes the store whatever happens.
    func withStore<Result>(
        environment: [String: String] = ProcessInfo.processInfo.environment, _ body: (any TokenStore) async throws -> Result
    ) async throws -> Result {
        let store = try await openStore(environment: environment)
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
        _ keys: KeyOptions, environment: [String: String] = ProcessInfo.processInfo.environment,
        _ body: (TokenVault) async throws -> Result
    ) async throws -> Result {
        let keyRing = try keys.keyRing(environment: environment)
        return try await withStore(environment: environment) { store in try await body(TokenVault(store: store, keyRing: keyRing)) }
    }
}
