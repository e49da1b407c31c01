import Foundation
import LinearOAuth
import PostgresNIO

extension PostgresTokenStore {
    public func loadAppToken(clientID: String) async throws -> SealedAppToken? {
        try await run(organizationID: nil) {
            try await self.rows(
                "SELECT \(unescaped: TokenSchema.appTokenColumnList) FROM linear_app_tokens WHERE client_id = \(clientID)").first.map(Self.decodeAppToken)
        }
    }

    public func saveAppToken(_ token: SealedAppToken) async throws {
        try await run(organizationID: nil) {
            _ = try await self.rows(
                """
                INSERT INTO linear_app_tokens (\(unescaped: TokenSchema.appTokenColumnList))
                VALUES (\(token.clientID), \(ByteBuffer(bytes: token.accessToken)), \(token.expiresAt),
                    \(TokenSchema.scopesText(token.scopes)), \(token.keyID))
                ON CONFLICT (client_id) DO UPDATE SET access_token = excluded.access_token, expires_at = excluded.expires_at,
                    scopes = excluded.scopes, key_id = excluded.key_id, updated_at = now()
                """)
        }
    }

    public func resealAppTokens(notSealedUnder keyID: String, _ reseal: (SealedAppToken) throws -> SealedAppToken) async throws -> Int {
        try await transaction(organizationID: nil) { connection in
            let tokens = try await connection.query(
                "SELECT \(unescaped: TokenSchema.appTokenColumnList) FROM linear_app_tokens WHERE key_id <> \(keyID) FOR UPDATE",
                logger: self.logger
            ).collect().map(Self.decodeAppToken)
            for token in tokens {
                let resealed = try reseal(token)
                try await connection.query(
                    """
                    UPDATE linear_app_tokens SET access_token = \(ByteBuffer(bytes: resealed.accessToken)), key_id = \(resealed.keyID)
                    WHERE client_id = \(token.clientID)
                    """,
                    logger: self.logger)
            }
            return tokens.count
        }
    }
}
