import Logging
import ServiceLifecycle

/// Deletes expired install states in the background, a bounded batch per transaction, so that no
/// request pays for a purge and no purge holds SQLite's write lock for long (an anonymous flood of
/// `/oauth/authorize` leaves many of them). A swift-service-lifecycle `Service`.
public struct AuthorizationStatePurger: Service {
    public let store: any TokenStore
    /// Time between passes.
    public let interval: Duration
    /// States deleted per transaction.
    public let batchSize: Int
    private let logger: Logger

    public init(store: any TokenStore, interval: Duration = .seconds(60), batchSize: Int = 1_000,
                logger: Logger = Logger(label: "linear-oauth.states")) {
        self.store = store
        self.interval = interval
        self.batchSize = max(1, batchSize)
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await purgeExpired()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    /// One pass: batches until none is left.
    /// - Returns: How many states were deleted.
    @discardableResult
    public func purgeExpired() async -> Int {
        var total = 0
        while !Task.isCancelled {
            do {
                let deleted = try await store.purgeExpiredAuthorizationStates(limit: batchSize)
                total += deleted
                if deleted < batchSize { break }
            } catch {
                logger.warning("could not purge expired install states", metadata: ["error": .string("\(error)")])
                break
            }
        }
        if total > 0 { logger.info("purged expired install states", metadata: ["count": .stringConvertible(total)]) }
        return total
    }
}
