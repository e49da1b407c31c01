import Foundation
import LinearOAuth
import LinearOAuthServer
import LinearOAuthTestSupport
import Synchronization
import Testing

/// The token manager's decisions as pure values: no store, no Linear, no clock, no sleeps. Each
/// test drives ``RefreshCoordinator`` through transitions and checks what it asks the manager to do.
@Suite("Refresh coordinator: every decision, without I/O", .capturesLogs)
struct RefreshCoordinatorTests {
    static let margin: TimeInterval = 600
    static let start = Date(timeIntervalSince1970: 2_000_000_000)

    /// A policy whose jitter is always the same point of its range (0: the low end, 1: the high end).
    static func policy(at fraction: Double = 0.5) -> RetryPolicy {
        RetryPolicy(random: { range in range.lowerBound + fraction * (range.upperBound - range.lowerBound) })
    }

    static func coordinator(refreshAhead: Bool = false, jitter: Double = 0.5) -> RefreshCoordinator {
        RefreshCoordinator(refreshMargin: margin, refreshAhead: refreshAhead, policy: policy(at: jitter))
    }

    static func token(_ value: String = "access-1", expiresIn seconds: TimeInterval, organization: String = "org-a") -> TokenManager.AccessToken {
        TokenManager.AccessToken(
            token: Secret(value), expiresAt: start.addingTimeInterval(seconds), appUserID: "app-user", organizationID: organization)
    }

    /// Leads the organization's flight and finishes it with `token`.
    static func load(_ coordinator: inout RefreshCoordinator, _ token: TokenManager.AccessToken, nextAttempt: Date = .distantPast) {
        guard case .lead(let lead) = coordinator.accessToken(token.organizationID, now: start) else {
            Issue.record("expected to lead")
            return
        }
        coordinator.finish(lead, of: token.organizationID, with: .success(.init(token: token, nextAttempt: nextAttempt)))
    }

