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
///
/// Where to read on: ``RefreshCoordinator`` makes every decision (cache, single flight, refresh
/// ahead) and ``RetryPolicy`` the timing of retries; `TokenManager+SingleFlight.swift` acts on them,
/// `TokenManager+Refresh.swift` loads and refreshes under the store's lock, `+AppToken` and
/// `+Revocation` hold the rest.
public final class TokenManager: Sendable {
    /// A token ready to use.
    public struct AccessToken: Sendable, Equatable {
        public var token: Secret
        public var expiresAt: Date
        public var appUserID: String
        public var organizationID: String

        package init(token: Secret, expiresAt: Date, appUserID: String, organizationID: String) {
            self.token = token
            self.expiresAt = expiresAt
            self.appUserID = appUserID
            self.organizationID = organizationID
        }
    }

    /// The app's own token (`client_credentials`).
    public struct AppToken: Sendable, Equatable {
        public var token: Secret
        public var expiresAt: Date
        public var scopes: [String]

        package init(token: Secret, expiresAt: Date, scopes: [String]) {
            self.token = token
            self.expiresAt = expiresAt
            self.scopes = scopes
        }
    }

    public let vault: TokenVault
    public let linear: LinearClient
    public let configuration: Configuration
    let logger: Logger
    let metrics: TokenMetrics
    let policy: RetryPolicy
    /// ``Configuration/refreshMargin`` in seconds (converting a `Duration` divides 128-bit integers).
    let refreshMargin: TimeInterval
    /// Every decision about this process's tokens is made under this lock, and acted on after it.
    let state: Mutex<RefreshCoordinator>

