import Hummingbird
import LinearOAuth
import Metrics
import NIOCore
import Prometheus

/// `GET /metrics`: the Prometheus registry, with installations by status counted at scrape time.
struct MetricsRoutes {
    let vault: TokenVault
    let registry: PrometheusCollectorRegistry
    let factory: any MetricsFactory

    var routes: RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get("/metrics") { _, _ in
            // Skipped rather than holding the scrape when the database is slow or down.
            if let installations = await Deadline.within(.seconds(1), { try await vault.list() }) {
                for status in InstallationStatus.allCases {
                    Gauge(label: "linear_oauth_installations", dimensions: [("status", status.rawValue)], factory: factory)
                        .record(installations.filter { $0.status == status }.count)
                }
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return routes
    }
}