    @Test("nothing cached: the first caller leads a load, the next ones follow the same flight")
    func coldLoad() throws {
        var coordinator = Self.coordinator()
        guard case .lead(let lead) = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("no lead"); return }
        #expect(lead.flight.isBackground == false)
        guard case .follow(let flight) = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("no follow"); return }
        #expect(flight === lead.flight)
        guard case .follow(let joined) = coordinator.join("org-a") else { Issue.record("a forced refresh should follow first"); return }
        #expect(joined === lead.flight)
        // Another organization has its own flight.
        guard case .lead(let other) = coordinator.accessToken("org-b", now: Self.start) else { Issue.record("no lead for org-b"); return }
        #expect(other.flight !== lead.flight)
    }

    @Test("a finished flight caches its token: served from memory until the margin, then a refresh is led")
    func servesUntilTheMargin() {
        var coordinator = Self.coordinator()
        let token = Self.token(expiresIn: 3_600)
        Self.load(&coordinator, token)
        #expect(!coordinator.isInFlight("org-a"))
        guard case .serve(let served) = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("not served"); return }
        #expect(served == token)
        // 601 s left: still outside the margin.
        guard case .serve = coordinator.accessToken("org-a", now: Self.start.addingTimeInterval(2_999)) else { Issue.record("not served"); return }
        // 599 s left: inside it, and no refresh ahead: the caller leads the refresh.
        guard case .lead = coordinator.accessToken("org-a", now: Self.start.addingTimeInterval(3_001)) else { Issue.record("no lead"); return }
    }

    @Test("a failed flight caches nothing and ends: the next caller leads a new one")
    func failedFlight() {
        var coordinator = Self.coordinator()
        guard case .lead(let lead) = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("no lead"); return }
        coordinator.finish(lead, of: "org-a", with: .failure(TokenManagerError.notInstalled(organizationID: "org-a")))
        #expect(coordinator.cached("org-a") == nil && !coordinator.isInFlight("org-a"))
        guard case .lead(let next) = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("no new lead"); return }
        #expect(next.flight !== lead.flight)
    }

    @Test("eviction during a flight: the flight's result is not cached, and the next caller loads again")
    func evictionDuringAFlight() {
        var coordinator = Self.coordinator()
        guard case .lead(let lead) = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("no lead"); return }
        coordinator.evict("org-a")
        coordinator.finish(lead, of: "org-a", with: .success(.init(token: Self.token(expiresIn: 3_600))))
        #expect(coordinator.cached("org-a") == nil)
        guard case .lead = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("served an evicted token"); return }
    }

    @Test("eviction without a flight forgets the cached token")
    func evictionOfACachedToken() {
        var coordinator = Self.coordinator()
        Self.load(&coordinator, Self.token(expiresIn: 3_600))
        coordinator.evict("org-a")
        #expect(coordinator.cached("org-a") == nil)
        guard case .lead = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("served an evicted token"); return }
        // A flight that began after the eviction caches as usual.
        guard case .follow(let flight) = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("no follow"); return }
        #expect(!flight.isBackground)
    }

    @Test("evicting everything: no token is served from memory, and no flight running then caches its result")
    func evictAll() {
        var coordinator = Self.coordinator()
        Self.load(&coordinator, Self.token(expiresIn: 3_600, organization: "org-a"))
        guard case .lead(let lead) = coordinator.accessToken("org-b", now: Self.start) else { Issue.record("no lead"); return }
        coordinator.evictAll()
        #expect(coordinator.cached("org-a") == nil)
        coordinator.finish(lead, of: "org-b", with: .success(.init(token: Self.token(expiresIn: 3_600, organization: "org-b"))))
        #expect(coordinator.cached("org-b") == nil)
        guard case .lead = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("served after evictAll"); return }
    }

    @Test("backing off: a still-valid token inside the margin is served until the next attempt, then a refresh is led")
    func backOffExpiry() {
        var coordinator = Self.coordinator()
        let token = Self.token(expiresIn: 300)   // inside the margin
        Self.load(&coordinator, token, nextAttempt: Self.start.addingTimeInterval(60))
        #expect(coordinator.coolingDown("org-a", now: Self.start) == Self.start.addingTimeInterval(60))
        guard case .serve = coordinator.accessToken("org-a", now: Self.start.addingTimeInterval(59)) else { Issue.record("not served while backing off"); return }
        #expect(coordinator.coolingDown("org-a", now: Self.start.addingTimeInterval(60)) == nil)
        guard case .lead = coordinator.accessToken("org-a", now: Self.start.addingTimeInterval(60)) else { Issue.record("no refresh after the back-off"); return }
    }

    @Test("backing off never serves an expired token")
    func backOffPastExpiry() {
        var coordinator = Self.coordinator()
        Self.load(&coordinator, Self.token(expiresIn: 30), nextAttempt: Self.start.addingTimeInterval(3_600))
        guard case .lead = coordinator.accessToken("org-a", now: Self.start.addingTimeInterval(30)) else { Issue.record("served an expired token"); return }
    }

    @Test("without refresh ahead, caching a token draws no random number (a system call on Linux)")
    func noRandomWithoutRefreshAhead() {
        let draws = Mutex(0)
        var coordinator = RefreshCoordinator(
            refreshMargin: Self.margin, refreshAhead: false,
            policy: RetryPolicy(random: { range in
                draws.withLock { $0 += 1 }
                return range.lowerBound
            }))
        Self.load(&coordinator, Self.token(expiresIn: 3_600))
        guard case .serve = coordinator.accessToken("org-a", now: Self.start) else { Issue.record("not served"); return }
        #expect(draws.withLock { $0 } == 0)
    }

    @Test("refresh ahead: served at once while one background flight refreshes; near expiry callers follow it")
    func refreshAhead() {
        // Jitter 0.5: this entry's refresh-ahead point is 0.775 of the margin (465 s left).
        var coordinator = Self.coordinator(refreshAhead: true, jitter: 0.5)
        let token = Self.token(expiresIn: 3_600)
        Self.load(&coordinator, token)
        #expect(about(coordinator.cached("org-a")?.refreshAheadBelow ?? 0, Self.margin * 0.775))
        // Inside the margin, above the entry's point: served, nothing started.
        guard case .serve = coordinator.accessToken("org-a", now: Self.start.addingTimeInterval(3_600 - 500)) else { Issue.record("not served"); return }
        #expect(!coordinator.isInFlight("org-a"))
        // Below the point, more than half the margin left: served, and a background refresh starts.
        let ahead = Self.start.addingTimeInterval(3_600 - 400)
        guard case .serveAndRefreshAhead(let served, let lead) = coordinator.accessToken("org-a", now: ahead) else {
            Issue.record("no refresh ahead"); return
        }
        #expect(served == token && lead.flight.isBackground)
        #expect(coordinator.backgroundFlights.count == 1 && coordinator.backgroundFlights[0] === lead.flight)
        // Others meanwhile: served, no second refresh.
        guard case .serve = coordinator.accessToken("org-a", now: ahead) else { Issue.record("not served during refresh ahead"); return }
        // Under half the margin left: callers wait for the refresh in flight.
        guard case .follow(let flight) = coordinator.accessToken("org-a", now: Self.start.addingTimeInterval(3_600 - 200)) else {
            Issue.record("no follow near expiry"); return
        }
        #expect(flight === lead.flight)
        let renewed = Self.token("access-2", expiresIn: 7_200)
        coordinator.finish(lead, of: "org-a", with: .success(.init(token: renewed)))
        #expect(coordinator.backgroundFlights.isEmpty)
        guard case .serve(let next) = coordinator.accessToken("org-a", now: ahead) else { Issue.record("not served"); return }
        #expect(next == renewed)
    }

    @Test("without refresh ahead a token inside the margin is refreshed before it is handed out")
    func noRefreshAhead() {
        var coordinator = Self.coordinator(refreshAhead: false)
        Self.load(&coordinator, Self.token(expiresIn: 3_600))
        guard case .lead(let lead) = coordinator.accessToken("org-a", now: Self.start.addingTimeInterval(3_600 - 400)) else {
            Issue.record("no lead"); return
        }
        #expect(!lead.flight.isBackground)
    }

    @Test("a follower takes the result, unless it asked for more than the flight gave or its leader was cancelled")
    func followerSteps() {
        let token = Self.token(expiresIn: 3_600)
        let success: Result<TokenManager.AccessToken, any Error> = .success(token)
        #expect(RefreshCoordinator.followerStep(after: success, force: .never, isCancelled: false) == .take)
        #expect(RefreshCoordinator.followerStep(after: success, force: .always, isCancelled: false) == .joinAgain)
        #expect(RefreshCoordinator.followerStep(after: success, force: .ifStillUsing(token.token), isCancelled: false) == .joinAgain)
        #expect(RefreshCoordinator.followerStep(after: success, force: .ifStillUsing(Secret("rejected")), isCancelled: false) == .take)
        let cancelled: Result<TokenManager.AccessToken, any Error> = .failure(CancellationError())
        #expect(RefreshCoordinator.followerStep(after: cancelled, force: .never, isCancelled: false) == .joinAgain)
        #expect(RefreshCoordinator.followerStep(after: cancelled, force: .never, isCancelled: true) == .take)
        let failed: Result<TokenManager.AccessToken, any Error> = .failure(TokenManagerError.notInstalled(organizationID: "org-a"))
        #expect(RefreshCoordinator.followerStep(after: failed, force: .never, isCancelled: false) == .take)
        #expect(RefreshCoordinator.followerStep(after: failed, force: .always, isCancelled: false) == .joinAgain)
    }

    @Test("transient failures are counted per organization until a success")
    func failureCounts() {
        var coordinator = Self.coordinator()
        #expect(coordinator.recordTransientFailure("org-a") == 1)
        #expect(coordinator.recordTransientFailure("org-a") == 2)
        #expect(coordinator.recordTransientFailure("org-b") == 1)
        coordinator.recordSuccess("org-a")
        #expect(coordinator.recordTransientFailure("org-a") == 1)
    }

    @Test("the app token: one fetch at a time, served while it has more than the renewal margin, fetched again for other scopes")
    func appToken() {
        var coordinator = Self.coordinator()
        let scopes: Set<String> = ["read", "write"]
        guard case .lead(let flight) = coordinator.appToken(scopes: scopes, now: Self.start, renewalMargin: 86_400) else {
            Issue.record("no lead"); return
        }
        guard case .follow(let same) = coordinator.appToken(scopes: scopes, now: Self.start, renewalMargin: 86_400) else {
            Issue.record("no follow"); return
        }
        #expect(same === flight)
        let token = TokenManager.AppToken(token: Secret("app-1"), expiresAt: Self.start.addingTimeInterval(30 * 86_400), scopes: ["read", "write"])
        coordinator.finishAppToken(flight, with: .success(token))
        guard case .serve(let served) = coordinator.appToken(scopes: scopes, now: Self.start, renewalMargin: 86_400) else {
            Issue.record("not served"); return
        }
        #expect(served == token)
        guard case .lead = coordinator.appToken(scopes: ["read"], now: Self.start, renewalMargin: 86_400) else {
            Issue.record("served for other scopes"); return
        }
        var renewing = Self.coordinator()
        guard case .lead(let first) = renewing.appToken(scopes: scopes, now: Self.start, renewalMargin: 86_400) else { return }
        renewing.finishAppToken(first, with: .success(token))
        guard case .lead = renewing.appToken(scopes: scopes, now: Self.start.addingTimeInterval(29.5 * 86_400), renewalMargin: 86_400) else {
            Issue.record("not renewed inside the margin"); return
        }
    }
}

