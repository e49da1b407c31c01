import Foundation
import LinearOAuth
import Synchronization

/// What the console shows under "recent events": the last few hundred token events and webhook
/// deliveries of this instance, in memory (time, organization, event, outcome; never a token), and
/// refresh outcomes per minute for the last hour.
public final class ConsoleEventLog: Sendable {
    /// One event.
    public struct Entry: Sendable, Equatable {
        public var time: Date
        /// The organization it is about, if any.
        public var organizationID: String?
        /// `refresh`, `install`, `uninstall`, `webhook`, `revoke`, `reinstate`, `breaker`.
        public var event: String
        /// `success`, `reauthorization_required`, `deleted`, `refused_400`, ...
        public var outcome: String
        /// A short reason (Linear's error code, a refusal's cause); never a token.
        public var detail: String?

        public init(time: Date = Date(), organizationID: String?, event: String, outcome: String, detail: String? = nil) {
            self.time = time
            self.organizationID = organizationID
            self.event = event
            self.outcome = outcome
            self.detail = detail
        }
    }

    private struct State {
        var entries: [Entry] = []
        var next = 0
        /// Refresh outcomes per minute: (minute since the epoch, outcome counts), the last 60 minutes.
        var minutes: [(minute: Int, counts: [String: Int])] = []
    }

    /// How many entries are kept.
    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 500) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// Remembers an event (the oldest goes when full).
    public func record(_ entry: Entry) {
        state.withLock { state in
            if state.entries.count < capacity {
                state.entries.append(entry)
            } else {
                state.entries[state.next] = entry
            }
            state.next = (state.next + 1) % capacity
            guard entry.event == "refresh" else { return }
            let minute = Int(entry.time.timeIntervalSince1970 / 60)
            if let last = state.minutes.indices.last, state.minutes[last].minute == minute {
                state.minutes[last].counts[entry.outcome, default: 0] += 1
            } else {
                state.minutes.append((minute, [entry.outcome: 1]))
            }
            state.minutes.removeAll { $0.minute <= minute - 60 }
        }
    }

    /// Remembers a token manager's event: give this to ``TokenManager/Configuration/onEvent``.
    public func record(_ event: TokenEvent, at time: Date = Date()) {
        switch event {
        case .refreshed(let organizationID, _):
            record(Entry(time: time, organizationID: organizationID, event: "refresh", outcome: "success"))
        case .refreshFailed(let organizationID, let reason):
            record(Entry(time: time, organizationID: organizationID, event: "refresh", outcome: "temporary_failure", detail: reason))
        case .reauthorizationRequired(let organizationID, let reason):
            record(Entry(time: time, organizationID: organizationID, event: "refresh", outcome: "reauthorization_required", detail: reason))
        case .revoked(let organizationID):
            record(Entry(time: time, organizationID: organizationID, event: "revoke", outcome: "deleted"))
        }
    }

    /// The newest `limit` entries, newest first.
    public func recent(limit: Int = .max) -> [Entry] {
        state.withLock { state in
            let ordered = state.entries.count < capacity
                ? state.entries
                : Array(state.entries[state.next...] + state.entries[..<state.next])
            return Array(ordered.reversed().prefix(limit))
        }
    }

    /// Refresh outcomes in the hour before `now`, by outcome.
    public func refreshesInLastHour(now: Date = Date()) -> [String: Int] {
        let minute = Int(now.timeIntervalSince1970 / 60)
        return state.withLock { state in
            state.minutes.filter { $0.minute > minute - 60 && $0.minute <= minute }
                .reduce(into: [:]) { total, bucket in total.merge(bucket.counts, uniquingKeysWith: +) }
        }
    }

    /// How many of the kept entries of `event` ended each way.
    public func outcomes(of event: String) -> [String: Int] {
        state.withLock { state in
            state.entries.filter { $0.event == event }.reduce(into: [:]) { $0[$1.outcome, default: 0] += 1 }
        }
    }
}
