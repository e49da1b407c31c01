import Foundation
import LinearOAuth

/// What lets a reload of a used callback say "already installed" instead of "unknown link": a
/// completed install leaves a receipt in the install-state table, under `receipt:STATE`, naming the
/// organization, for the state's lifetime (purged like any expired state). It holds no secret: the
/// organization id is not one, and the state was already used.
enum InstallReceipts {
    static func name(_ state: String) -> String { "receipt:\(state)" }

    static func record(state: String, organizationID: String, lifetime: Duration, store: any TokenStore) async throws {
        try await store.saveAuthorizationState(
            name(state), sealedVerifier: Array(organizationID.utf8), expiresAt: Date().addingTimeInterval(lifetime.timeInterval))
    }

    /// The organization a completed install with this state went to, if its receipt is still there.
    static func organizationID(forState state: String, store: any TokenStore) async throws -> String? {
        // Taking deletes: put it back for the next reload.
        guard let receipt = try await store.takeAuthorizationState(name(state)), receipt.expiresAt > Date() else { return nil }
        try await store.saveAuthorizationState(name(state), sealedVerifier: receipt.sealedVerifier, expiresAt: receipt.expiresAt)
        return String(decoding: receipt.sealedVerifier, as: UTF8.self)
    }
}
