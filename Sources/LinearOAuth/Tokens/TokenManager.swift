import Foundation
import Logging
import Metrics
import Synchronization

/// A valid access token on demand, for any number of workspaces:
///
/// ```swift
/// let token = try await tokens.accessToken(for: organizationID)
/// ```
///
/// Tokens are cached in memory until they come within the refresh margin of expiry. Then exactly
/// one refresh runs per organization: callers in this process share it, and other processes wait on
/// the store's refresh lock and use what the winner stored. A refresh whose answer is lost (or whose
/// process dies before it commits) is recovered by the next attempt: the old refresh token is still
/// stored, and Linear replays the answer within its grace window.
public final class TokenManager: Sendable {
    /// Tuning; the defaults suit Linear's 24-hour access tokens.
    public struct Configuration: Sendable {
        /// Refresh when the access token expires within this long (clock skew, slow calls).
        public var refreshMargin: Duration = .seconds(600)
        /// Attempts of a refresh whose token has already expired, before the caller gets an error.
        public var maxAttempts = 3
        /// First back-off between attempts; doubles each time, with ±50 % jitter.
        public var initialBackoff: Duration = .milliseconds(200)
        /// Longest back-off between attempts of one call, and between calls while a still-valid token is served.
        public var maxBackoff: Duration = .seconds(30)
        /// The longest a caller waits between attempts (Linear's `Retry-After` may ask for more:
        /// then the caller gets `temporarilyUnavailable` with that `retryAfter` at once).
        public var maxInlineWait: Duration = .seconds(2)
        /// After this many transient failures in a row an organization cools down.
        public var cooldownAfterFailures = 5
        /// How long a cooling-down organization is left alone (its still-valid token is served), ±50 %
        /// jitter, so installations that failed together do not retry together.
        public var cooldown: Duration = .seconds(300)
        /// Renew the app token (30 days) when it expires within this long.
        public var appTokenRenewalMargin: Duration = .seconds(86_400)
        /// Where metrics go; `nil`: the process-wide `MetricsSystem` (a Prometheus registry, say).
        public var metricsFactory: (any MetricsFactory)?
        /// Refresh ahead: a cached token inside the refresh margin that still has more than half the
        /// margin to live is handed out at once while one background task refreshes it (from a random
        /// point of the margin's first half, so that instances holding the same token do not all
        /// start together), and callers wait for Linear only when a token is close to expiry. For long-running processes (the
        /// service turns it on): call ``finishBackgroundRefreshes()`` before exiting, because a
        /// refresh cut off after Linear answered is only recoverable within Linear's grace period.
        public var refreshAhead = false
        /// The clock that expiry, back-off and cool-down are judged by (tests drive emulated time with it).
        public var now: @Sendable () -> Date = { Date() }
        /// Called for every ``TokenEvent``; keep it quick.
        public var onEvent: @Sendable (TokenEvent) -> Void = { _ in }

        public init() {}
    }

    /// A token ready to use.
    public struct AccessToken: Sendable, Equatable {
        public var token: Secret
        public var expiresAt: Date
        public var appUserID: String
        public var organizationID: String
    }

    public let vault: TokenVault
    public let linear: LinearClient
    public let configuration: Configuration
    private let logger: Logger

    private struct CacheEntry {
        var token: AccessToken
        /// No refresh is tried before this (back-off after transient failures, cool-down).
        var nextAttempt: Date
        /// With refresh ahead: the seconds left below which the background refresh starts (a random
        /// point of the margin's first half, leaving at least a twentieth of the margin for it).
        var refreshAheadBelow: TimeInterval
    }

    private struct State {
        var cache: [String: CacheEntry] = [:]
        var inFlight: [String: Flight] = [:]
        /// Bumped by revocation and eviction, so a refresh that finishes afterwards does not cache.
        var generation: [String: UInt64] = [:]
        var transientFailures: [String: Int] = [:]
        /// Refresh-ahead tasks by organization.
        var background: [String: Task<Void, Never>] = [:]
        var appToken: AppToken?
        var appTokenInFlight: Task<AppToken, any Error>?
    }

    /// The app's own token (`client_credentials`).
    public struct AppToken: Sendable, Equatable {
        public var token: Secret
        public var expiresAt: Date
        public var scopes: [String]
    }

