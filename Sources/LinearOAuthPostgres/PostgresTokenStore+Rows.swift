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

    static func decodeSealed(_ row: PostgresRow) throws -> SealedInstallation {
        let (organizationID, appUserID, access, refresh, expiresAt, scopes, keyID, status, lastRefreshAt, lastError,
            refreshFailures, createdAt, updatedAt, installedAt, clientID, name, urlKey) = try row.decode(
                (String, String, ByteBuffer, ByteBuffer, Date, String, String, String, Date?, String?, Int, Date, Date, Date, String?,
                 String?, String?).self)
        return SealedInstallation(
            metadata: try metadata(
                organizationID, appUserID, expiresAt, scopes, keyID, status, lastRefreshAt, lastError, refreshFailures,
                createdAt, updatedAt, installedAt, clientID, name, urlKey),
            accessToken: Array(access.readableBytesView),
            refreshToken: Array(refresh.readableBytesView))
    }

    static func decodeMetadata(_ row: PostgresRow) throws -> InstallationMetadata {
        let (organizationID, appUserID, expiresAt, scopes, keyID, status, lastRefreshAt, lastError, refreshFailures,
            createdAt, updatedAt, installedAt, clientID, name, urlKey) = try row.decode(
                (String, String, Date, String, String, String, Date?, String?, Int, Date, Date, Date, String?, String?, String?).self)
        return try metadata(
            organizationID, appUserID, expiresAt, scopes, keyID, status, lastRefreshAt, lastError, refreshFailures,
            createdAt, updatedAt, installedAt, clientID, name, urlKey)
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