@Suite("Retry policy: back-off, cool-down and jitter", .capturesLogs)
struct RetryPolicyTests {
    static let start = Date(timeIntervalSince1970: 2_000_000_000)

    @Test("exponential back-off from the first delay, capped, with ±50 % jitter")
    func backoff() {
        let middle = RefreshCoordinatorTests.policy(at: 0.5)
        #expect(middle.backoff(afterFailures: 1) == .milliseconds(200))
        #expect(middle.backoff(afterFailures: 2) == .milliseconds(400))
        #expect(middle.backoff(afterFailures: 3) == .milliseconds(800))
        #expect(middle.backoff(afterFailures: 20) == .seconds(30))
        #expect(middle.backoff(afterFailures: 1_000) == .seconds(30))
        #expect(RefreshCoordinatorTests.policy(at: 0).backoff(afterFailures: 1) == .milliseconds(100))
        #expect(RefreshCoordinatorTests.policy(at: 1).backoff(afterFailures: 20) == .seconds(45))
    }

    @Test("a still-valid token: back-off first, the cool-down after repeated failures, never past the expiry")
    func nextAttempt() {
        let policy = RefreshCoordinatorTests.policy(at: 0.5)
        let expires = Self.start.addingTimeInterval(86_400)
        #expect(about(policy.nextAttempt(afterFailures: 1, now: Self.start, expiresAt: expires), Self.start.addingTimeInterval(0.2)))
        #expect(about(policy.nextAttempt(afterFailures: 4, now: Self.start, expiresAt: expires), Self.start.addingTimeInterval(1.6)))
        // Fifth failure in a row: the cool-down (300 s, jitter at its middle).
        #expect(about(policy.nextAttempt(afterFailures: 5, now: Self.start, expiresAt: expires), Self.start.addingTimeInterval(300)))
        // 100 s left, a 300 s cool-down: the next try is spread over what is left (jitter 0.5 of 0.5...1: 75 %).
        #expect(about(policy.nextAttempt(afterFailures: 5, now: Self.start, expiresAt: Self.start.addingTimeInterval(100)), Self.start.addingTimeInterval(75)))
        // 20 s left: no closer together than the longest back-off, but never past the expiry.
        #expect(about(policy.nextAttempt(afterFailures: 5, now: Self.start, expiresAt: Self.start.addingTimeInterval(20)), Self.start.addingTimeInterval(20)))
        let low = RefreshCoordinatorTests.policy(at: 0)
        #expect(about(low.nextAttempt(afterFailures: 5, now: Self.start, expiresAt: Self.start.addingTimeInterval(100)), Self.start.addingTimeInterval(50)))
        #expect(about(low.nextAttempt(afterFailures: 5, now: Self.start, expiresAt: Self.start.addingTimeInterval(40)), Self.start.addingTimeInterval(30)))
    }

