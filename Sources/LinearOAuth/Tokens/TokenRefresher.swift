import Foundation
import Logging
import ServiceLifecycle

/// Keeps tokens fresh in the background (a swift-service-lifecycle `Service`): every `interval`
/// (with jitter) it refreshes the active installations whose access token expires within `window`,
/// a few at a time, so tokens stay fresh and refresh tokens stay in use. Installations that need
/// re-authorization are skipped. Several processes may run it: the refresh lock keeps it to one
/// refresh per installation, and a row another instance is refreshing is skipped rather than waited
/// for, so instances split the due work.
///
/// A new refresher's window opens gradually (``Configuration/windowGrowth``): the installations it
/// finds already inside the window on starting (a first start, or a restart after an outage) are
/// refreshed in order of expiry at a little over the steady rate, not all in its first pass, so
/// Linear sees no herd. Tokens that have already expired are always due.
public struct TokenRefresher: Service {
    public struct Configuration: Sendable {
        /// Time between passes.
        public var interval: Duration = .seconds(60)
        /// Refresh installations expiring within this long.
        public var window: Duration = .seconds(3_600)
        /// Refreshes at once.
        public var concurrency = 4
        /// Random delay, up to this fraction of the interval, added to each pass (no synchronized storms).
        public var jitter = 0.2
        /// Due rows read per page (their organization id and expiry only, about 100 bytes a row in
        /// memory). A pass costs a round trip per page: at a million installations a steady pass
        /// finds about 700 due rows (one page), and a catch-up after an outage a few pages.
        public var pageSize = 10_000
        /// How fast the window opens after the refresher is created: it starts at zero and grows by
        /// this many seconds per second until it reaches ``window`` (with the default 0.15 and a
        /// one-hour window, over 6 hours 40 minutes). Expiries spread evenly then reach the window at
        /// 1.15 times the rate they would with the window open, and a row is still refreshed before it
        /// expires. With 0.25 the busiest minute of a cold start at 100,000 installations was 1.52
        /// times the mean (the catch-up's 1.25 times the passes' granularity). `.infinity`: the whole
        /// window from the first pass; 0: it never opens (only tokens already expired are refreshed in
        /// the background).
        public var windowGrowth = 0.15

        public init() {}
    }

    public let manager: TokenManager
    public let configuration: Configuration
    /// When the window started opening (the manager's clock when this refresher was made).
    public let startedAt: Date
    private let logger: Logger

    public init(manager: TokenManager, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "linear-oauth.refresher")) {
        self.manager = manager
        self.configuration = configuration
        self.startedAt = manager.configuration.now()
        self.logger = logger
    }

    /// The window at `now`: zero at ``startedAt``, growing by ``Configuration/windowGrowth`` seconds a
    /// second up to ``Configuration/window``.
    public func window(at now: Date) -> Duration {
        let full = configuration.window.timeInterval
        let opened = max(0, now.timeIntervalSince(startedAt)) * configuration.windowGrowth
        return opened >= full || opened.isNaN ? configuration.window : .milliseconds(Int64(opened * 1000))
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let jitter = configuration.interval.timeInterval * configuration.jitter * Double.random(in: 0...1)
            let interval = configuration.interval + .milliseconds(Int64(jitter * 1000))
            do {
                // A pass in progress finishes; the wait between passes ends at shutdown.
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            _ = await refreshDue()
        }
    }

    /// One pass: refreshes every active installation expiring within the window (as far as it has
    /// opened, ``window(at:)``), soonest first.
    /// - Returns: The organizations it refreshed (or found refreshed by another process).
    @discardableResult
    public func refreshDue(now: Date? = nil) async -> [String] {
        let now = now ?? manager.configuration.now()
        let window = window(at: now)
        let deadline = now.addingTimeInterval(window.timeInterval)
        var after: DueCursor? = nil
        var done: [String] = []
        while true {
            let page: [DueCursor]
            do {
                // Soonest first, through the (status, expires_at, organization_id) index, a keyset page at a time.
                page = try await manager.vault.store.dueForRefresh(before: deadline, after: after, limit: configuration.pageSize)
            } catch {
                logger.warning("background refresh could not read the store", metadata: ["error": .string("\(error)")])
                return done
            }
            if page.isEmpty { return done }
            after = page.last
            let organizations = page.map(\.organizationID)
            done += await withTaskGroup(of: String?.self) { group in
                var results: [String] = []
                var iterator = organizations.makeIterator()
                func next() -> Bool {
                    guard let organizationID = iterator.next() else { return false }
                    group.addTask {
                        do {
                            try await manager.refreshIfExpiring(within: window, for: organizationID)
                            return organizationID
                        } catch {
                            return nil
                        }
                    }
                    return true
                }
                for _ in 0..<max(1, configuration.concurrency) where next() {}
                while let result = await group.next() {
                    if let result { results.append(result) }
                    _ = next()
                }
                return results
            }
            if page.count < configuration.pageSize { return done }
        }
    }
}
