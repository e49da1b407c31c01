import Logging
import ServiceLifecycle

/// Evicts this instance's cached tokens when another instance changes them (a refresh, a revoke,
/// a re-install), through the store's change notifications (PostgreSQL LISTEN/NOTIFY), so no
/// instance serves a revoked token. A swift-service-lifecycle `Service`; reconnects after errors.
public struct TokenChangeListener: Service {
    public let manager: TokenManager
    private let logger: Logger

    public init(manager: TokenManager, logger: Logger = Logger(label: "linear-oauth.changes")) {
        self.manager = manager
        self.logger = logger
    }

    public func run() async throws {
        let manager = self.manager
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown {
                    try await manager.vault.store.watchChanges { organizationID in manager.evict(organizationID) }
                }
                // The store has no change channel (or we are shutting down): stay until shutdown, as
                // a service that returns early would stop its whole group.
                try? await gracefulShutdown()
                return
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                logger.warning("lost the change notifications; listening again", metadata: ["error": .string("\(error)")])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
