import Foundation
import LinearOAuth
import PostgresNIO

extension PostgresTokenStore {
    /// The statements of each schema version (``TokenSchema/migrations``); each version runs once,
    /// in one transaction. Same meaning as SQLite's.
    static let migrations = TokenSchema.migrations([
        1: [
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
        ],
        2: [
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
        ],
        3: [
            """
            CREATE TABLE linear_oauth_states (
                state TEXT PRIMARY KEY,
                code_verifier BYTEA NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
        ],
        4: [
            "ALTER TABLE linear_tokens ADD COLUMN installed_at TIMESTAMPTZ",
            "UPDATE linear_tokens SET installed_at = created_at",
            "ALTER TABLE linear_tokens ALTER COLUMN installed_at SET NOT NULL",
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
            // no sort. It replaces (status, expires_at), whose every use it serves. With that one, each
            // page fetched its rows from the table and sorted each expiry's ties (1.5 ms a page of
            // 1,000 from a cursor at a million rows, 0.4 ms with this index).
            "CREATE INDEX linear_tokens_due ON linear_tokens (status, expires_at, organization_id)",
            "DROP INDEX linear_tokens_status_expires_at",
        ],
    ])

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
            guard current <= TokenSchema.latestVersion else {
                throw TokenStoreError.schemaTooNew(databaseVersion: current, supportedVersion: TokenSchema.latestVersion)
            }
            for (migration, statements) in Self.migrations where migration.version > current {
                for statement in statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO linear_oauth_schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: self.logger)
            }
        }
    }
}
