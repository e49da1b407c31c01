import Foundation
import Synchronization

/// A token bucket per client: `burst` requests at once, refilled at `perMinute`. Buckets that have
/// refilled completely are forgotten when many clients have been seen, so memory stays bounded.
package final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: Date
    }

    let burst: Double
    let perSecond: Double
    private let buckets = Mutex<[String: Bucket]>([:])
    /// Past this many clients, full buckets are dropped.
    private let pruneAbove: Int

    package init(burst: Int, perMinute: Int, pruneAbove: Int = 10_000) {
        self.burst = Double(max(1, burst))
        self.perSecond = Double(max(1, perMinute)) / 60
        self.pruneAbove = pruneAbove
    }

    /// Takes a token for `client` at `now`.
    /// - Returns: `nil` if the request may go on, else the seconds until a token is back.
    package func take(_ client: String, now: Date = Date()) -> TimeInterval? {
        buckets.withLock { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + max(0, now.timeIntervalSince(bucket.updated)) * perSecond)
            bucket.updated = now
            defer {
                buckets[client] = bucket
                if buckets.count > pruneAbove {
                    buckets = buckets.filter { $0.value.tokens + now.timeIntervalSince($0.value.updated) * perSecond < burst }
                }
            }
            guard bucket.tokens >= 1 else { return (1 - bucket.tokens) / perSecond }
            bucket.tokens -= 1
            return nil
        }
    }

    /// How many clients are tracked (for tests).
    package var clients: Int { buckets.withLock { $0.count } }
}
