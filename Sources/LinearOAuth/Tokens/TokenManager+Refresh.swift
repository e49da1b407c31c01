import Foundation

/// Loading an installation and refreshing it under the store's cross-process lock, with the
/// retries ``RetryPolicy`` times. Run by a flight's leader only.
extension TokenManager {
    /// Loads the installation and refreshes it if it is due (or `force` asks), retrying transient
    /// failures: a still-valid token is served while backing off, an expired one is retried a few
    /// times, briefly, before the caller is told to come back.
    /// - Parameter skipIfBusy: When another process holds the organization's refresh lock, serve the
    ///   still-valid token loaded instead of waiting (the background refresher: instances split the
    ///   due work instead of queueing on the same rows).
    @inline(never)
    nonisolated(nonsending) func loadOrRefresh(_ organizationID: String, force: Force, window: Duration? = nil, skipIfBusy: Bool = false) async throws
        -> RefreshCoordinator.Outcome
    {
        // The row is opened a column at a time: the access token to serve it, the refresh token only
        // when it is about to be used. A token still fresh (the usual cold load) never has its
        // refresh token decrypted, which also halves the cold path's decryption.
        let sealed: SealedInstallation
        do {
            guard let loaded = try await vault.store.load(organizationID: organizationID) else {
                throw TokenManagerError.notInstalled(organizationID: organizationID)
            }
            sealed = loaded
        } catch let error as TokenManagerError {
            throw error
        } catch {
            // Cancelled: the caller went away, the store did not fail (a leader's followers then join again).
            if Task.isCancelled { throw CancellationError() }
            throw TokenManagerError.temporarilyUnavailable(organizationID: organizationID, reason: "\(error)", retryAfter: nil)
        }
        // Read in place: a copy of the metadata retains its seven strings and arrays.
        if sealed.metadata.status == .reauthorizationRequired {
            throw TokenManagerError.reauthorizationRequired(organizationID: organizationID, reason: sealed.metadata.lastError ?? "invalid_grant")
        }
        let token: AccessToken
        do throws(TokenDecryptionError) {
            token = AccessToken(
                token: Secret(try vault.keyRing.open(sealed.accessToken, organizationID: organizationID, column: .accessToken)),
                expiresAt: sealed.metadata.expiresAt, appUserID: sealed.metadata.appUserID, organizationID: sealed.metadata.organizationID)
        } catch {
            throw TokenManagerError.undecryptable(error)
        }
        let now = configuration.now()
        let due = now.addingTimeInterval(window?.timeInterval ?? refreshMargin)
        switch force {
        case .never where sealed.metadata.expiresAt > due:
            return .init(token: token)
        case .ifStillUsing(let rejected) where token.token != rejected:
            return .init(token: token)
        default: break
        }
        // Cooling down after repeated failures: serve the token while it works, and leave Linear alone.
        if case .never = force, let until = state.withLock({ $0.coolingDown(organizationID, now: now) }) {
            if sealed.metadata.expiresAt > now { return .init(token: token, nextAttempt: until) }
            throw TokenManagerError.temporarilyUnavailable(
                organizationID: organizationID, reason: "cooling down after repeated failures",
                retryAfter: .seconds(Int(until.timeIntervalSince(now).rounded(.up))))
        }
        let installation: Installation
        do throws(TokenDecryptionError) {
            installation = Installation(
                metadata: sealed.metadata, accessToken: token.token,
                refreshToken: Secret(try vault.keyRing.open(sealed.refreshToken, organizationID: organizationID, column: .refreshToken)))
        } catch {
            throw TokenManagerError.undecryptable(error)
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                return .init(token: try await refresh(organizationID, seen: installation, force: force, due: due, skipIfBusy: skipIfBusy))
            } catch let failure as RefreshFailure {
                // Transient: the stored tokens are kept.
                let now = configuration.now()
                let failures = state.withLock { $0.recordTransientFailure(organizationID) }
                if installation.expiresAt > now {
                    logger.warning("refresh failed; serving the still-valid token", metadata: [
                        "organization": .string(organizationID), "reason": .string(failure.reason), "failures": .stringConvertible(failures)])
                    return .init(
                        token: Self.token(installation),
                        nextAttempt: policy.nextAttempt(afterFailures: failures, now: now, expiresAt: installation.expiresAt))
                }
                let step = failure.retryInline
                    ? policy.step(afterAttempt: attempt, failures: failures, retryAfter: failure.retryAfter)
                    : .giveUp(retryAfter: policy.backoff(afterFailures: failures))
                switch step {
                case .giveUp(let retryAfter):
                    throw TokenManagerError.temporarilyUnavailable(organizationID: organizationID, reason: failure.reason, retryAfter: retryAfter)
                case .retry(let wait):
                    try await Task.sleep(for: wait)
                }
            }
        }
    }

    /// A transient failure inside a refresh (already recorded in the store).
    struct RefreshFailure: Error {
        var reason: String
        var retryAfter: Duration?
        /// Whether trying again at once could help (not for a suspected configuration fault).
        var retryInline = true
    }

    /// What happened under the lock; acted on (events, logs, metrics) after it is released.
    private enum LockedOutcome: Sendable {
        case token(Installation, refreshed: Bool)
        case clientMismatch(installedBy: String)
        /// Refused, but too many installations were refused too quickly to believe it (the breaker is open).
        case suspectedConfiguration(refusals: Int, message: String)
        case reauthorization(code: String, message: String)
        case configuration(String)
        case transient(String, Duration?)
        /// Another process holds the lock, and the caller asked not to wait.
        case busy
    }

    /// One refresh under the organization's cross-process lock: re-read the row, use another
    /// process's new tokens if it refreshed meanwhile, else call Linear and store the new pair
    /// before anyone uses it.
    private func refresh(_ organizationID: String, seen: Installation, force: Force, due: Date, skipIfBusy: Bool) async throws -> AccessToken {
        let started = ContinuousClock.now
        let outcome: LockedOutcome
        do {
            // Skipping is only for a token that still works: an expired one is waited for.
            let mayskip = skipIfBusy && seen.expiresAt > configuration.now()
            let underLock = { (current: Installation?, writer: TokenVault.LockedWriter) async throws -> LockedOutcome in
                guard var current else { throw TokenManagerError.notInstalled(organizationID: organizationID) }
                if current.status == .reauthorizationRequired {
                    let code = current.lastError ?? "invalid_grant"
                    return .reauthorization(code: code, message: code)
                }
                // A grant of another OAuth application: Linear would refuse our client, which says nothing
                // about the grant. Never ask, never mark.
                let clientID = self.linear.configuration.clientID
                if let installedBy = current.clientID ?? self.unboundClient, installedBy != clientID {
                    return .clientMismatch(installedBy: installedBy)
                }
                // Another process refreshed while we waited for the lock: use its tokens.
                if current.refreshToken != seen.refreshToken {
                    return .token(current, refreshed: false)
                }
                switch force {
                case .never where current.expiresAt > due: return .token(current, refreshed: false)
                case .ifStillUsing(let rejected) where current.accessToken != rejected: return .token(current, refreshed: false)
                default: break
                }
                let answer: LinearTokenResponse
                do throws(LinearOAuthError) {
                    answer = try await self.linear.refresh(current.refreshToken)
                } catch .reauthorizationRequired(let details) {
                    let now = self.configuration.now()
                    if case .suspectConfiguration(let refusals) = self.state.withLock({ $0.breaker.invalidGrant(organizationID, now: now) }) {
                        return .suspectedConfiguration(refusals: refusals, message: details.message)
                    }
                    current.status = .reauthorizationRequired
                    current.lastError = details.code ?? "invalid_grant"
                    current.refreshFailures += 1
                    try await writer.save(current)
                    return .reauthorization(code: current.lastError!, message: details.message)
                } catch .configuration(let details) {
                    return .configuration(LinearOAuthError.configuration(details).description)
                } catch .transient(let details) {
                    // Our caller went away (the request was cancelled): not Linear's failure; record nothing.
                    if Task.isCancelled { throw CancellationError() }
                    current.lastError = Self.shortCode(details)
                    current.refreshFailures += 1
                    try await writer.save(current)
                    return .transient(LinearOAuthError.transient(details).description, details.retryAfter)
                }
                Self.store(answer, in: &current, clientID: clientID, now: self.configuration.now())
                try await writer.save(current)
                return .token(current, refreshed: true)
            }
            if mayskip {
                outcome = try await vault.withRefreshLockIfFree(organizationID: organizationID, underLock) ?? .busy
            } else {
                outcome = try await vault.withRefreshLock(organizationID: organizationID, underLock)
            }
        } catch let error as TokenManagerError {
            throw error
        } catch let error as TokenDecryptionError {
            throw TokenManagerError.undecryptable(error)
        } catch TokenStoreError.lockTimeout {
            metrics.refresh(outcome: "lock_timeout", since: started)
            throw RefreshFailure(reason: "timed out waiting for another process's refresh", retryAfter: nil)
        } catch {
            // Cancelled (Linear's answer not awaited, the lock given up): nothing failed; record nothing.
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            metrics.refresh(outcome: "store_error", since: started)
            throw RefreshFailure(reason: "\(error)", retryAfter: nil)
        }
        switch outcome {
        case .busy:
            metrics.refresh(outcome: "skipped_busy", since: started)
            return Self.token(seen)
        case .token(let installation, let refreshed):
            state.withLock { $0.recordSuccess(organizationID) }
            if refreshed {
                // The configuration works: refusals are about their grants again.
                closeBreaker(because: "a refresh succeeded")
                metrics.refresh(outcome: "success", since: started)
                logger.info("refreshed tokens", metadata: [
                    "organization": .string(organizationID), "expires_at": .string(RFC3339.format(installation.expiresAt))])
                configuration.onEvent(.refreshed(organizationID: organizationID, expiresAt: installation.expiresAt))
            } else {
                metrics.refresh(outcome: "joined", since: started)
            }
            return Self.token(installation)
        case .clientMismatch(let installedBy):
            metrics.refresh(outcome: "client_mismatch", since: started)
            let error = TokenManagerError.clientMismatch(
                organizationID: organizationID, installedBy: installedBy, configured: linear.configuration.clientID)
            logger.error("refused to refresh another OAuth client's grant", metadata: [
                "organization": .string(organizationID), "reason": .string(error.description)])
            throw error
        case .suspectedConfiguration(let refusals, let message):
            metrics.refresh(outcome: "suspected_configuration_fault", since: started)
            metrics.breakerOpen.record(1)
            let reason = "Linear refused the refresh token (\(message)), as it did for \(refusals) installations within "
                + "\(Int(configuration.deauthorizationWindow.timeInterval)) s: suspected configuration fault; the installation was kept, not marked"
            logger.error("de-authorization breaker open: not marking the installation", metadata: [
                "organization": .string(organizationID), "refusals": .stringConvertible(refusals), "reason": .string(message)])
            throw RefreshFailure(reason: reason, retryAfter: nil, retryInline: false)
        case .reauthorization(let code, let message):
            metrics.refresh(outcome: "reauthorization_required", since: started)
            evict(organizationID)
            logger.error("Linear refused the refresh token; the installation needs re-authorization", metadata: [
                "organization": .string(organizationID), "reason": .string(message)])
            configuration.onEvent(.reauthorizationRequired(organizationID: organizationID, reason: message))
            // The error's reason is the stored code, the same on every later call.
            throw TokenManagerError.reauthorizationRequired(organizationID: organizationID, reason: code)
        case .configuration(let reason):
            metrics.refresh(outcome: "configuration_error", since: started)
            logger.error("refresh failed: configuration", metadata: ["organization": .string(organizationID), "reason": .string(reason)])
            throw TokenManagerError.configuration(reason: reason)
        case .transient(let reason, let retryAfter):
            metrics.refresh(outcome: "transient_error", since: started)
            logger.warning("refresh failed, will retry", metadata: ["organization": .string(organizationID), "reason": .string(reason)])
            configuration.onEvent(.refreshFailed(organizationID: organizationID, reason: reason))
            throw RefreshFailure(reason: reason, retryAfter: retryAfter)
        }
    }

    /// Who a grant without a recorded client belongs to: `nil` (anyone, who then records itself) unless
    /// ``Configuration/adoptsUnboundGrants`` is off.
    var unboundClient: String? { configuration.adoptsUnboundGrants ? nil : "(not recorded)" }

    /// Linear's answer to a refresh, in the installation: the new pair (Linear rotates refresh
    /// tokens; the old one is kept only if none came back), active again, failures forgotten, and the
    /// client recorded (a row from before client ids were recorded adopts the one that refreshed it).
    /// The expiry is `expires_in` after `now`, the manager's clock (``Configuration/now``), so that
    /// emulated time holds throughout; without an `expires_in`, the client's reading.
    static func store(_ answer: LinearTokenResponse, in installation: inout Installation, clientID: String, now: Date) {
        installation.accessToken = answer.accessToken
        installation.refreshToken = answer.refreshToken ?? installation.refreshToken
        installation.expiresAt = answer.expiresIn > 0 ? now.addingTimeInterval(TimeInterval(answer.expiresIn)) : answer.expiresAt
        if !answer.scopes.isEmpty { installation.scopes = answer.scopes }
        installation.lastRefreshAt = now
        installation.clientID = clientID
        installation.lastError = nil
        installation.refreshFailures = 0
        installation.status = .active
    }

    static func token(_ installation: Installation) -> AccessToken {
        AccessToken(
            token: installation.accessToken, expiresAt: installation.expiresAt, appUserID: installation.appUserID,
            organizationID: installation.organizationID)
    }

    /// A short code for `last_error`: Linear's error code or the HTTP status, never a message.
    private static func shortCode(_ details: LinearOAuthError.Details) -> String {
        details.code ?? details.status.map { "http_\($0)" } ?? "unreachable"
    }
}
