import Foundation

/// Repairing an installation marked `reauthorization_required` without SQL: one refresh with the
/// stored refresh token decides whether the grant is alive after all (a configuration mistake
/// marked it) or dead (the workspace must install the app again).
extension TokenManager {
    /// What ``reinstate(for:)`` found.
    public enum Reinstatement: Sendable, Equatable {
        /// Linear accepted the stored refresh token: the installation is active again, with new tokens.
        case reinstated(expiresAt: Date)
        /// The installation was not marked: nothing was done.
        case alreadyActive
        /// Linear still refuses the grant (its reason): a workspace admin must install the app again.
        case stillRefused(reason: String)
    }

    /// Tries one refresh of a `reauthorization_required` installation with its stored refresh token:
    /// on success it is active again; if Linear still refuses, it stays marked. Under the
    /// organization's lock, like every refresh. Not counted by the de-authorization breaker (an
    /// operator asked), and a success closes it.
    /// - Throws: ``TokenManagerError``: `notInstalled`, `clientMismatch`, `configuration`, or
    ///   `temporarilyUnavailable` (Linear or the store did not answer; nothing was changed).
    public func reinstate(for organizationID: String) async throws(TokenManagerError) -> Reinstatement {
        let clientID = linear.configuration.clientID
        let outcome: Reinstatement
        do {
            outcome = try await vault.withRefreshLock(organizationID: organizationID) { current, writer -> Reinstatement in
                guard var current else { throw TokenManagerError.notInstalled(organizationID: organizationID) }
                guard current.status == .reauthorizationRequired else { return .alreadyActive }
                if let installedBy = current.clientID ?? self.unboundClient, installedBy != clientID {
                    throw TokenManagerError.clientMismatch(organizationID: organizationID, installedBy: installedBy, configured: clientID)
                }
                let answer: LinearTokenResponse
                do throws(LinearOAuthError) {
                    answer = try await self.linear.refresh(current.refreshToken)
                } catch .reauthorizationRequired(let details) {
                    current.lastError = details.code ?? "invalid_grant"
                    current.refreshFailures += 1
                    try await writer.save(current)
                    return .stillRefused(reason: details.message)
                } catch .configuration(let details) {
                    throw TokenManagerError.configuration(reason: LinearOAuthError.configuration(details).description)
                } catch .transient(let details) {
                    throw TokenManagerError.temporarilyUnavailable(
                        organizationID: organizationID, reason: LinearOAuthError.transient(details).description, retryAfter: details.retryAfter)
                }
                Self.store(answer, in: &current, clientID: clientID, now: self.configuration.now())
                try await writer.save(current)
                return .reinstated(expiresAt: current.expiresAt)
            }
        } catch let error as TokenManagerError {
            throw error
        } catch let error as TokenDecryptionError {
            throw .undecryptable(error)
        } catch {
            throw .temporarilyUnavailable(organizationID: organizationID, reason: "\(error)", retryAfter: nil)
        }
        evict(organizationID)
        switch outcome {
        case .reinstated(let expiresAt):
            closeBreaker(because: "a reinstatement's refresh succeeded")
            logger.notice("reinstated installation", metadata: ["organization": .string(organizationID)])
            configuration.onEvent(.refreshed(organizationID: organizationID, expiresAt: expiresAt))
        case .stillRefused(let reason):
            logger.warning("Linear still refuses the installation's grant", metadata: [
                "organization": .string(organizationID), "reason": .string(reason)])
        case .alreadyActive:
            break
        }
        return outcome
    }
}
