import Hummingbird
import LinearOAuth
import Metrics
import NIOCore
import Prometheus

/// `GET /metrics`: the Prometheus registry, with installations by status (``InstallationCounts``).
struct MetricsRoutes {
    let counts: InstallationCounts
    let registry: PrometheusCollectorRegistry
    let factory: any MetricsFactory

    var routes: RouteCollection<LinearOAuthRequestContext> {
        let routes = RouteCollection(context: LinearOAuthRequestContext.self)
        routes.get("/metrics") { _, _ in
            // From an aggregate query, cached for a few seconds; the last counts rather than holding
            // the scrape when the database is slow or down.
            if let installations = await counts.current() {
                for status in InstallationStatus.allCases {
                    Gauge(label: "linear_oauth_installations", dimensions: [("status", status.rawValue)], factory: factory)
                        .record(installations[status, default: 0])
                }
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return routes
    }
}
