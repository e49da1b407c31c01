import Foundation
import NIOHTTP1

/// Linear's rate-limit headers on a GraphQL answer: three budgets, each with a limit, what remains and
/// when it resets, and, on a refusal, `Retry-After`.
///
/// Linear's "Rate limiting" page names `X-RateLimit-Requests-*`, `X-RateLimit-Complexity-*` and
/// `X-RateLimit-Endpoint-Requests-*` (`-Limit`, `-Remaining`, `-Reset`, resets in epoch
/// milliseconds); Linear's SDK also reads `Retry-After` (seconds). Reset values small enough to be
/// epoch seconds are read as seconds.
public struct LinearRateLimit: Sendable, Equatable {
    /// One budget.
    public struct Budget: Sendable, Equatable {
        public var limit: Int?
        public var remaining: Int?
        public var resetAt: Date?

        public init(limit: Int? = nil, remaining: Int? = nil, resetAt: Date? = nil) {
            self.limit = limit
            self.remaining = remaining
            self.resetAt = resetAt
        }

        /// Linear said nothing remains of it.
        public var isExhausted: Bool { remaining.map { $0 <= 0 } ?? false }
    }

    /// Requests per hour (`X-RateLimit-Requests-*`).
    public var requests: Budget?
    /// Query complexity per hour (`X-RateLimit-Complexity-*`).
    public var complexity: Budget?
    /// Requests to one endpoint, where it has a limit of its own (`X-RateLimit-Endpoint-Requests-*`).
    public var endpointRequests: Budget?
    /// `Retry-After`, as a time.
    public var retryAfter: Date?

    public init(requests: Budget? = nil, complexity: Budget? = nil, endpointRequests: Budget? = nil, retryAfter: Date? = nil) {
        self.requests = requests
        self.complexity = complexity
        self.endpointRequests = endpointRequests
        self.retryAfter = retryAfter
    }

    /// Reads the headers of an answer received at `now`.
    public init(headers: [(name: String, value: String)], now: Date = Date()) {
        func value(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value.trimmingCharacters(in: .whitespaces)
        }
        func budget(_ prefix: String) -> Budget? {
            let limit = value(prefix + "-Limit").flatMap(Self.number)
            let remaining = value(prefix + "-Remaining").flatMap(Self.number)
            let resetAt = value(prefix + "-Reset").flatMap(Self.epoch)
            guard limit != nil || remaining != nil || resetAt != nil else { return nil }
            return Budget(limit: limit, remaining: remaining, resetAt: resetAt)
        }
        requests = budget("X-RateLimit-Requests")
        complexity = budget("X-RateLimit-Complexity")
        endpointRequests = budget("X-RateLimit-Endpoint-Requests")
        retryAfter = value("Retry-After").flatMap { LinearClient.parseRetryAfter($0, now: now) }.map {
            now.addingTimeInterval(TimeInterval($0.components.seconds))
        }
    }

    init(headers: HTTPHeaders, now: Date = Date()) {
        self.init(headers: headers.map { (name: $0.name, value: $0.value) }, now: now)
    }

    /// When a refused call may be tried again: the latest of `Retry-After` and the resets of the
    /// budgets Linear says are exhausted (waiting for one of them only would be refused again). When
    /// neither is sent, the latest reset of any budget; `nil` when there is none.
    public var retryAt: Date? {
        let budgets = [requests, complexity, endpointRequests].compactMap { $0 }
        let applicable = budgets.filter(\.isExhausted).compactMap(\.resetAt) + (retryAfter.map { [$0] } ?? [])
        if let latest = applicable.max() { return latest }
        return budgets.compactMap(\.resetAt).max()
    }

    /// A count; Linear's complexity figures may carry decimals.
    private static func number(_ text: String) -> Int? {
        guard let value = Double(text), value.isFinite, abs(value) < 1e15 else { return nil }
        return Int(value.rounded(.down))
    }

    /// Epoch milliseconds (what Linear sends), or epoch seconds.
    private static func epoch(_ text: String) -> Date? {
        guard let value = Double(text), value.isFinite, value > 0 else { return nil }
        return Date(timeIntervalSince1970: value >= 100_000_000_000 ? value / 1000 : value)
    }
}
