import Foundation

/// Every decision ``TokenManager`` makes about one process's tokens: what is cached, which load or
/// refresh is in flight, who leads it and who follows, when a failing organization may be tried
/// again, and the app token. A value type with mutating methods, kept by the manager under one lock:
/// each method decides under the lock and returns what to do, and the manager does it (I/O, waiting,
/// starting tasks) after the lock is released. Pure: no clock, no I/O; times come in as arguments.
package struct RefreshCoordinator: Sendable {
    package typealias AccessToken = TokenManager.AccessToken
    package typealias AppToken = TokenManager.AppToken

    /// A cached access token.
    package struct CachedToken: Sendable, Equatable {
        package var token: AccessToken
        /// No refresh is tried before this (back-off after transient failures, cool-down).
        package var nextAttempt: Date
        /// With refresh ahead: the seconds left below which the background refresh starts (0 without).
        package var refreshAheadBelow: TimeInterval
        /// Its place in the order of last use (least recently used entries go first when the cache is full).
        package var slot: Int
    }

    /// What a load or refresh produced: a token, and when the next refresh may be tried
    /// (`.distantPast`, or later than now while backing off with a still-valid token).
    package struct Outcome: Sendable {
        package var token: AccessToken
        package var nextAttempt: Date

        package init(token: AccessToken, nextAttempt: Date = .distantPast) {
            self.token = token
            self.nextAttempt = nextAttempt
        }
    }

    /// A leader's ticket: the flight it must finish, and the organization's generation when it
    /// started (an eviction meanwhile bumps it, and then the result is not cached).
    package struct Lead: Sendable {
        package let flight: Flight
        package let generation: UInt64
    }

    /// What ``accessToken(_:now:)`` asks the caller to do.
    package enum Access: Sendable {
        /// Hand out this cached token.
        case serve(AccessToken)
        /// Hand out this cached token, and start a background task that leads this refresh.
        case serveAndRefreshAhead(AccessToken, Lead)
        /// Nothing usable is cached and nothing is in flight: load the installation, refreshing it
        /// if it is due, then ``finish(_:of:with:)``.
        case lead(Lead)
        /// A load or refresh is in flight: wait for its result.
        case follow(Flight)
    }

    /// What ``join(_:)`` asks the caller to do.
    package enum Join: Sendable {
        case lead(Lead)
        case follow(Flight)
    }

    /// When a caller asks for a refresh although the token is not due.
    package enum Force: Sendable {
        /// Only when due (inside the margin, or the background refresher's window).
        case never
        /// Whatever the expiry.
        case always
        /// Only while the stored access token is still this one (Linear refused it).
        case ifStillUsing(Secret)
    }

    /// What a follower does with the result of the flight it waited for.
    package enum FollowerStep: Equatable, Sendable {
        /// Take the result.
        case take
        /// Join again: the result is not what it asked for, or the leader was cancelled.
        case joinAgain
    }

    /// What ``appToken(scopes:now:renewalMargin:)`` asks the caller to do.
    package enum AppTokenAccess: Sendable {
        case serve(AppToken)
        case lead(AppTokenFlight)
        case follow(AppTokenFlight)
    }

    /// An organization with a flight or failures on record (none: no entry).
    private struct Organization {
        var flight: Flight?
        var generation: UInt64 = 0
        var transientFailures = 0

        var isIdle: Bool { flight == nil && transientFailures == 0 }
    }

    /// Refresh when the token expires within this many seconds.
    package let refreshMargin: TimeInterval
    /// Serve a token inside the margin with more than half of it left while refreshing it in the background.
    package let refreshAhead: Bool
    /// Back-off, cool-down and jitter.
    package let policy: RetryPolicy
    /// Whether a refusal of a refresh token marks its installation (see ``DeauthorizationBreaker``).
    package var breaker: DeauthorizationBreaker

    /// At most this many cached tokens; past it the least recently used go (``TokenManager/Configuration/cacheCapacity``).
    package let cacheCapacity: Int
    private var cache: [String: CachedToken] = [:]
    /// The cached organizations by last use.
    private var recency = RecencyList()
    private var organizations: [String: Organization] = [:]
    private var appToken: AppToken?
    private var appTokenFlight: AppTokenFlight?

    package init(
        refreshMargin: TimeInterval, refreshAhead: Bool, policy: RetryPolicy, breaker: DeauthorizationBreaker = .init(),
        cacheCapacity: Int = .max
    ) {
        precondition(cacheCapacity > 0, "the token cache needs room for at least one token")
        self.cacheCapacity = cacheCapacity
        self.refreshMargin = refreshMargin
        self.refreshAhead = refreshAhead
        self.policy = policy
        self.breaker = breaker
    }

    // MARK: - Access tokens

    /// A caller wants the organization's access token at `now`.
    package mutating func accessToken(_ organizationID: String, now: Date) -> Access {
        if let index = cache.index(forKey: organizationID) {
            let cached = cache.values[index]
            recency.touch(cached.slot)
            let left = cached.token.expiresAt.timeIntervalSince(now)
            // Fresh, or inside the margin but backing off while the token still works.
            if left > refreshMargin || (now < cached.nextAttempt && left > 0) { return .serve(cached.token) }
            // Inside the margin with time to spare: served now, refreshed in the background from this
            // entry's own point in the first half of the margin on (instances that cache the same
            // token start at different moments, and the first one's refresh spares the others).
            if refreshAhead && left > refreshMargin / 2 {
                if left > cached.refreshAheadBelow || organizations[organizationID]?.flight != nil { return .serve(cached.token) }
                return .serveAndRefreshAhead(cached.token, startFlight(organizationID, background: true))
            }
        }
        switch join(organizationID) {
        case .lead(let lead): return .lead(lead)
        case .follow(let flight): return .follow(flight)
        }
    }

    /// A caller needs the organization's load or refresh: it follows the one in flight, or leads a new one.
    /// One dictionary look-up (each hashes the organization id): the entry is made if missing.
    package mutating func join(_ organizationID: String) -> Join {
        Self.join(&organizations[organizationID, default: Organization()], background: false)
    }

    private mutating func startFlight(_ organizationID: String, background: Bool) -> Lead {
        guard case .lead(let lead) = Self.join(&organizations[organizationID, default: Organization()], background: background) else {
            preconditionFailure("a flight was started while another was in flight")
        }
        return lead
    }

    private static func join(_ organization: inout Organization, background: Bool) -> Join {
        if let flight = organization.flight { return .follow(flight) }
        let flight = Flight(isBackground: background)
        organization.flight = flight
        return .lead(Lead(flight: flight, generation: organization.generation))
    }

    /// The leader is done: a token is cached (unless the organization was evicted meanwhile) and the
    /// flight ends. The leader then hands the result to the followers (``Flight/finish(_:)``).
    /// Two dictionary look-ups on the cold path: one in `organizations`, one to store the token.
    /// - Parameter addingToCache: `false` for the background refresher, which walks every due
    ///   installation: it replaces a cached token but does not add one, nor count as a use (the cache
    ///   holds what callers use, not what the refresher happened to visit).
    package mutating func finish(
        _ lead: Lead, of organizationID: String, with result: Result<Outcome, any Error>, addingToCache: Bool = true
    ) {
        guard let index = organizations.index(forKey: organizationID) else { return }
        if case .success(let outcome) = result, organizations.values[index].generation == lead.generation {
            // The refresh-ahead point is drawn only when refresh ahead is on: a random number is a
            // system call (getrandom) on every cold load otherwise.
            let refreshAheadBelow = refreshAhead ? policy.refreshAheadPoint(margin: refreshMargin) : 0
            if addingToCache {
                // A new slot, the most recently used, whether or not a token was cached: one hash of
                // the id. A replaced token's old slot is let go.
                let slot = recency.insert(organizationID)
                let entry = CachedToken(token: outcome.token, nextAttempt: outcome.nextAttempt, refreshAheadBelow: refreshAheadBelow, slot: slot)
                if let replaced = cache.updateValue(entry, forKey: organizationID) {
                    recency.remove(replaced.slot)
                } else if cache.count > cacheCapacity, let (oldestSlot, oldest) = recency.leastRecent {
                    // The new entry was used last, so it is not the one evicted.
                    recency.remove(oldestSlot)
                    cache.removeValue(forKey: oldest)
                }
            } else if let cached = cache.index(forKey: organizationID) {
                cache.values[cached] = CachedToken(
                    token: outcome.token, nextAttempt: outcome.nextAttempt, refreshAheadBelow: refreshAheadBelow,
                    slot: cache.values[cached].slot)
            }
        }
        if organizations.values[index].flight === lead.flight { organizations.values[index].flight = nil }
        if organizations.values[index].isIdle { organizations.remove(at: index) }
    }

    /// What a follower does with its flight's result. A follower that asked for more than the flight
    /// gave (a forced refresh, a refresh past a rejected token) joins again and so leads its own; one
    /// whose leader was cancelled joins again unless it is cancelled itself.
    package static func followerStep(
        after result: Result<AccessToken, any Error>, force: Force, isCancelled: Bool
    ) -> FollowerStep {
        if case .failure(let error) = result, error is CancellationError, !isCancelled { return .joinAgain }
        switch (force, result) {
        case (.always, _): return .joinAgain
        case (.ifStillUsing(let rejected), .success(let token)) where token.token == rejected: return .joinAgain
        default: return .take
        }
    }

    /// How many tokens are cached.
    package var cachedCount: Int { cache.count }

    /// The cached organizations from the most to the least recently used (walks the cache: for tests).
    package var cachedByRecency: [String] { recency.keysByRecency }

    /// Forgets the organization's cached token; a flight running now will not cache its result.
    package mutating func evict(_ organizationID: String) {
        if let removed = cache.removeValue(forKey: organizationID) { recency.remove(removed.slot) }
        // Without a flight there is no leader whose result could still arrive.
        if let index = organizations.index(forKey: organizationID), organizations.values[index].flight != nil {
            organizations.values[index].generation &+= 1
        }
    }

    /// Forgets every cached token; no flight running now will cache its result.
    package mutating func evictAll() {
        cache.removeAll()
        recency = RecencyList()
        for (organizationID, organization) in organizations where organization.flight != nil {
            organizations[organizationID]!.generation &+= 1
        }
    }

    /// The cached entry, if any.
    package func cached(_ organizationID: String) -> CachedToken? { cache[organizationID] }

    /// Whether a load or refresh of the organization is in flight.
    package func isInFlight(_ organizationID: String) -> Bool { organizations[organizationID]?.flight != nil }

    /// The organization's load or refresh in flight, if any.
    package func flight(_ organizationID: String) -> Flight? { organizations[organizationID]?.flight }

    /// Refresh-ahead flights running now (the process waits for them before it exits).
    package var backgroundFlights: [Flight] {
        organizations.values.compactMap { $0.flight }.filter(\.isBackground)
    }

    // MARK: - Failures

    /// A refresh failed for a reason that may pass. Returns the failures in a row.
    package mutating func recordTransientFailure(_ organizationID: String) -> Int {
        var organization = organizations[organizationID] ?? Organization()
        organization.transientFailures += 1
        organizations[organizationID] = organization
        return organization.transientFailures
    }

    /// A refresh succeeded (or another process's tokens were found): the failures are forgotten.
    package mutating func recordSuccess(_ organizationID: String) {
        guard var organization = organizations[organizationID] else { return }
        organization.transientFailures = 0
        organizations[organizationID] = organization.isIdle ? nil : organization
    }

    /// Until when the organization is left alone after failures, if that is later than `now`.
    package func coolingDown(_ organizationID: String, now: Date) -> Date? {
        guard let cached = cache[organizationID], now < cached.nextAttempt else { return nil }
        return cached.nextAttempt
    }

    // MARK: - The app token

    /// A caller wants the app token with `scopes`: served from memory while it has more than
    /// `renewalMargin` left, else fetched by one leader at a time.
    package mutating func appToken(scopes: Set<String>, now: Date, renewalMargin: TimeInterval) -> AppTokenAccess {
        if let appToken, appToken.expiresAt.timeIntervalSince(now) > renewalMargin, Set(appToken.scopes) == scopes {
            return .serve(appToken)
        }
        if let appTokenFlight { return .follow(appTokenFlight) }
        let flight = AppTokenFlight()
        appTokenFlight = flight
        return .lead(flight)
    }

    /// The app-token leader is done: the token is cached and the flight ends.
    package mutating func finishAppToken(_ flight: AppTokenFlight, with result: Result<AppToken, any Error>) {
        if case .success(let token) = result { appToken = token }
        if appTokenFlight === flight { appTokenFlight = nil }
    }
}
