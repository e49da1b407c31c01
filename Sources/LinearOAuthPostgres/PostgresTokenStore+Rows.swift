import Foundation
import LinearOAuth
import PostgresNIO

/// Rows to values and back, with ``TokenSchema``'s column lists and conversions.
extension PostgresTokenStore {
    /// Inserts or replaces the organization's row (`created_at` of an existing row is kept) and tells
    /// the other instances, in the same transaction.
    func upsert(_ installation: SealedInstallation, on connection: PostgresConnection) async throws {
        let m = installation.metadata
        try await connection.query(
            """
            INSERT INTO linear_tokens (\(unescaped: TokenSchema.installationColumnList))
            VALUES (\(m.organizationID), \(m.appUserID), \(ByteBuffer(bytes: installation.accessToken)),
                \(ByteBuffer(bytes: installation.refreshToken)), \(m.expiresAt), \(TokenSchema.scopesText(m.scopes)),
                \(m.keyID), \(m.status.rawValue), \(m.lastRefreshAt), \(m.lastError), \(m.refreshFailures), now(), now(), \(m.installedAt), \(m.clientID),
                \(m.organizationName), \(m.urlKey))
            ON CONFLICT (organization_id) DO UPDATE SET \(unescaped: TokenSchema.upsertAssignments)
            """,
            logger: logger)
        try await connection.query("SELECT pg_notify(\(Self.changesChannel), \(m.organizationID))", logger: logger)
    }

    /// A row's cells in column order. Decoding a row into a 15-element tuple at once went through
    /// PostgresNIO's parameter packs, which instantiate generic metadata at run time for every row
    /// (a fifth of a listing page's time); cell by cell, each decode is specialized.
    struct Cells {
        var iterator: PostgresRow.Iterator

        init(_ row: PostgresRow) {
            iterator = row.makeIterator()
        }

        mutating func next<Value: PostgresDecodable>(_: Value.Type = Value.self) throws -> Value {
            guard let cell = iterator.next() else { throw TokenStoreError.database("a row of linear_tokens has fewer columns than expected") }
            return try cell.decode(Value.self)
        }
    }

    static func decodeSealed(_ row: PostgresRow) throws -> SealedInstallation {
        var cells = Cells(row)
        let organizationID: String = try cells.next(), appUserID: String = try cells.next()
        let access: ByteBuffer = try cells.next(), refresh: ByteBuffer = try cells.next()
        return SealedInstallation(
            metadata: try metadata(organizationID: organizationID, appUserID: appUserID, &cells),
            accessToken: Array(access.readableBytesView),
            refreshToken: Array(refresh.readableBytesView))
    }

    static func decodeMetadata(_ row: PostgresRow) throws -> InstallationMetadata {
        var cells = Cells(row)
        let organizationID: String = try cells.next(), appUserID: String = try cells.next()
        return try metadata(organizationID: organizationID, appUserID: appUserID, &cells)
    }

    /// The columns after the tokens, in ``TokenSchema``'s order.
    private static func metadata(organizationID: String, appUserID: String, _ cells: inout Cells) throws -> InstallationMetadata {
        try metadata(
            organizationID, appUserID, cells.next(Date.self), cells.next(String.self), cells.next(String.self), cells.next(String.self),
            cells.next(Date?.self), cells.next(String?.self), cells.next(Int.self), cells.next(Date.self), cells.next(Date.self),
            cells.next(Date.self), cells.next(String?.self), cells.next(String?.self), cells.next(String?.self))
    }

    private static func metadata(
        _ organizationID: String, _ appUserID: String, _ expiresAt: Date, _ scopes: String, _ keyID: String,
        _ status: String, _ lastRefreshAt: Date?, _ lastError: String?, _ refreshFailures: Int, _ createdAt: Date,
        _ updatedAt: Date, _ installedAt: Date, _ clientID: String?, _ organizationName: String?, _ urlKey: String?
    ) throws -> InstallationMetadata {
        InstallationMetadata(
            organizationID: organizationID, appUserID: appUserID, expiresAt: expiresAt,
            scopes: TokenSchema.scopes(scopes), status: try TokenSchema.status(status), keyID: keyID,
            lastRefreshAt: lastRefreshAt, lastError: lastError, refreshFailures: refreshFailures,
            createdAt: createdAt, updatedAt: updatedAt, installedAt: installedAt, clientID: clientID,
            organizationName: organizationName, urlKey: urlKey)
    }

    static func decodeAppToken(_ row: PostgresRow) throws -> SealedAppToken {
        let (clientID, access, expiresAt, scopes, keyID) = try row.decode((String, ByteBuffer, Date, String, String).self)
        return SealedAppToken(
            clientID: clientID, accessToken: Array(access.readableBytesView), expiresAt: expiresAt,
            scopes: TokenSchema.scopes(scopes), keyID: keyID)
    }
}