    @Test("an expired token: short waits are retried, long ones and the last attempt give up with when to come back")
    func expiredTokenSteps() {
        let policy = RefreshCoordinatorTests.policy(at: 0.5)
        #expect(policy.step(afterAttempt: 1, failures: 1, retryAfter: nil) == .retry(after: .milliseconds(200)))
        #expect(policy.step(afterAttempt: 2, failures: 2, retryAfter: .seconds(1)) == .retry(after: .seconds(1)))
        #expect(policy.step(afterAttempt: 3, failures: 3, retryAfter: nil) == .giveUp(retryAfter: .milliseconds(800)))
        #expect(policy.step(afterAttempt: 3, failures: 3, retryAfter: .seconds(9)) == .giveUp(retryAfter: .seconds(9)))
        // Linear asks for more than a caller may wait: told at once, capped at the longest back-off.
        #expect(policy.step(afterAttempt: 1, failures: 1, retryAfter: .seconds(5)) == .giveUp(retryAfter: .seconds(5)))
        #expect(policy.step(afterAttempt: 1, failures: 1, retryAfter: .seconds(600)) == .giveUp(retryAfter: .seconds(30)))
    }

    @Test("each cached entry's refresh-ahead point lies in the first half of the margin, leaving a twentieth of it")
    func refreshAheadPoint() {
        #expect(about(RefreshCoordinatorTests.policy(at: 0).refreshAheadPoint(margin: 600), 330))
        #expect(about(RefreshCoordinatorTests.policy(at: 1).refreshAheadPoint(margin: 600), 600))
        let random = RetryPolicy()
        for _ in 0..<1_000 { #expect((329.999...600).contains(random.refreshAheadPoint(margin: 600))) }
    }

    @Test("the manager's configuration is the policy's")
    func fromConfiguration() {
        var configuration = TokenManager.Configuration()
        configuration.initialBackoff = .seconds(1)
        configuration.maxAttempts = 7
        configuration.cooldown = .seconds(10)
        let policy = RetryPolicy(configuration)
        #expect(policy.initialBackoff == .seconds(1) && policy.maxAttempts == 7 && policy.cooldown == .seconds(10))
        #expect(policy.maxBackoff == configuration.maxBackoff && policy.maxInlineWait == configuration.maxInlineWait)
        #expect(policy.cooldownAfterFailures == configuration.cooldownAfterFailures)
    }
}

/// Equal to the millisecond (jitter is computed in floating point).
private func about(_ a: Date, _ b: Date) -> Bool { abs(a.timeIntervalSince(b)) < 0.001 }
private func about(_ a: TimeInterval, _ b: TimeInterval) -> Bool { abs(a - b) < 0.001 }

@Suite("De-authorization breaker: many refusals at once are a configuration fault, one is an uninstall", .capturesLogs)
struct DeauthorizationBreakerTests {
    static let start = Date(timeIntervalSince1970: 2_000_000_000)

