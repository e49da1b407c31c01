import Foundation
import LinearOAuth
import SQLiteNIO

extension SQLiteTokenStore {
    public func saveAuthorizationState(_ state: String, sealedVerifier: [UInt8], expiresAt: Date, maxPending: Int) async throws -> Bool {
        try await write(organizationID: nil) { connection in
            let now = Date()
            // Counted through the expires_at index, inside the write lock: the cap holds exactly.
            let pending = try await connection.query(
                "SELECT count(*) AS pending FROM linear_oauth_states WHERE expires_at >= ?", [Self.time(now)]
            ).first?.column("pending")?.integer ?? 0
            guard pending < maxPending else { return false }
            _ = try await connection.query(
                "INSERT INTO linear_oauth_states (state, code_verifier, expires_at, created_at) VALUES (?, ?, ?, ?)",
                [.text(state), .blob(ByteBuffer(bytes: sealedVerifier)), Self.time(expiresAt), Self.time(now)])
            return true
        }
    }

    public func purgeExpiredAuthorizationStates(limit: Int) async throws -> Int {
        try await write(organizationID: nil) { connection in
            try await connection.query(
                """
                DELETE FROM linear_oauth_states WHERE rowid IN (
                    SELECT rowid FROM linear_oauth_states WHERE expires_at < ? LIMIT ?)
                RETURNING state
                """,
                [Self.time(Date()), .integer(numericCast(limit))]
            ).count
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
