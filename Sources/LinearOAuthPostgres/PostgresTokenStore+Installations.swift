import Foundation
import LinearOAuth
import PostgresNIO

extension PostgresTokenStore {
    public func save(_ installations: [SealedInstallation]) async throws {
        guard !installations.isEmpty else { return }
        try await transaction(organizationID: nil) { connection in
            for installation in installations { try await self.upsert(installation, on: connection) }
        }
    }

    public func load(organizationID: String) async throws -> SealedInstallation? {
        try await run(organizationID: nil) {
            try await self.rows(
                "SELECT \(unescaped: TokenSchema.installationColumnList) FROM linear_tokens WHERE organization_id = \(organizationID)"
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
                "SELECT \(unescaped: TokenSchema.metadataColumnList) FROM linear_tokens ORDER BY organization_id", Self.decodeMetadata)
        }
    }

    public func installationCounts() async throws -> [InstallationStatus: Int] {
        // The server gives the count up after a few seconds: a scrape never leaves it running.
        try await transaction(organizationID: nil) { connection in
            try await connection.query("SET LOCAL statement_timeout = '\(unescaped: String(TokenSchema.milliseconds(self.connectionTimeout)))ms'", logger: self.logger)
            var counts: [InstallationStatus: Int] = [:]
            for try await (status, installations) in try await connection.query(
                "SELECT status, count(*) FROM linear_tokens GROUP BY status", logger: self.logger
            ).decode((String, Int).self) {
                counts[try TokenSchema.status(status)] = installations
            }
            return counts
        }
    }

    public func metadata(matching search: InstallationSearch, after organizationID: String?, limit: Int) async throws
        -> [InstallationMetadata]
    {
        let after = organizationID ?? ""
        let query: PostgresQuery
        switch search {
        case .all:
            query = """
                SELECT \(unescaped: TokenSchema.metadataColumnList) FROM linear_tokens WHERE organization_id > \(after)
                ORDER BY organization_id LIMIT \(limit)
                """
        case .urlKey(let key):
            query = """
                SELECT \(unescaped: TokenSchema.metadataColumnList) FROM linear_tokens WHERE organization_id > \(after) AND url_key = \(key)
                ORDER BY organization_id LIMIT \(limit)
                """
        case .containing(let text):
            // strpos, not LIKE: the text's % and _ are plain characters. lower() under the "C" collation
            // folds ASCII letters only, as SQLite's does, byte by byte: at a million rows a search that
            // finds nothing took 1.6 s this way and 12 s with translate(), which walks characters.
            let needle = InstallationSearch.lowercasedASCII(text)
            query = """
                SELECT \(unescaped: TokenSchema.metadataColumnList) FROM linear_tokens WHERE organization_id > \(after)
                AND (strpos(lower(organization_id COLLATE "C"), \(needle)) > 0
                    OR strpos(lower(coalesce(organization_name, '') COLLATE "C"), \(needle)) > 0
                    OR strpos(lower(coalesce(url_key, '') COLLATE "C"), \(needle)) > 0)
                ORDER BY organization_id LIMIT \(limit)
                """
        }
        return try await run(organizationID: nil) {
            try await self.rows(query, Self.decodeMetadata)
        }
    }