    @Test("distinct installations refused within the window are marked up to the threshold; then it opens")
    func opensAfterTheThreshold() {
        var breaker = DeauthorizationBreaker(threshold: 3, window: 600)
        #expect(breaker.invalidGrant("org-1", now: Self.start) == .mark)
        #expect(breaker.invalidGrant("org-1", now: Self.start.addingTimeInterval(1)) == .mark)   // the same one: not a second
        #expect(breaker.invalidGrant("org-2", now: Self.start.addingTimeInterval(2)) == .mark)
        #expect(breaker.invalidGrant("org-3", now: Self.start.addingTimeInterval(3)) == .mark)
        #expect(!breaker.isOpen && breaker.reason == nil)
        #expect(breaker.invalidGrant("org-4", now: Self.start.addingTimeInterval(4)) == .suspectConfiguration(refusals: 4))
        #expect(breaker.isOpen && breaker.openedAt == Self.start.addingTimeInterval(4))
        #expect(breaker.invalidGrant("org-5", now: Self.start.addingTimeInterval(5)) == .suspectConfiguration(refusals: 5))
        #expect(breaker.reason?.contains("5 installations") == true && breaker.reason?.contains("suspected configuration fault") == true)
        // Open: even an installation refused before is no longer marked.
        #expect(breaker.invalidGrant("org-1", now: Self.start.addingTimeInterval(6)) == .suspectConfiguration(refusals: 6))
    }