    private let state = Mutex(State())
    private let metrics: TokenMetrics

    public init(vault: TokenVault, linear: LinearClient, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "linear-oauth.tokens")) {
        self.vault = vault
        self.linear = linear
        self.configuration = configuration
        self.logger = logger
        self.metrics = TokenMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory)
    }

    // MARK: - Getting a token

    /// A valid access token for the organization: from memory while it is outside the refresh
    /// margin, else loaded, and refreshed when due.
    /// - Throws: ``TokenManagerError``.
    public func accessToken(for organizationID: String) async throws(TokenManagerError) -> AccessToken {
        let now = configuration.now()
        let margin = configuration.refreshMargin.timeInterval
        let refreshAhead = configuration.refreshAhead
        if let hit = state.withLock({ state -> AccessToken? in
            guard let entry = state.cache[organizationID] else { return nil }
            let left = entry.token.expiresAt.timeIntervalSince(now)
            // Fresh, or inside the margin but backing off while the token still works.
            if left > margin || (now < entry.nextAttempt && left > 0) { return entry.token }
            // Inside the margin with time to spare: served now, refreshed in the background from this
            // entry's own point in the first half of the margin on (instances that cache the same
            // token start at different moments, and the first one's refresh spares the others).
            if refreshAhead && left > margin / 2 {
                if left > entry.refreshAheadBelow { return entry.token }
                if state.inFlight[organizationID] == nil && state.background[organizationID] == nil {
                    state.background[organizationID] = refreshInBackground(organizationID)
                }
                return entry.token
            }
            return nil
        }) {
            metrics.cacheHits.increment()
            return hit
        }
        metrics.cacheMisses.increment()
        return try await shared(organizationID, force: .never) { try await self.loadOrRefresh(organizationID, force: .never) }
    }

    /// A refresh-ahead task (started under the state lock; it clears its own slot when done).
    private func refreshInBackground(_ organizationID: String) -> Task<Void, Never> {
        Task {
            _ = try? await self.shared(organizationID, force: .never) { try await self.loadOrRefresh(organizationID, force: .never) }
            self.state.withLock { _ = $0.background.removeValue(forKey: organizationID) }
        }
    }

    /// Waits for the refresh-ahead tasks running now (call it before the process exits).
    public func finishBackgroundRefreshes() async {
        while let task = state.withLock({ $0.background.values.first }) { await task.value }
    }

    /// A token and when the next refresh may be tried (later than now while backing off).
    private typealias Outcome = (token: AccessToken, nextAttempt: Date)

    /// Refreshes now, whatever the expiry.
    @discardableResult
    public func forceRefresh(for organizationID: String) async throws(TokenManagerError) -> AccessToken {
        try await shared(organizationID, force: .always) { try await self.loadOrRefresh(organizationID, force: .always) }
    }

    /// Linear refused `rejected` (401): refresh, unless the store already holds another access token
    /// (another caller or process refreshed meanwhile), which is then used.
    @discardableResult
    public func refresh(afterRejectionOf rejected: Secret, for organizationID: String) async throws(TokenManagerError) -> AccessToken {
        try await shared(organizationID, force: .ifStillUsing(rejected)) {
            try await self.loadOrRefresh(organizationID, force: .ifStillUsing(rejected))
        }
    }

    /// When to refresh although the token is not due.
    enum Force: Sendable {
        case never
        case always
        /// Only while the stored access token is still this one.
        case ifStillUsing(Secret)
    }

    /// Runs a GraphQL query for an organization. If Linear answers 401 `AUTHENTICATION_ERROR`, the
    /// token is refreshed once and the query retried once.
    /// - Throws: ``TokenManagerError`` (no token) or ``LinearAPIError`` (e.g. `rateLimited(resetAt:)`).
    public func graphQL(_ query: String, variables: [String: any Sendable] = [:], for organizationID: String) async throws
        -> LinearGraphQLResponse
    {
        let token = try await accessToken(for: organizationID)
        do {
            return try await linear.graphQL(query, variables: variables, accessToken: token.token)
        } catch .authenticationFailed {
            logger.info("Linear refused the access token; refreshing once", metadata: ["organization": .string(organizationID)])
            let renewed = try await refresh(afterRejectionOf: token.token, for: organizationID)
            return try await linear.graphQL(query, variables: variables, accessToken: renewed.token)
        }
    }

    /// Refreshes if the token expires within `window` (the background refresher's call).
    @discardableResult
    public func refreshIfExpiring(within window: Duration, for organizationID: String) async throws(TokenManagerError) -> AccessToken {
        try await shared(organizationID, force: .never) {
            try await self.loadOrRefresh(organizationID, force: .never, window: max(window, self.configuration.refreshMargin))
        }
    }

    /// Joins the organization's running load or refresh, or starts one (single flight).
    /// Joins the organization's running load or refresh, or leads one (single flight). The leader
    /// works inline, on its own task (no task is spawned on the cold path); followers wait for its
    /// result. If the leader is cancelled, a follower that is not takes over; a follower that asked
    /// for more than the flight gave (a forced refresh, a refresh past a rejected token) leads its own.
    private func shared(_ organizationID: String, force: Force, _ work: @Sendable () async throws -> Outcome) async throws(TokenManagerError) -> AccessToken {
        while true {
            enum Role { case leader(Flight, UInt64), follower(Flight) }
            let role: Role = state.withLock { state in
                if let flight = state.inFlight[organizationID] { return .follower(flight) }
                let flight = Flight()
                state.inFlight[organizationID] = flight
                return .leader(flight, state.generation[organizationID, default: 0])
            }
            let result: Result<AccessToken, any Error>
            switch role {
            case .leader(let flight, let generation):
                do {
                    let outcome = try await work()
                    result = .success(outcome.token)
                    state.withLock { state in
                        if state.generation[organizationID, default: 0] == generation {
                            state.cache[organizationID] = CacheEntry(
                                token: outcome.token, nextAttempt: outcome.nextAttempt,
                                refreshAheadBelow: self.configuration.refreshMargin.timeInterval * Double.random(in: 0.55...1))
                        }
                        state.inFlight.removeValue(forKey: organizationID)
                    }
                } catch {
                    result = .failure(error)
                    state.withLock { _ = $0.inFlight.removeValue(forKey: organizationID) }
                }
                flight.finish(result)
            case .follower(let flight):
                result = await flight.wait()
                if case .failure(let error) = result, error is CancellationError, !Task.isCancelled { continue }
                switch (force, result) {
                case (.always, _): continue
                case (.ifStillUsing(let rejected), .success(let token)) where token.token == rejected: continue
                default: break
                }
            }
            switch result {
            case .success(let token): return token
            case .failure(let error as TokenManagerError): throw error
            case .failure(let error): throw .temporarilyUnavailable(organizationID: organizationID, reason: "\(error)", retryAfter: nil)
            }
        }
    }

    private func loadOrRefresh(_ organizationID: String, force: Force, window: Duration? = nil) async throws -> Outcome {
        let installation: Installation
        do {
            guard let loaded = try await vault.load(organizationID: organizationID) else {
                throw TokenManagerError.notInstalled(organizationID: organizationID)
            }
            installation = loaded
        } catch let error as TokenManagerError {
            throw error
        } catch {
            throw TokenManagerError.temporarilyUnavailable(organizationID: organizationID, reason: "\(error)", retryAfter: nil)
        }
        if installation.status == .reauthorizationRequired {
            throw TokenManagerError.reauthorizationRequired(
                organizationID: organizationID, reason: installation.lastError ?? "invalid_grant")
        }
        let settled = Date.distantPast
        let now = configuration.now()
        let due = now.addingTimeInterval((window ?? configuration.refreshMargin).timeInterval)
        switch force {
        case .never where installation.expiresAt > due:
            return (Self.token(installation), settled)
        case .ifStillUsing(let rejected) where installation.accessToken != rejected:
            return (Self.token(installation), settled)
        default: break
        }
        // Cooling down after repeated failures: serve the token while it works, and leave Linear alone.
        if case .never = force, let entry = state.withLock({ $0.cache[organizationID] }), now < entry.nextAttempt {
            if installation.expiresAt > now { return (Self.token(installation), entry.nextAttempt) }
            throw TokenManagerError.temporarilyUnavailable(
                organizationID: organizationID, reason: "cooling down after repeated failures",
                retryAfter: .seconds(Int(entry.nextAttempt.timeIntervalSince(now).rounded(.up))))
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                return (try await refresh(organizationID, seen: installation, force: force, due: due), settled)
            } catch let failure as RefreshFailure {
                // Transient: the stored tokens are kept.
                let now = configuration.now()
                let stillValid = installation.expiresAt > now
                let failures = state.withLock { state -> Int in
                    state.transientFailures[organizationID, default: 0] += 1
                    return state.transientFailures[organizationID]!
                }
                let backoff = backoff(after: failures)
                if stillValid {
                    let wait = failures >= configuration.cooldownAfterFailures
                        ? configuration.cooldown.timeInterval * Double.random(in: 0.5...1.5) : backoff.timeInterval
                    logger.warning("refresh failed; serving the still-valid token", metadata: [
                        "organization": .string(organizationID), "reason": .string(failure.reason), "failures": .stringConvertible(failures)])
                    // Never past the expiry: once the token is dead, callers must be able to try again. Near
                    // the expiry the next try is spread over what is left, so installations that failed
                    // together do not all come back at the same instant.
                    // Near it, never closer together than the longest back-off (nor past the expiry).
                    let left = installation.expiresAt.timeIntervalSince(now)
                    let next = wait < left ? wait : max(left * Double.random(in: 0.5...1), min(left, configuration.maxBackoff.timeInterval))
                    return (Self.token(installation), now.addingTimeInterval(next))
                }
                guard attempt < configuration.maxAttempts else {
                    throw TokenManagerError.temporarilyUnavailable(
                        organizationID: organizationID, reason: failure.reason, retryAfter: failure.retryAfter ?? backoff)
                }
                let wait = max(failure.retryAfter.map { min($0, configuration.maxBackoff) } ?? .zero, backoff)
                // A caller is not kept waiting long: past `maxInlineWait` it is told when to come back.
                guard wait <= configuration.maxInlineWait else {
                    throw TokenManagerError.temporarilyUnavailable(organizationID: organizationID, reason: failure.reason, retryAfter: wait)
                }
                try await Task.sleep(for: wait)
            }
        }
    }

    /// A transient failure inside a refresh (already recorded).
    private struct RefreshFailure: Error {
        var reason: String
        var retryAfter: Duration?
    }

    private enum LockedOutcome: Sendable {
        case token(Installation, refreshed: Bool)
        case reauthorization(code: String, message: String)
        case configuration(String)
        case transient(String, Duration?)
    }

    /// One refresh under the organization's cross-process lock.
    private func refresh(_ organizationID: String, seen: Installation, force: Force, due: Date) async throws -> AccessToken {
        let started = ContinuousClock.now
        let outcome: LockedOutcome
        do {
            outcome = try await vault.withRefreshLock(organizationID: organizationID) { current, writer -> LockedOutcome in
                guard var current else { throw TokenManagerError.notInstalled(organizationID: organizationID) }
                if current.status == .reauthorizationRequired {
                    let code = current.lastError ?? "invalid_grant"
                    return .reauthorization(code: code, message: code)
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
                current.accessToken = answer.accessToken
                // Linear rotates refresh tokens; keep the old one only if none came back.
                current.refreshToken = answer.refreshToken ?? current.refreshToken
                current.expiresAt = answer.expiresAt
                if !answer.scopes.isEmpty { current.scopes = answer.scopes }
                current.lastRefreshAt = self.configuration.now()
                current.lastError = nil
                current.refreshFailures = 0
                current.status = .active
                try await writer.save(current)
                return .token(current, refreshed: true)
            }
        } catch let error as TokenManagerError {
            throw error
        } catch TokenStoreError.lockTimeout {
            metrics.refresh(outcome: "lock_timeout", since: started)
            throw RefreshFailure(reason: "timed out waiting for another process's refresh", retryAfter: nil)
        } catch {
            metrics.refresh(outcome: "store_error", since: started)
            throw RefreshFailure(reason: "\(error)", retryAfter: nil)
        }
        switch outcome {
        case .token(let installation, let refreshed):
            state.withLock { _ = $0.transientFailures.removeValue(forKey: organizationID) }
            if refreshed {
                metrics.refresh(outcome: "success", since: started)
                logger.info("refreshed tokens", metadata: [
                    "organization": .string(organizationID), "expires_at": .string(RFC3339.format(installation.expiresAt))])
                configuration.onEvent(.refreshed(organizationID: organizationID, expiresAt: installation.expiresAt))
            } else {
                metrics.refresh(outcome: "joined", since: started)
            }
            return Self.token(installation)
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

    // MARK: - The app's own token

    /// The app's own access token (`client_credentials` grant, valid 30 days, no refresh token):
    /// cached, stored encrypted, and renewed before it expires. Asking for other scopes than the
    /// stored token's renews it (and Linear then revokes the earlier app tokens).
    public func appToken(scopes: [String] = ["read", "write"]) async throws(TokenManagerError) -> AppToken {
        let margin = configuration.appTokenRenewalMargin.timeInterval
        let wanted = Set(scopes + ["read"])
        if let cached = state.withLock({ $0.appToken }), cached.expiresAt.timeIntervalSinceNow > margin, Set(cached.scopes) == wanted {
            metrics.cacheHits.increment()
            return cached
        }
        let task: Task<AppToken, any Error> = state.withLock { state in
            if let running = state.appTokenInFlight { return running }
            let task = Task<AppToken, any Error> {
                defer { self.state.withLock { $0.appTokenInFlight = nil } }
                let token = try await self.loadOrFetchAppToken(scopes: scopes, wanted: wanted, margin: margin)
                self.state.withLock { $0.appToken = token }
                return token
            }
            state.appTokenInFlight = task
            return task
        }
        let token: AppToken
        do {
            token = try await task.value
        } catch let error as TokenManagerError {
            throw error
        } catch {
            throw .temporarilyUnavailable(organizationID: "(app token)", reason: "\(error)", retryAfter: nil)
        }
        // Joined a fetch for other scopes: fetch again for ours.
        if Set(token.scopes) != wanted, !Task.isCancelled { return try await appToken(scopes: scopes) }
        return token
    }

    private func loadOrFetchAppToken(scopes: [String], wanted: Set<String>, margin: TimeInterval) async throws -> AppToken {
        let clientID = linear.configuration.clientID
        if let stored = try await vault.store.loadAppToken(clientID: clientID),
            stored.expiresAt.timeIntervalSinceNow > margin, Set(stored.scopes) == wanted
        {
            return AppToken(token: try vault.keyRing.openAppToken(stored), expiresAt: stored.expiresAt, scopes: stored.scopes)
        }
        let answer: LinearTokenResponse
        do {
            answer = try await linear.clientCredentials(scopes: scopes)
        } catch .configuration(let details) {
            throw TokenManagerError.configuration(reason: LinearOAuthError.configuration(details).description)
        } catch let error {
            throw TokenManagerError.temporarilyUnavailable(
                organizationID: "(app token)", reason: error.description, retryAfter: error.details.retryAfter)
        }
        let granted = answer.scopes.isEmpty ? Array(wanted) : answer.scopes
        try await vault.store.saveAppToken(
            vault.keyRing.sealAppToken(clientID: clientID, accessToken: answer.accessToken, expiresAt: answer.expiresAt, scopes: granted))
        logger.info("fetched the app token", metadata: ["expires_at": .string(RFC3339.format(answer.expiresAt))])
        return AppToken(token: answer.accessToken, expiresAt: answer.expiresAt, scopes: granted)
    }

    // MARK: - Revocation

    /// What ``revoke(for:)`` did.
    public struct Revocation: Sendable, Equatable {
        /// Whether there were tokens to revoke.
        public var wasInstalled: Bool
        /// Failures revoking at Linear (recorded; the local tokens are deleted regardless).
        public var linearFailures: [String]
    }

    /// Revokes the refresh and access tokens at Linear (best effort), deletes them locally and
    /// evicts them from memory. Idempotent; afterwards the organization reads as not installed.
    @discardableResult
    public func revoke(for organizationID: String) async throws(TokenManagerError) -> Revocation {
        evict(organizationID)
        let result: Revocation
        do {
            let keyRing = vault.keyRing
            result = try await vault.store.withRefreshLock(organizationID: organizationID) { sealed, transaction in
                guard let sealed else { return Revocation(wasInstalled: false, linearFailures: []) }
                var failures: [String] = []
                do {
                    // The access token first: revoking the refresh token may take its access token with it.
                    let current = try keyRing.open(sealed)
                    for (token, hint) in [(current.accessToken, LinearTokenTypeHint.accessToken), (current.refreshToken, .refreshToken)] {
                        do {
                            if case .notRevoked(let reason) = try await self.linear.revoke(token, hint: hint) {
                                failures.append("\(hint.rawValue): \(reason)")
                            }
                        } catch {
                            failures.append("\(hint.rawValue): \(error)")
                        }
                    }
                } catch {
                    // Tokens we cannot open cannot be revoked at Linear, but they are deleted all the same.
                    failures.append("tokens not revoked at Linear: \(error)")
                }
                try await transaction.delete()
                return Revocation(wasInstalled: true, linearFailures: failures)
            }
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

    /// Forgets the organization's cached token (another instance changed it, or it was deleted).
    public func evict(_ organizationID: String) {
        state.withLock { state in
            state.cache.removeValue(forKey: organizationID)
            state.generation[organizationID, default: 0] &+= 1
        }
    }

    // MARK: - Helpers

    private static func token(_ installation: Installation) -> AccessToken {
        AccessToken(
            token: installation.accessToken, expiresAt: installation.expiresAt, appUserID: installation.appUserID,
            organizationID: installation.organizationID)
    }

    /// Exponential back-off with ±50 % jitter, capped.
    private func backoff(after failures: Int) -> Duration {
        let base = configuration.initialBackoff.timeInterval * pow(2, Double(min(failures - 1, 20)))
        let capped = min(base, configuration.maxBackoff.timeInterval)
        return .milliseconds(Int64(capped * Double.random(in: 0.5...1.5) * 1000))
    }

    /// A short code for `last_error`: Linear's error code or the HTTP status, never a message.
    private static func shortCode(_ details: LinearOAuthError.Details) -> String {
        details.code ?? details.status.map { "http_\($0)" } ?? "unreachable"
    }
}

/// One load or refresh in progress, and the callers waiting for it.
final class Flight: Sendable {
    private let state = Mutex<(result: Result<TokenManager.AccessToken, any Error>?, waiters: [CheckedContinuation<Result<TokenManager.AccessToken, any Error>, Never>])>((nil, []))

    func wait() async -> Result<TokenManager.AccessToken, any Error> {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Result<TokenManager.AccessToken, any Error>? in
                if let result = state.result { return result }
                state.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    func finish(_ result: Result<TokenManager.AccessToken, any Error>) {
        let waiters = state.withLock { state in
            state.result = result
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }
}

extension Duration {
    /// The duration in seconds, as Foundation counts time.
    public var timeInterval: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }
}

/// The metrics the manager reports (swift-metrics): cache hits and misses, refreshes by outcome
/// (`success`, `joined`, `reauthorization_required`, `configuration_error`, `transient_error`,
/// `lock_timeout`, `store_error`) and their latency.
struct TokenMetrics: Sendable {
    static let refreshes = "linear_oauth_refreshes_total"
    static let refreshDuration = "linear_oauth_refresh_duration_seconds"
    static let cacheHitsLabel = "linear_oauth_token_cache_hits_total"
    static let cacheMissesLabel = "linear_oauth_token_cache_misses_total"

    let factory: any MetricsFactory
    let cacheHits: Counter
    let cacheMisses: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        cacheHits = Counter(label: Self.cacheHitsLabel, factory: factory)
        cacheMisses = Counter(label: Self.cacheMissesLabel, factory: factory)
    }

    func refresh(outcome: String, since start: ContinuousClock.Instant) {
        Counter(label: Self.refreshes, dimensions: [("outcome", outcome)], factory: factory).increment()
        Timer(label: Self.refreshDuration, dimensions: [("outcome", outcome)], factory: factory)
            .recordNanoseconds(Int64((ContinuousClock.now - start).timeInterval * 1e9))
    }
}
