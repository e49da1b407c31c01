import Foundation

/// Ending an installation: revoking it ourselves, or acting on Linear's notice that the app was
/// uninstalled.
extension TokenManager {
    /// What ``revoke(for:)`` did.
    public struct Revocation: Sendable, Equatable {
        /// Whether there were tokens to revoke.
        public var wasInstalled: Bool
        /// Failures revoking at Linear (recorded; the local tokens are deleted regardless).
        public var linearFailures: [String]
    }

    /// Revokes the grant at Linear (best effort: the access token, then the refresh token in case
    /// revoking one did not end both), deletes the tokens locally and evicts them from memory. Idempotent; afterwards the organization reads as not installed.
    @discardableResult
    public func revoke(for organizationID: String) async throws(TokenManagerError) -> Revocation {
        evict(organizationID)
        let result: Revocation
        do {
            let keyRing = vault.keyRing
            let clientID = linear.configuration.clientID
            result = try await vault.store.withRefreshLock(organizationID: organizationID) { sealed, transaction in
                guard let sealed else { return Revocation(wasInstalled: false, linearFailures: []) }
                // Another OAuth application's grant: this client cannot revoke it at Linear; keep it.
                if let installedBy = sealed.metadata.clientID ?? self.unboundClient, installedBy != clientID {
                    throw TokenManagerError.clientMismatch(organizationID: organizationID, installedBy: installedBy, configured: clientID)
                }
                var failures: [String] = []
                do {
                    // The access token first. Revoking either token ends the whole grant at Linear, so
                    // once one revoke succeeded the other's 400 (already gone), or an expired access
                    // token's, is success, not a failure. A call that got no answer stays a failure:
                    // that revoking one token ends both is Linear's wording, not something we saw.
                    let current = try keyRing.open(sealed)
                    var grantEnded = false
                    var refused: [String] = []
                    for (token, hint) in [(current.accessToken, LinearTokenTypeHint.accessToken), (current.refreshToken, .refreshToken)] {
                        do {
                            switch try await self.linear.revoke(token, hint: hint) {
                            case .revoked:
                                grantEnded = true
                            case .notRevoked(let reason):
                                refused.append("\(hint.rawValue): \(reason)")
                            case .unauthenticated:
                                break   // the token could not authenticate: already dead
                            }
                        } catch {
                            failures.append("\(hint.rawValue): \(error)")
                        }
                    }
                    if !grantEnded { failures = refused + failures }
                } catch {
                    // Tokens we cannot open cannot be revoked at Linear, but they are deleted all the same.
                    failures.append("tokens not revoked at Linear: \(error)")
                }
                try await transaction.delete()
                return Revocation(wasInstalled: true, linearFailures: failures)
            }
        } catch let error as TokenManagerError {
            throw error
        } catch let error as TokenDecryptionError {
            throw .undecryptable(error)
        } catch {
            throw .temporarilyUnavailable(organizationID: organizationID, reason: "\(error)", retryAfter: nil)
        }
        evict(organizationID)
        if result.wasInstalled {
            logger.info("revoked installation", metadata: [
                "organization": .string(organizationID), "linear_failures": .stringConvertible(result.linearFailures.count)])
            configuration.onEvent(.revoked(organizationID: organizationID))
        }
        return result
    }

    /// What ``uninstalled(organizationID:signedAt:)`` did.
    public enum UninstallOutcome: String, Sendable, Equatable {
        /// The organization's tokens were deleted.
        case deleted
        /// There were no tokens.
        case notInstalled = "not_installed"
        /// The stored tokens come from an install made after the notice was signed: kept.
        case newerInstallKept = "newer_install_kept"
    }

    /// Linear says the app was uninstalled from the organization (the `OAuthApp` `revoked` webhook,
    /// signed at `signedAt`). Linear has already revoked the grant, so the tokens are deleted here
    /// and evicted from memory, unless they belong to an install made after the notice was signed (a
    /// replay, or a late delivery after a re-install, must not remove a newer grant). The check and
    /// the delete happen under the organization's lock, so a re-install cannot slip in between, on any
    /// instance.
    /// - Throws: ``TokenStoreError`` when the store cannot answer (nothing was deleted: try again).
    @discardableResult
    public func uninstalled(organizationID: String, signedAt: Date) async throws -> UninstallOutcome {
        let outcome: UninstallOutcome = try await vault.store.withRefreshLock(organizationID: organizationID) { sealed, transaction in
            guard let sealed else { return .notInstalled }
            // In whole milliseconds, as Linear signs them.
            func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
            guard milliseconds(sealed.metadata.installedAt) <= milliseconds(signedAt) else { return .newerInstallKept }
            try await transaction.delete()
            return .deleted
        }
        evict(organizationID)
        logger.info("the app was uninstalled", metadata: ["organization": .string(organizationID), "outcome": .string(outcome.rawValue)])
        return outcome
    }
}
