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

    static func decodeSealed(_ row: SQLiteRow) throws -> SealedInstallation {
        SealedInstallation(
            metadata: try decodeMetadata(row),
            accessToken: try bytes(row, "access_token"),
            refreshToken: try bytes(row, "refresh_token"))
    }

    static func decodeMetadata(_ row: SQLiteRow) throws -> InstallationMetadata {
        InstallationMetadata(
            organizationID: try text(row, "organization_id"),
            appUserID: try text(row, "app_user_id"),
            expiresAt: try date(row, "expires_at"),
            scopes: TokenSchema.scopes(try text(row, "scopes")),
            status: try TokenSchema.status(try text(row, "status")),
            keyID: try text(row, "key_id"),
            lastRefreshAt: row.column("last_refresh_at")?.integer.map { TokenSchema.date(microseconds: Int64($0)) },
            lastError: row.column("last_error")?.string,
            refreshFailures: Int(row.column("refresh_failures")?.integer ?? 0),
            createdAt: try date(row, "created_at"),
            updatedAt: try date(row, "updated_at"),
            installedAt: try date(row, "installed_at"),
            clientID: row.column("client_id")?.string,
            organizationName: row.column("organization_name")?.string,
            urlKey: row.column("url_key")?.string)
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
