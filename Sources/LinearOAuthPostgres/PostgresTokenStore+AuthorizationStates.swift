import Foundation
import LinearOAuth
import PostgresNIO

extension PostgresTokenStore {
    public func saveAuthorizationState(_ state: String, sealedVerifier: [UInt8], expiresAt: Date) async throws {
        try await transaction(organizationID: nil) { connection in
            try await connection.query("DELETE FROM linear_oauth_states WHERE expires_at < now()", logger: self.logger)
            try await connection.query(
                """
                INSERT INTO linear_oauth_states (state, code_verifier, expires_at)
                VALUES (\(state), \(ByteBuffer(bytes: sealedVerifier)), \(expiresAt))
                """,
                logger: self.logger)
        }
    }

    public func takeAuthorizationState(_ state: String) async throws -> (sealedVerifier: [UInt8], expiresAt: Date)? {
        try await run(organizationID: nil) {
            try await self.rows(
                "DELETE FROM linear_oauth_states WHERE state = \(state) RETURNING code_verifier, expires_at").first.map { row in
                let (verifier, expiresAt) = try row.decode((ByteBuffer, Date).self)
                return (Array(verifier.readableBytesView), expiresAt)
            }
        }
    }
}