    public init(vault: TokenVault, linear: LinearClient, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "linear-oauth.tokens")) {
        self.vault = vault
        self.linear = linear
        self.configuration = configuration
        self.logger = logger
        self.metrics = TokenMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory)
        let policy = RetryPolicy(configuration)
        self.policy = policy
        self.refreshMargin = configuration.refreshMargin.timeInterval
        self.state = Mutex(RefreshCoordinator(
            refreshMargin: refreshMargin, refreshAhead: configuration.refreshAhead, policy: policy,
            breaker: DeauthorizationBreaker(
                threshold: configuration.deauthorizationThreshold, window: configuration.deauthorizationWindow.timeInterval),
            cacheCapacity: max(1, configuration.cacheCapacity)))
        metrics.breakerOpen.record(0)
    }

    /// A valid access token for the organization: from memory while it is outside the refresh
    /// margin, else loaded, and refreshed when due.
    /// - Throws: ``TokenManagerError``.
    nonisolated(nonsending) public func accessToken(for organizationID: String) async throws(TokenManagerError) -> AccessToken {
        let now = configuration.now()
        let miss: Miss
        switch state.withLock({ $0.accessToken(organizationID, now: now) }) {
        case .serve(let token):
            metrics.cacheHits.increment()
            return token
        case .serveAndRefreshAhead(let token, let lead):
            metrics.cacheHits.increment()
            refreshAhead(lead, organizationID)
            return token
        case .lead(let lead):
            metrics.cacheMisses.increment()
            miss = .lead(lead)
        case .follow(let flight):
            metrics.cacheMisses.increment()
            miss = .followed(flight)
        }
        // Every await is past the switch, whose value (with a token in it) is then gone: a value
        // alive across an await takes room in the frame, and this frame is the hot path's. A
        // follower waits here for the news only (see `follow(_:_:force:window:)`): a storm's
        // followers then wait in about 500 bytes of frames each, where they took 1,600 (more than
        // the slab a task starts with, so each allocated another) going through two more functions.
        if case .followed(let flight) = miss { await flight.finished() }
        return try await handle(miss, organizationID)
    }

    /// What a cache miss does after ``accessToken(for:)`` has decided.
    private enum Miss {
        /// Lead the load or refresh.
        case lead(RefreshCoordinator.Lead)
        /// Follow the flight: once it has finished, take its result, or join again.
        case followed(Flight)
    }

    /// Takes a finished flight's result, leads, or joins again. Out of line, with one awaited call:
    /// the hot path's async frame stays small enough for the task's own allocator (a cache hit
    /// allocates nothing), and so does a follower's.
    @inline(never)
    nonisolated(nonsending) private func handle(_ miss: Miss, _ organizationID: String) async throws(TokenManagerError) -> AccessToken {
        if case .followed(let flight) = miss, let token = Self.token(from: flight) { return token }
        return try await proceed(miss, organizationID)
    }

    /// Leads, or (through ``follow(_:_:force:window:)``, the flight already finished) throws the
    /// failure of the flight followed or joins again.
    @inline(never)
    nonisolated(nonsending) private func proceed(_ miss: Miss, _ organizationID: String) async throws(TokenManagerError) -> AccessToken {
        switch miss {
        case .lead(let lead): try await run(lead, organizationID, force: .never)
        case .followed(let flight): try await follow(flight, organizationID, force: .never)
        }
    }

    /// Starts the background refresh of a token served inside its margin.
    @inline(never)
    private func refreshAhead(_ lead: RefreshCoordinator.Lead, _ organizationID: String) {
        Task { _ = try? await self.run(lead, organizationID, force: .never) }
    }

    /// Refreshes now, whatever the expiry.
    @discardableResult
    public func forceRefresh(for organizationID: String) async throws(TokenManagerError) -> AccessToken {
        try await singleFlight(organizationID, force: .always)
    }

    /// Linear refused `rejected` (401): refresh, unless the store already holds another access token
    /// (another caller or process refreshed meanwhile), which is then used.
    @discardableResult
    public func refresh(afterRejectionOf rejected: Secret, for organizationID: String) async throws(TokenManagerError) -> AccessToken {
        try await singleFlight(organizationID, force: .ifStillUsing(rejected))
    }

    /// Refreshes if the token expires within `window` (the background refresher's call). When another
    /// process holds the organization's refresh lock and the token still works, it does not wait: that
    /// process is refreshing it (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so instances split the due
    /// work instead of queueing on the same rows.
    @discardableResult
    public func refreshIfExpiring(within window: Duration, for organizationID: String) async throws(TokenManagerError) -> AccessToken {
        try await singleFlight(organizationID, force: .never, window: max(window, configuration.refreshMargin), skipIfBusy: true)
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

    /// Forgets the organization's cached token (another instance changed it, or it was deleted).
    public func evict(_ organizationID: String) {
        state.withLock { $0.evict(organizationID) }
    }

    /// How many access tokens are cached now (at most ``Configuration/cacheCapacity``).
    public var cachedTokenCount: Int {
        state.withLock { $0.cachedCount }
    }

    /// How many callers wait for the organization's load or refresh in flight (0 without one): a
    /// test's way to know that followers have joined.
    package func waitingCallers(for organizationID: String) -> Int {
        state.withLock { $0.flight(organizationID) }?.waiting ?? 0
    }

    /// Forgets every cached token (changes may have been missed: the change listener reconnected).
    public func evictAll() {
        state.withLock { $0.evictAll() }
    }

    /// Why this process is degraded, or `nil`: the de-authorization breaker is open (Linear refused
    /// the refresh tokens of too many installations too quickly: suspected configuration fault).
    public var degradedReason: String? {
        state.withLock { $0.breaker.reason }
    }

    /// Closes the de-authorization breaker (an operator fixed the configuration): refusals mark
    /// their installations again.
    public func resetDeauthorizationBreaker() {
        closeBreaker(because: "reset by an operator")
    }

    /// Closes the de-authorization breaker (a refresh succeeded, or an operator asked), saying so if it was open.
    func closeBreaker(because reason: String) {
        let wasOpen = state.withLock { coordinator in
            defer { coordinator.breaker.reset() }
            return coordinator.breaker.isOpen
        }
        guard wasOpen else { return }
        metrics.breakerOpen.record(0)
        logger.notice("de-authorization breaker closed", metadata: ["reason": .string(reason)])
    }

    /// Waits for the refresh-ahead refreshes running now (call it before the process exits).
    public func finishBackgroundRefreshes() async {
        while let flight = state.withLock({ $0.backgroundFlights.first }) { _ = await flight.wait() }
    }
}
