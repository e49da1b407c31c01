import Foundation
import LinearOAuth
import SQLiteNIO

extension SQLiteTokenStore {
    public func loadAppToken(clientID: String) async throws -> SealedAppToken? {
        try await read { connection in
            try await connection.query(
                "SELECT \(TokenSchema.appTokenColumnList) FROM linear_app_tokens WHERE client_id = ?", [.text(clientID)]
            ).first.map(Self.decodeAppToken)
        }
    }

    public func saveAppToken(_ token: SealedAppToken) async throws {
        try await write(organizationID: nil) { connection in
            let now = Self.time(Date())
            _ = try await connection.query(
                """
                INSERT INTO linear_app_tokens (\(TokenSchema.appTokenColumnList), created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (client_id) DO UPDATE SET access_token = excluded.access_token, expires_at = excluded.expires_at,
                    scopes = excluded.scopes, key_id = excluded.key_id, updated_at = excluded.updated_at
                """,
                [.text(token.clientID), .blob(ByteBuffer(bytes: token.accessToken)), Self.time(token.expiresAt),
                 .text(TokenSchema.scopesText(token.scopes)), .text(token.keyID), now, now])
        }
    }

    public func resealAppTokens(notSealedUnder keyID: String, _ reseal: (SealedAppToken) throws -> SealedAppToken) async throws -> Int {
        try await write(organizationID: nil) { connection in
            let tokens = try await connection.query(
                "SELECT \(TokenSchema.appTokenColumnList) FROM linear_app_tokens WHERE key_id <> ?", [.text(keyID)]
            ).map(Self.decodeAppToken)
            for token in tokens {
                let resealed = try reseal(token)
                _ = try await connection.query(
                    "UPDATE linear_app_tokens SET access_token = ?, key_id = ? WHERE client_id = ?",
                    [.blob(ByteBuffer(bytes: resealed.accessToken)), .text(resealed.keyID), .text(token.clientID)])
            }
            return tokens.count
        }
    }
}
