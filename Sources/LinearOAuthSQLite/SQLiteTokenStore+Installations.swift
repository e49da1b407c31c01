import Foundation
import LinearOAuth
import SQLiteNIO

extension SQLiteTokenStore {
    /// One installation's row (built once: the cold path runs it on every cache miss).
    static let loadSQL = "SELECT \(TokenSchema.installationColumnList) FROM linear_tokens WHERE organization_id = ?"

    public func save(_ installations: [SealedInstallation]) async throws {
        guard !installations.isEmpty else { return }
        try await write(organizationID: nil) { connection in
            for installation in installations { try await Self.upsert(installation, on: connection) }
        }
    }

    public func load(organizationID: String) async throws -> SealedInstallation? {
        try await read { connection in
            try await connection.query(
                Self.loadSQL, [.text(organizationID)]
            ).first.map(Self.decodeSealed)
        }
    }

    public func delete(organizationID: String) async throws -> Bool {
        // Waiting for a refresh that holds the lock is the organization's lock time-out, as on PostgreSQL.
        try await write(organizationID: organizationID) { connection in
            !(try await connection.query(
                "DELETE FROM linear_tokens WHERE organization_id = ? RETURNING organization_id", [.text(organizationID)]
            ).isEmpty)
        }
    }

    public func listMetadata() async throws -> [InstallationMetadata] {
        try await read { connection in
            try await connection.query("SELECT \(TokenSchema.metadataColumnList) FROM linear_tokens ORDER BY organization_id")
                .map(Self.decodeMetadata)
        }
    }

    public func installationCounts() async throws -> [InstallationStatus: Int] {
        try await read { connection in
            var counts: [InstallationStatus: Int] = [:]
            for row in try await connection.query("SELECT status, count(*) AS installations FROM linear_tokens GROUP BY status") {
                counts[try TokenSchema.status(try Self.text(row, "status"))] = Int(row.column("installations")?.integer ?? 0)
            }
            return counts
        }
    }

    public func metadata(matching search: InstallationSearch, after organizationID: String?, limit: Int) async throws
        -> [InstallationMetadata]
    {
        var conditions = ["organization_id > ?"]
        var binds: [SQLiteData] = [.text(organizationID ?? "")]
        switch search {
        case .all: break
        case .urlKey(let key):
            conditions.append("url_key = ?")
            binds.append(.text(key))
        case .containing(let text):
            // instr, not LIKE: the text's % and _ are plain characters.
            conditions.append(
                "(instr(lower(organization_id), ?) > 0 OR instr(lower(coalesce(organization_name, '')), ?) > 0 OR instr(lower(coalesce(url_key, '')), ?) > 0)")
            let needle = SQLiteData.text(InstallationSearch.lowercasedASCII(text))
            binds += [needle, needle, needle]
        }
        binds.append(.integer(numericCast(limit)))
        let sql = """
            SELECT \(TokenSchema.metadataColumnList) FROM linear_tokens
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY organization_id LIMIT ?
            """
        return try await read { connection in
            try await connection.query(sql, binds).map(Self.decodeMetadata)
        }
    }

    public func soonestExpiring(limit: Int) async throws -> [InstallationMetadata] {
        try await read { connection in
            try await connection.query(
                "SELECT \(TokenSchema.metadataColumnList) FROM linear_tokens WHERE status = 'active' ORDER BY expires_at, organization_id LIMIT ?",
                [.integer(numericCast(limit))]
            ).map(Self.decodeMetadata)
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
            binds.append(Self.time(date))
        case .status(let status):
            conditions.append("status = ?")
            binds.append(.text(status.rawValue))
        }
        binds.append(.integer(numericCast(limit)))
        let sql = """
            SELECT \(TokenSchema.installationColumnList) FROM linear_tokens
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY organization_id LIMIT ?
            """
        return try await read { connection in
            try await connection.query(sql, binds).map(Self.decodeSealed)
        }
    }

    /// The writes of a refresh-locked body, on the connection that holds the write lock.
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
                Self.loadSQL, [.text(organizationID)]
            ).first.map(Self.decodeSealed)
            return try await body(row, Transaction(connection: connection, organizationID: organizationID))
        }
    }

    public func dueForRefresh(before deadline: Date, after cursor: DueCursor?, limit: Int) async throws -> [DueCursor] {
        let (sql, binds) = Self.dueQuery(before: deadline, after: cursor, limit: limit)
        return try await read { connection in
            try await connection.query(sql, binds).map { row in
                // By position, as the installation rows are (by name hashed each column's name).
                var cells = Cells(row)
                return DueCursor(expiresAt: try cells.date(), organizationID: try cells.text())
            }
        }
    }

    /// A page of due rows: the `linear_tokens_due` index (status, expires_at, organization_id) holds
    /// them in this order, and the row-value comparison with the cursor is a range of it (the same
    /// condition spelled with `OR` was not), so a page is read from the index alone, without a sort.
    static func dueQuery(before deadline: Date, after cursor: DueCursor?, limit: Int) -> (sql: String, binds: [SQLiteData]) {
        var sql = "SELECT expires_at, organization_id FROM linear_tokens WHERE status = 'active' AND expires_at < ?"
        var binds: [SQLiteData] = [Self.time(deadline)]
        if let cursor {
            sql += " AND (expires_at, organization_id) > (?, ?)"
            binds += [Self.time(cursor.expiresAt), .text(cursor.organizationID)]
        }
        sql += " ORDER BY expires_at, organization_id LIMIT ?"
        binds.append(.integer(numericCast(limit)))
        return (sql, binds)
    }

    /// SQLite's plan for a page of due rows (`EXPLAIN QUERY PLAN`, one line per step): the tests'
    /// check that the refresher reads its index and sorts nothing.
    package func dueForRefreshPlan(before deadline: Date, after cursor: DueCursor?, limit: Int) async throws -> String {
        let (sql, binds) = Self.dueQuery(before: deadline, after: cursor, limit: limit)
        return try await read { connection in
            try await connection.query("EXPLAIN QUERY PLAN " + sql, binds).compactMap { $0.column("detail")?.string }
                .joined(separator: "\n")
        }
    }

    public func resealBatch(
        notSealedUnder keyID: String, after cursor: String?, limit: Int,
        _ reseal: (SealedInstallation) throws -> SealedInstallation
    ) async throws -> (count: Int, last: String?) {
        try await write(organizationID: nil) { connection in
            let rows = try await connection.query(
                """
                SELECT \(TokenSchema.installationColumnList) FROM linear_tokens
                WHERE key_id <> ? AND organization_id > ? ORDER BY organization_id LIMIT ?
                """,
                [.text(keyID), .text(cursor ?? ""), .integer(numericCast(limit))]
            ).map(Self.decodeSealed)
            for row in rows {
                let resealed = try reseal(row)
                _ = try await connection.query(
                    "UPDATE linear_tokens SET access_token = ?, refresh_token = ?, key_id = ? WHERE organization_id = ?",
                    [.blob(ByteBuffer(bytes: resealed.accessToken)), .blob(ByteBuffer(bytes: resealed.refreshToken)),
                     .text(resealed.keyID), .text(row.organizationID)])
            }
            return (rows.count, rows.last?.organizationID)
        }
    }
}
