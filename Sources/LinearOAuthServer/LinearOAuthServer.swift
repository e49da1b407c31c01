import Hummingbird
import HummingbirdCore
import LinearOAuth
import Logging
import Metrics
import NIOCore
import Prometheus

/// The routes of `linear-oauth serve`: the token API for apps in any language, Linear's webhooks,
/// the install flow, and health checks.
///
/// Each feature is a `RouteCollection` in `Routes/` (``TokenAPIRoutes``, ``WebhookRoutes``,
/// ``InstallRoutes``, ``HealthRoutes``, ...), the middleware is in `Middleware/`, and every answer
/// is written by ``Responses``. Decisions about tokens stay in the ``TokenManager``.
public struct LinearOAuthServer: Sendable {
    public let manager: TokenManager
    public let configuration: LinearOAuthServerConfiguration
    let logger: Logger
    let metrics: any MetricsFactory

    public init(manager: TokenManager, configuration: LinearOAuthServerConfiguration, logger: Logger = Logger(label: "linear-oauth.server")) {
        self.manager = manager
        self.configuration = configuration
        self.logger = logger
        self.metrics = configuration.prometheus.map { PrometheusMetricsFactory(registry: $0) } ?? MetricsSystem.factory
    }

    /// The HTTP/1 server for ``router()``: idle and header-read time-outs and a connection ceiling.
    public static func httpServer(_ limits: LinearOAuthConnectionLimits = .init()) -> HTTPServerBuilder {
        let limiter = ConnectionLimiter(maximum: limits.maxConnections)
        let headerTimeout = TimeAmount.nanoseconds(Int64(limits.headerTimeout.timeInterval * 1e9))
        return .http1(configuration: .init(
            additionalChannelHandlers: [limiter.handler(), SlowClientGuard(headerTimeout: headerTimeout)],
            idleTimeout: .nanoseconds(Int64(limits.idleTimeout.timeInterval * 1e9))))
    }

    /// The router with every route.
    public func router() -> Router<LinearOAuthRequestContext> {
        let router = Router(context: LinearOAuthRequestContext.self)
        // Added first, so they see every route.
        router.add(middleware: RequestMetricsMiddleware(factory: metrics))
        router.add(middleware: ErrorAnswerMiddleware(logger: logger))
        if let registry = configuration.prometheus {
            router.addRoutes(MetricsRoutes(counts: InstallationCounts(store: manager.vault.store, maxAge: configuration.installationCountsMaxAge), registry: registry, factory: metrics).routes)
        }
        router.addRoutes(HealthRoutes(manager: manager).routes)
        router.addRoutes(OpenAPIRoutes().routes)
        router.addRoutes(WebhookRoutes(manager: manager, configuration: configuration, metrics: metrics, logger: logger).routes)
        router.addRoutes(InstallRoutes(manager: manager, configuration: configuration, logger: logger).routes)
        router.addRoutes(TokenAPIRoutes(manager: manager, configuration: configuration).routes, atPath: "/v1")
        router.addRoutes(ConsoleRoutes(manager: manager, configuration: configuration, logger: logger).routes)
        return router
    }
}
