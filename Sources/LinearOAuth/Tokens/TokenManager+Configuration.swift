import Foundation
import Metrics

extension TokenManager {
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
        /// The de-authorization breaker: at most this many distinct installations are marked
        /// `reauthorization_required` within ``deauthorizationWindow``; further refusals are treated as
        /// a suspected configuration fault (tokens kept, nothing marked) until a refresh succeeds or
        /// ``TokenManager/resetDeauthorizationBreaker()``. 0 turns the breaker off.
        public var deauthorizationThreshold = 3
        /// The breaker's window.
        public var deauthorizationWindow: Duration = .seconds(600)
        /// Whether an installation stored before client ids were recorded may be refreshed (and then
        /// records this client). Off in development (`serve --emulator`), so that a real grant is never
        /// sent to the emulator and marked when it refuses it.
        public var adoptsUnboundGrants = true
        /// The scopes installations ask for (the authorize URL's `scope`; `read` is always granted).
        /// ``TokenManager/appToken(scopes:allowingRevocationOfInstalls:)`` asks for these, and refuses
        /// others unless told to: Linear documents that a `client_credentials` request with different
        /// scopes revokes all of the app's existing app-actor tokens, which read strictly includes
        /// every `actor=app` installation.
        public var installScopes: [String] = ["read", "write"]
        /// Renew the app token (30 days) when it expires within this long.
        public var appTokenRenewalMargin: Duration = .seconds(86_400)
        /// At most this many access tokens are kept in memory (about 500 bytes each); when full, the
        /// least recently used go first (a sixteenth of the capacity at a time) and are loaded again
        /// from the store when next asked for. Default 100,000 (about 50 MB).
        public var cacheCapacity = 100_000
        /// Where metrics go; `nil`: the process-wide `MetricsSystem` (a Prometheus registry, say).
        public var metricsFactory: (any MetricsFactory)?
        /// Refresh ahead: a cached token inside the refresh margin that still has more than half the
        /// margin to live is handed out at once while one background task refreshes it (from a random
        /// point of the margin's first half, so that instances holding the same token do not all
        /// start together), and callers wait for Linear only when a token is close to expiry. For
        /// long-running processes (the service turns it on): call ``TokenManager/finishBackgroundRefreshes()``
        /// before exiting, because a refresh cut off after Linear answered is only recoverable within
        /// Linear's grace period.
        public var refreshAhead = false
        /// The clock that expiry, back-off and cool-down are judged by (tests drive emulated time with it).
        public var now: @Sendable () -> Date = { Date() }
        /// Called for every ``TokenEvent``; keep it quick.
        public var onEvent: @Sendable (TokenEvent) -> Void = { _ in }

        public init() {}
    }
}
