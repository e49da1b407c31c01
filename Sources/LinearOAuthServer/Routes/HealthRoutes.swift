import Hummingbird
import LinearOAuth

/// `GET /healthz` (the process is up) and `GET /readyz` (the database answers).
struct HealthRoutes {
    let store: any TokenStore

    var routes: RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get("/healthz") { _, _ in Responses.json(.ok, ["status": "ok"]) }
        routes.get("/readyz") { _, _ in
            do {
                _ = try await store.load(organizationID: "")
                return Responses.json(.ok, ["status": "ready"])
            } catch {
                return Responses.json(.serviceUnavailable, ["status": "unavailable", "message": "the database is not reachable"])
            }
        }
        return routes
    }
}
