import Foundation
import LinearOAuth
import SQLiteNIO

extension SQLiteTokenStore {
    /// The statements of each schema version (``TokenSchema/migrations``); each version runs once,
    /// in one transaction. Times are microseconds since the Unix epoch.
    static let migrations = TokenSchema.migrations([
        1: [
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
        ],
        2: [
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
        ],
        3: [
            """
            CREATE TABLE linear_oauth_states (
                state TEXT PRIMARY KEY,
                code_verifier BLOB NOT NULL,
                expires_at INTEGER NOT NULL,
                created_at INTEGER NOT NULL
            ) STRICT
            """,
        ],
        4: [
            "ALTER TABLE linear_tokens ADD COLUMN installed_at INTEGER NOT NULL DEFAULT 0",
            "UPDATE linear_tokens SET installed_at = created_at",
        ],
        5: [
            // NULL: a row from before, which adopts the client id of its next successful refresh.
            "ALTER TABLE linear_tokens ADD COLUMN client_id TEXT",
        ],
        6: [
            // The cap counts, and the purge finds, states by expiry.
            "CREATE INDEX linear_oauth_states_expires_at ON linear_oauth_states (expires_at)",
        ],
        7: [
            // NULL: a row from before; the next install records them.
            "ALTER TABLE linear_tokens ADD COLUMN organization_name TEXT",
            "ALTER TABLE linear_tokens ADD COLUMN url_key TEXT",
            "CREATE INDEX linear_tokens_url_key ON linear_tokens (url_key)",
        ],
        8: [
            // The background refresher's pages of due rows, in the order it reads them (soonest first,
            // ties by organization): read from the index alone, with the keyset cursor as its range and
            // no sort, with the cursor as a row value (`(expires_at, organization_id) > (?, ?)`). It
            // replaces (status, expires_at), whose every use it serves, and with which each page was
            // sorted in a temporary B-tree.
            "CREATE INDEX linear_tokens_due ON linear_tokens (status, expires_at, organization_id)",
            "DROP INDEX linear_tokens_status_expires_at",
        ],
    ])

    public func migrate() async throws {
        try await write(organizationID: nil) { connection in
            _ = try await connection.query("""
                CREATE TABLE IF NOT EXISTS \(TokenSchema.migrationsTable) (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT
                """)
            let current = try await connection.query("SELECT COALESCE(MAX(version), 0) AS version FROM \(TokenSchema.migrationsTable)")
                .first?.column("version")?.integer ?? 0
            guard current <= TokenSchema.latestVersion else {
                throw TokenStoreError.schemaTooNew(databaseVersion: Int(current), supportedVersion: TokenSchema.latestVersion)
            }
            for (migration, statements) in Self.migrations where migration.version > current {
                for statement in statements { _ = try await connection.query(statement) }
                _ = try await connection.query(
                    "INSERT INTO \(TokenSchema.migrationsTable) (version, name, applied_at) VALUES (?, ?, ?)",
                    [.integer(numericCast(migration.version)), .text(migration.name), Self.time(Date())])
            }
        }
    }
}