    public func soonestExpiring(limit: Int) async throws -> [InstallationMetadata] {
        try await run(organizationID: nil) {
            try await self.rows(
                "SELECT \(unescaped: TokenSchema.metadataColumnList) FROM linear_tokens WHERE status = 'active' ORDER BY expires_at, organization_id LIMIT \(limit)",
                Self.decodeMetadata)
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
                SELECT \(unescaped: TokenSchema.installationColumnList) FROM linear_tokens WHERE organization_id > \(after)
                ORDER BY organization_id LIMIT \(limit)
                """
        case .notSealedUnder(let keyID):
            query = """
                SELECT \(unescaped: TokenSchema.installationColumnList) FROM linear_tokens WHERE organization_id > \(after) AND key_id <> \(keyID)
                ORDER BY organization_id LIMIT \(limit)
                """
        case .activeExpiringBefore(let date):
            query = """
                SELECT \(unescaped: TokenSchema.installationColumnList) FROM linear_tokens
                WHERE organization_id > \(after) AND status = 'active' AND expires_at < \(date)
                ORDER BY organization_id LIMIT \(limit)
                """
        case .status(let status):
            query = """
                SELECT \(unescaped: TokenSchema.installationColumnList) FROM linear_tokens
                WHERE organization_id > \(after) AND status = \(status.rawValue)
                ORDER BY organization_id LIMIT \(limit)
                """
        }
        return try await run(organizationID: nil) {
            try await self.rows(query, Self.decodeSealed)
        }
    }

    /// The writes of a refresh-locked body, on the connection that holds the row lock.
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
                "SELECT \(unescaped: TokenSchema.installationColumnList) FROM linear_tokens WHERE organization_id = \(organizationID) FOR UPDATE",
                logger: self.logger
            ).collect().first.map(Self.decodeSealed)
            return try await body(row, Transaction(connection: connection, organizationID: organizationID, store: self))
        }
    }

    public func withRefreshLockIfFree<Result: Sendable>(
        organizationID: String,
        _ body: (SealedInstallation?, any TokenStoreTransaction) async throws -> Result
    ) async throws -> Result? {
        try await transaction(organizationID: organizationID) { connection -> Result? in
            let row = try await connection.query(
                "SELECT \(unescaped: TokenSchema.installationColumnList) FROM linear_tokens WHERE organization_id = \(organizationID) FOR UPDATE SKIP LOCKED",
                logger: self.logger
            ).collect().first.map(Self.decodeSealed)
            if row == nil {
                // Skipped (another process holds it), or not there at all.
                let exists = !(try await connection.query(
                    "SELECT 1 FROM linear_tokens WHERE organization_id = \(organizationID)", logger: self.logger
                ).collect().isEmpty)
                if exists { return nil }
            }
            return try await body(row, Transaction(connection: connection, organizationID: organizationID, store: self))
        }
    }

    public func dueForRefresh(before deadline: Date, after cursor: DueCursor?, limit: Int) async throws -> [DueCursor] {
        try await run(organizationID: nil) {
            try await self.rows(Self.dueQuery(before: deadline, after: cursor, limit: limit)) { row in
                // Cell by cell (see ``Cells``), as they arrive: a page is up to 10,000 rows.
                var cells = Cells(row)
                return DueCursor(expiresAt: try cells.next(), organizationID: try cells.next())
            }
        }
    }

    /// A page of due rows: the `linear_tokens_due` index (status, expires_at, organization_id) holds
    /// them in this order, and the row comparison with the cursor is a range of it, so a page is read
    /// from the index alone, without a sort.
    package static func dueQuery(before deadline: Date, after cursor: DueCursor?, limit: Int) -> PostgresQuery {
        if let cursor {
            return """
                SELECT expires_at, organization_id FROM linear_tokens
                WHERE status = 'active' AND expires_at < \(deadline) AND (expires_at, organization_id) > (\(cursor.expiresAt), \(cursor.organizationID))
                ORDER BY expires_at, organization_id LIMIT \(limit)
                """
        }
        return """
            SELECT expires_at, organization_id FROM linear_tokens WHERE status = 'active' AND expires_at < \(deadline)
            ORDER BY expires_at, organization_id LIMIT \(limit)
            """
    }

    /// PostgreSQL's plan for a page of due rows (`EXPLAIN`), with sequential scans and sorts priced out
    /// of reach, so that it shows whether an index gives the page in order even on a small table: the
    /// tests' check that the refresher reads its index and sorts nothing.
    package func dueForRefreshPlan(before deadline: Date, after cursor: DueCursor?, limit: Int) async throws -> String {
        let query = Self.dueQuery(before: deadline, after: cursor, limit: limit)
        return try await transaction(organizationID: nil) { connection in
            for setting in ["enable_seqscan", "enable_sort", "enable_incremental_sort", "enable_bitmapscan"] {
                try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL \(setting) = off"), logger: self.logger)
            }
            var lines: [String] = []
            for try await line in try await connection.query(
                PostgresQuery(unsafeSQL: "EXPLAIN " + query.sql, binds: query.binds), logger: self.logger
            ).decode(String.self) {
                lines.append(line)
            }
            return lines.joined(separator: "\n")
        }
    }

    public func resealBatch(
        notSealedUnder keyID: String, after cursor: String?, limit: Int,
        _ reseal: (SealedInstallation) throws -> SealedInstallation
    ) async throws -> (count: Int, last: String?) {
        try await transaction(organizationID: nil) { connection in
            // FOR UPDATE waits for a refresh holding a row; READ COMMITTED then re-checks the
            // condition, so a row the refresh already sealed under the new key drops out (and the
            // LIMIT takes the next row instead). The cursor makes it a range scan of the primary key.
            let rows = try await connection.query(
                """
                SELECT \(unescaped: TokenSchema.installationColumnList) FROM linear_tokens
                WHERE key_id <> \(keyID) AND organization_id > \(cursor ?? "")
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
            return (rows.count, rows.last?.organizationID)
        }
    }
}