    @Test("refusals spread over more than the window are each an uninstall")
    func windowExpiry() {
        var breaker = DeauthorizationBreaker(threshold: 2, window: 600)
        for (index, organization) in ["org-1", "org-2", "org-3", "org-4", "org-5"].enumerated() {
            #expect(breaker.invalidGrant(organization, now: Self.start.addingTimeInterval(Double(index) * 301)) == .mark)
        }
        #expect(!breaker.isOpen)
    }

    @Test("a successful refresh, or an operator, closes it; a threshold of 0 turns it off")
    func closing() {
        var breaker = DeauthorizationBreaker(threshold: 1, window: 600)
        #expect(breaker.invalidGrant("org-1", now: Self.start) == .mark)
        #expect(breaker.invalidGrant("org-2", now: Self.start) == .suspectConfiguration(refusals: 2))
        breaker.reset()
        #expect(!breaker.isOpen && breaker.suspected == 0)
        #expect(breaker.invalidGrant("org-3", now: Self.start) == .mark)
        var off = DeauthorizationBreaker(threshold: 0, window: 600)
        for index in 0..<100 { #expect(off.invalidGrant("org-\(index)", now: Self.start) == .mark) }
        #expect(!off.isOpen)
    }
}

@Suite("Rate limiter: a token bucket per client", .capturesLogs)
struct RateLimiterTests {
    @Test("a burst at once, then the refill rate; clients apart; the wait until the next token")
    func tokenBucket() throws {
        let start = Date(timeIntervalSince1970: 2_000_000_000)
        let limiter = RateLimiter(burst: 3, perMinute: 60, pruneAbove: 1)
        #expect((0..<3).map { _ in limiter.take("a", now: start) } == [nil, nil, nil])
        let wait = try #require(limiter.take("a", now: start))
        #expect(abs(wait - 1) < 0.001)
        #expect(limiter.take("b", now: start) == nil)
        #expect(limiter.take("a", now: start.addingTimeInterval(1)) == nil)
        #expect(limiter.take("a", now: start.addingTimeInterval(1)) != nil)
        // Many clients: those whose buckets are full again are forgotten.
        #expect(limiter.take("c", now: start.addingTimeInterval(3_600)) == nil)
        #expect(limiter.clients <= 2)
        // Back to a full burst after a while, never more.
        #expect((0..<4).map { _ in limiter.take("a", now: start.addingTimeInterval(3_600)) == nil } == [true, true, true, false])
    }
}

@Suite("Refresh coordinator: a bounded cache", .capturesLogs)
struct RefreshCoordinatorCacheTests {
    @Test("past its capacity the least recently used token goes, one for each new one")
    func leastRecentlyUsedGoFirst() {
        var coordinator = RefreshCoordinator(
            refreshMargin: RefreshCoordinatorTests.margin, refreshAhead: false, policy: RefreshCoordinatorTests.policy(), cacheCapacity: 3)
        for organization in ["org-a", "org-b", "org-c"] {
            RefreshCoordinatorTests.load(&coordinator, RefreshCoordinatorTests.token(expiresIn: 3600, organization: organization))
        }
        // org-a is used again: org-b is now the least recently used.
        guard case .serve = coordinator.accessToken("org-a", now: RefreshCoordinatorTests.start) else {
            Issue.record("org-a is cached")
            return
        }
        RefreshCoordinatorTests.load(&coordinator, RefreshCoordinatorTests.token(expiresIn: 3600, organization: "org-d"))
        #expect(coordinator.cachedCount == 3)
        #expect(coordinator.cached("org-b") == nil)
        #expect(coordinator.cached("org-a") != nil && coordinator.cached("org-c") != nil && coordinator.cached("org-d") != nil)
        // The one that went is loaded again when asked for.
        guard case .lead = coordinator.accessToken("org-b", now: RefreshCoordinatorTests.start) else {
            Issue.record("org-b must be loaded again")
            return
        }

        var large = RefreshCoordinator(
            refreshMargin: RefreshCoordinatorTests.margin, refreshAhead: false, policy: RefreshCoordinatorTests.policy(), cacheCapacity: 160)
        for index in 0..<1_000 {
            RefreshCoordinatorTests.load(&large, RefreshCoordinatorTests.token(expiresIn: 3600, organization: "org-\(index)"))
            #expect(large.cachedCount <= 160)
        }
        // Exactly the 160 newest are kept, newest first.
        #expect(large.cachedCount == 160)
        #expect(large.cachedByRecency == (840..<1_000).reversed().map { "org-\($0)" })
        // Serving a token makes it the most recently used; a refreshed one too.
        guard case .serve = large.accessToken("org-840", now: RefreshCoordinatorTests.start) else {
            Issue.record("org-840 is cached")
            return
        }
        #expect(large.cachedByRecency.first == "org-840" && large.cachedByRecency.last == "org-841")
        guard case .lead(let refresh) = large.join("org-841") else {
            Issue.record("a forced refresh of org-841 leads")
            return
        }
        large.finish(refresh, of: "org-841", with: .success(.init(token: RefreshCoordinatorTests.token(expiresIn: 3600, organization: "org-841"))))
        #expect(large.cachedByRecency.prefix(2) == ["org-841", "org-840"] && large.cachedCount == 160)
        // Evicting one and all keeps the order of the rest, and the cache works after.
        large.evict("org-841")
        #expect(large.cachedByRecency.count == 159 && large.cachedByRecency.first == "org-840")
        large.evictAll()
        #expect(large.cachedCount == 0 && large.cachedByRecency.isEmpty)
        RefreshCoordinatorTests.load(&large, RefreshCoordinatorTests.token(expiresIn: 3600, organization: "org-x"))
        #expect(large.cachedByRecency == ["org-x"])
    }

