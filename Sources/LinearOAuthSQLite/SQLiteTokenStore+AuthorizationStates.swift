import Foundation
import LinearOAuth
import SQLiteNIO

extension SQLiteTokenStore {
    public func saveAuthorizationState(_ state: String, sealedVerifier: [UInt8], expiresAt: Date) async throws {
        try await write(organizationID: nil) { connection in
            let now = Date()
            _ = try await connection.query("DELETE FROM linear_oauth_states WHERE expires_at < ?", [Self.time(now)])
            _ = try await connection.query(
                "INSERT INTO linear_oauth_states (state, code_verifier, expires_at, created_at) VALUES (?, ?, ?, ?)",
                [.text(state), .blob(ByteBuffer(bytes: sealedVerifier)), Self.time(expiresAt),
                 Self.time(now)])
        }
    }

    public func takeAuthorizationState(_ state: String) async throws -> (sealedVerifier: [UInt8], expiresAt: Date)? {
        try await write(organizationID: nil) { connection in
            try await connection.query(
                "DELETE FROM linear_oauth_states WHERE state = ? RETURNING code_verifier, expires_at", [.text(state)]
            ).first.map { row in (try Self.bytes(row, "code_verifier"), try Self.date(row, "expires_at")) }
        }
    }
}
