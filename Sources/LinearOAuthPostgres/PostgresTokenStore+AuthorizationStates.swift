import Foundation
import LinearOAuth
import PostgresNIO

extension PostgresTokenStore {
    public func saveAuthorizationState(_ state: String, sealedVerifier: [UInt8], expiresAt: Date, maxPending: Int) async throws -> Bool {
        // One statement: the count and the insert see the same snapshot (another instance may add
        // one at the same moment; the cap may be passed by as many as there are instances).
        try await run(organizationID: nil) {
            !(try await self.rows(
                """
                INSERT INTO linear_oauth_states (state, code_verifier, expires_at)
                SELECT \(state), \(ByteBuffer(bytes: sealedVerifier)), \(expiresAt)
                WHERE (SELECT count(*) FROM linear_oauth_states WHERE expires_at >= now()) < \(Int64(clamping: maxPending))
                RETURNING state
                """).isEmpty)
        }
    }

    public func purgeExpiredAuthorizationStates(limit: Int) async throws -> Int {
        try await run(organizationID: nil) {
            try await self.rows(
                """
                DELETE FROM linear_oauth_states WHERE state IN (
                    SELECT state FROM linear_oauth_states WHERE expires_at < now() LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING state
                """).count
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
