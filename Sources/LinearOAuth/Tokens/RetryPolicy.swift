import Foundation

/// When to try Linear again after a refresh failed for a reason that may pass (5xx, 429, time-outs,
/// lock time-outs): exponential back-off, the cool-down after repeated failures, and the jitter that
/// keeps installations which failed together from coming back together. Pure: it reads no clock and
/// does no I/O; the random source is injected, so tests can fix it.
package struct RetryPolicy: Sendable {
    /// Attempts of a refresh whose token has already expired, before the caller gets an error.
    package var maxAttempts: Int
    /// First back-off between attempts; doubles each time, with ±50 % jitter.
    package var initialBackoff: Duration
    /// Longest back-off, and the closest together tries come near a token's expiry.
    package var maxBackoff: Duration
    /// The longest a caller is kept waiting between attempts.
    package var maxInlineWait: Duration
    /// After this many failures in a row an organization cools down.
    package var cooldownAfterFailures: Int
    /// How long a cooling-down organization is left alone, ±50 %.
    package var cooldown: Duration
    /// A uniformly distributed number in the range: the jitter.
    package var random: @Sendable (ClosedRange<Double>) -> Double

    package init(
        maxAttempts: Int = 3, initialBackoff: Duration = .milliseconds(200), maxBackoff: Duration = .seconds(30),
        maxInlineWait: Duration = .seconds(2), cooldownAfterFailures: Int = 5, cooldown: Duration = .seconds(300),
        random: @escaping @Sendable (ClosedRange<Double>) -> Double = { Double.random(in: $0) }
    ) {
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.maxInlineWait = maxInlineWait
        self.cooldownAfterFailures = cooldownAfterFailures
        self.cooldown = cooldown
        self.random = random
    }

    /// Exponential back-off after `failures` failures in a row (the first waits `initialBackoff`),
    /// capped at `maxBackoff`, with ±50 % jitter.
    package func backoff(afterFailures failures: Int) -> Duration {
        let base = initialBackoff.timeInterval * pow(2, Double(min(max(failures, 1) - 1, 20)))
        let capped = min(base, maxBackoff.timeInterval)
        return .milliseconds(Int64(capped * random(0.5...1.5) * 1000))
    }

    /// A refresh failed while the current token still works (it is served meanwhile): the earliest
    /// time to try again. The back-off, or after `cooldownAfterFailures` failures the cool-down, but
    /// never past the expiry: once the token is dead callers must be able to try again. Near the
    /// expiry the next try is spread over the time left, no closer together than `maxBackoff`.
    package func nextAttempt(afterFailures failures: Int, now: Date, expiresAt: Date) -> Date {
        let wait = failures >= cooldownAfterFailures
            ? cooldown.timeInterval * random(0.5...1.5) : backoff(afterFailures: failures).timeInterval
        let left = expiresAt.timeIntervalSince(now)
        let next = wait < left ? wait : max(left * random(0.5...1), min(left, maxBackoff.timeInterval))
        return now.addingTimeInterval(next)
    }

    /// What a caller whose token has expired does after its `attempt`th refresh failed.
    package enum ExpiredTokenStep: Equatable, Sendable {
        /// Wait this long, then try again.
        case retry(after: Duration)
        /// Give up now: the caller is told to come back after this long.
        case giveUp(retryAfter: Duration)
    }

    /// A refresh of an expired token failed (the caller has no token to fall back on): retry after
    /// the back-off (or Linear's `Retry-After`, capped at `maxBackoff`) while attempts are left and
    /// the wait is short; otherwise give up with when to come back.
    package func step(afterAttempt attempt: Int, failures: Int, retryAfter: Duration?) -> ExpiredTokenStep {
        let backoff = backoff(afterFailures: failures)
        guard attempt < maxAttempts else { return .giveUp(retryAfter: retryAfter ?? backoff) }
        let wait = max(retryAfter.map { min($0, maxBackoff) } ?? .zero, backoff)
        // A caller is not kept waiting long: past `maxInlineWait` it is told when to come back.
        guard wait <= maxInlineWait else { return .giveUp(retryAfter: wait) }
        return .retry(after: wait)
    }

    /// With refresh ahead, the seconds left below which a cached entry starts its background refresh:
    /// a random point of the margin's first half, leaving at least a twentieth of the margin for it,
    /// so instances that cache the same token do not all refresh it at once.
    package func refreshAheadPoint(margin: TimeInterval) -> TimeInterval {
        margin * random(0.55...1)
    }
}

extension RetryPolicy {
    /// The policy a manager's configuration describes.
    package init(_ configuration: TokenManager.Configuration) {
        self.init(
            maxAttempts: configuration.maxAttempts, initialBackoff: configuration.initialBackoff,
            maxBackoff: configuration.maxBackoff, maxInlineWait: configuration.maxInlineWait,
            cooldownAfterFailures: configuration.cooldownAfterFailures, cooldown: configuration.cooldown)
    }
}
