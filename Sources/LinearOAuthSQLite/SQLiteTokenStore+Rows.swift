import Foundation
import LinearOAuth
import SQLiteNIO

/// Rows to values and back, with ``TokenSchema``'s column lists and conversions.
extension SQLiteTokenStore {
    /// Inserts or replaces the organization's row (`created_at` of an existing row is kept).
    static func upsert(_ installation: SealedInstallation, on connection: SQLiteConnection) async throws {
        let m = installation.metadata
        let now = Self.time(Date())
        let lastRefreshAt: SQLiteData = m.lastRefreshAt.map { Self.time($0) } ?? .null
        let lastError: SQLiteData = m.lastError.map { .text($0) } ?? .null
        // In TokenSchema.installationColumns order.
        let binds: [SQLiteData] = [
            .text(m.organizationID), .text(m.appUserID),
            .blob(ByteBuffer(bytes: installation.accessToken)), .blob(ByteBuffer(bytes: installation.refreshToken)),
            Self.time(m.expiresAt), .text(TokenSchema.scopesText(m.scopes)), .text(m.keyID),
            .text(m.status.rawValue), lastRefreshAt, lastError, .integer(numericCast(m.refreshFailures)), now, now,
            Self.time(m.installedAt), m.clientID.map { .text($0) } ?? .null,
            m.organizationName.map { .text($0) } ?? .null, m.urlKey.map { .text($0) } ?? .null,
        ]
        _ = try await connection.query(
            """
            INSERT INTO linear_tokens (\(TokenSchema.installationColumnList))
            VALUES (\(Array(repeating: "?", count: binds.count).joined(separator: ", ")))
            ON CONFLICT (organization_id) DO UPDATE SET \(TokenSchema.upsertAssignments)
            """,
            binds)
    }

    /// A row's values in column order (every query selects ``TokenSchema``'s lists). By position:
    /// looking 17 columns up by name hashed each name, about 5,000 instructions of the cold path.
    struct Cells {
        private let columns: [SQLiteColumn]
        private var index = 0

        init(_ row: SQLiteRow) {
            columns = row.columns
        }

        private mutating func next() throws -> SQLiteData {
            guard index < columns.count else { throw TokenStoreError.database("a row of linear_tokens has fewer columns than expected") }
            defer { index += 1 }
            return columns[index].data
        }

        mutating func text() throws -> String {
            let column = index
            guard case .text(let value) = try next() else { throw TokenStoreError.database("column \(columns[column].name) is missing") }
            return value
        }

        mutating func optionalText() throws -> String? { try next().string }

        mutating func bytes() throws -> [UInt8] {
            let column = index
            guard case .blob(let buffer) = try next() else { throw TokenStoreError.database("column \(columns[column].name) is missing") }
            return buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? []
        }

        mutating func date() throws -> Date {
            let column = index
            guard case .integer(let value) = try next() else { throw TokenStoreError.database("column \(columns[column].name) is missing") }
            return TokenSchema.date(microseconds: Int64(value))
        }

        mutating func optionalDate() throws -> Date? { try next().integer.map { TokenSchema.date(microseconds: Int64($0)) } }

        mutating func integer() throws -> Int { Int(try next().integer ?? 0) }
    }

    static func decodeSealed(_ row: SQLiteRow) throws -> SealedInstallation {
        var cells = Cells(row)
        let organizationID = try cells.text(), appUserID = try cells.text()
        let accessToken = try cells.bytes(), refreshToken = try cells.bytes()
        return SealedInstallation(
            metadata: try metadata(organizationID: organizationID, appUserID: appUserID, &cells),
            accessToken: accessToken, refreshToken: refreshToken)
    }

    static func decodeMetadata(_ row: SQLiteRow) throws -> InstallationMetadata {
        var cells = Cells(row)
        let organizationID = try cells.text(), appUserID = try cells.text()
        return try metadata(organizationID: organizationID, appUserID: appUserID, &cells)
    }

    /// The columns after the tokens, read in ``TokenSchema``'s order.
    private static func metadata(organizationID: String, appUserID: String, _ cells: inout Cells) throws -> InstallationMetadata {
        let expiresAt = try cells.date(), scopes = try cells.text(), keyID = try cells.text(), status = try cells.text()
        return InstallationMetadata(
            organizationID: organizationID,
            appUserID: appUserID,
            expiresAt: expiresAt,
            scopes: TokenSchema.scopes(scopes),
            status: try TokenSchema.status(status),
            keyID: keyID,
            lastRefreshAt: try cells.optionalDate(),
            lastError: try cells.optionalText(),
            refreshFailures: try cells.integer(),
            createdAt: try cells.date(),
            updatedAt: try cells.date(),
            installedAt: try cells.date(),
            clientID: try cells.optionalText(),
            organizationName: try cells.optionalText(),
            urlKey: try cells.optionalText())
    }

    static func decodeAppToken(_ row: SQLiteRow) throws -> SealedAppToken {
        SealedAppToken(
            clientID: try text(row, "client_id"), accessToken: try bytes(row, "access_token"),
            expiresAt: try date(row, "expires_at"), scopes: TokenSchema.scopes(try text(row, "scopes")),
            keyID: try text(row, "key_id"))
    }

    static func text(_ row: SQLiteRow, _ name: String) throws -> String {
        guard case .text(let value) = row.column(name) else { throw TokenStoreError.database("column \(name) is missing") }
        return value
    }

    static func bytes(_ row: SQLiteRow, _ name: String) throws -> [UInt8] {
        guard case .blob(let buffer) = row.column(name) else { throw TokenStoreError.database("column \(name) is missing") }
        return Array(buffer.readableBytesView)
    }

    static func date(_ row: SQLiteRow, _ name: String) throws -> Date {
        guard case .integer(let value) = row.column(name) else { throw TokenStoreError.database("column \(name) is missing") }
        return TokenSchema.date(microseconds: Int64(value))
    }
}

extension SQLiteTokenStore {
    /// A time as this store keeps it (``TokenSchema/microseconds(_:)``).
    static func time(_ date: Date) -> SQLiteData {
        .integer(SQLiteInt64(TokenSchema.microseconds(date)))
    }
}