    @Test("the background refresher's result replaces a cached token without making it recent, and adds none")
    func backgroundRefreshDoesNotFillTheCache() {
        var coordinator = RefreshCoordinator(
            refreshMargin: RefreshCoordinatorTests.margin, refreshAhead: false, policy: RefreshCoordinatorTests.policy(), cacheCapacity: 3)
        for organization in ["org-a", "org-b"] {
            RefreshCoordinatorTests.load(&coordinator, RefreshCoordinatorTests.token(expiresIn: 3600, organization: organization))
        }
        for (organization, value) in [("org-a", "renewed-a"), ("org-z", "renewed-z")] {
            guard case .lead(let lead) = coordinator.join(organization) else {
                Issue.record("the refresher leads \(organization)")
                return
            }
            coordinator.finish(
                lead, of: organization,
                with: .success(.init(token: RefreshCoordinatorTests.token(value, expiresIn: 7200, organization: organization))),
                addingToCache: false)
        }
        #expect(coordinator.cached("org-a")?.token.token == Secret("renewed-a"))
        #expect(coordinator.cached("org-z") == nil)
        #expect(coordinator.cachedByRecency == ["org-b", "org-a"])
    }

    @Test("the recency list: moves, removals and reused slots keep the order")
    func recencyList() {
        var list = RecencyList()
        #expect(list.leastRecent == nil)
        let a = list.insert("a"), b = list.insert("b"), c = list.insert("c")
        #expect(list.keysByRecency == ["c", "b", "a"] && list.leastRecent?.key == "a")
        list.touch(a)
        #expect(list.keysByRecency == ["a", "c", "b"])
        list.touch(a)  // already the newest
        list.remove(c)  // from the middle
        #expect(list.keysByRecency == ["a", "b"] && list.count == 2)
        let d = list.insert("d")
        #expect(d == c)  // the freed slot is used again
        list.remove(b)  // the oldest
        #expect(list.keysByRecency == ["d", "a"] && list.leastRecent?.key == "a")
        list.remove(d)  // the newest
        list.remove(a)
        #expect(list.keysByRecency.isEmpty && list.leastRecent == nil && list.count == 0)
        _ = list.insert("e")
        #expect(list.keysByRecency == ["e"] && list.leastRecent?.key == "e")
    }
}
