import Logging
import ServiceLifecycle

/// Evicts this instance's cached tokens when another instance changes them (a refresh, a revoke,
/// a re-install), through the store's change notifications (PostgreSQL LISTEN/NOTIFY), so no
/// instance serves a revoked token. A swift-service-lifecycle `Service`; reconnects after errors.
///
/// Changes made while it was not listening (before it first subscribed, or while it reconnects)
/// were not heard: each time the subscription is (re)established, every cached token is forgotten
/// before the first notification is handled, and is loaded from the store when next asked for.
/// During the gap itself, tokens in memory are still served (as they are while the database is down).
public struct TokenChangeListener: Service {
    /// Test hooks: called when the subscription is lost (awaited before reconnecting), and each time it is
    /// (re)established, after the cache was cleared.
    package struct Hooks: Sendable {
        package var lost: @Sendable () async -> Void = {}
        package var listening: @Sendable () -> Void = {}
        package init() {}
    }

    public let manager: TokenManager
    /// How long to wait before subscribing again after the subscription was lost.
    public let reconnectDelay: Duration
    private let logger: Logger
    private let hooks: Hooks

    public init(manager: TokenManager, reconnectDelay: Duration = .seconds(1), logger: Logger = Logger(label: "linear-oauth.changes")) {
        self.init(manager: manager, reconnectDelay: reconnectDelay, logger: logger, hooks: Hooks())
    }

    package init(manager: TokenManager, reconnectDelay: Duration = .seconds(1), logger: Logger = Logger(label: "linear-oauth.changes"), hooks: Hooks) {
        self.manager = manager
        self.reconnectDelay = reconnectDelay
        self.logger = logger
        self.hooks = hooks
    }

    public func run() async throws {
        let manager = self.manager, hooks = self.hooks, logger = self.logger
        var subscriptions = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let reconnected = subscriptions > 0
                try await cancelWhenGracefulShutdown {
                    try await manager.vault.store.watchChanges(whenListening: {
                        // Whatever changed before now was not heard: forget it all.
                        manager.evictAll()
                        if reconnected { logger.info("listening to token changes again; cached tokens forgotten") }
                        hooks.listening()
                    }) { organizationID in manager.evict(organizationID) }
                }
                // The store has no change channel (or we are shutting down): stay until shutdown, as
                // a service that returns early would stop its whole group.
                try? await gracefulShutdown()
                return
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                subscriptions += 1
                logger.warning("lost the change notifications; listening again", metadata: ["error": .string("\(error)")])
                await hooks.lost()
                try? await Task.sleep(for: reconnectDelay)
            }
        }
    }
}
