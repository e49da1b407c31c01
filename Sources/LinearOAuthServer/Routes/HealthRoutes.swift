import Hummingbird
import LinearOAuth

/// `GET /healthz` (the process is up) and `GET /readyz` (the database answers; `degraded`, still
/// 200, while the de-authorization breaker is open).
struct HealthRoutes {
    let manager: TokenManager

    var routes: RouteCollection<LinearOAuthRequestContext> {
        let manager = self.manager
        let routes = RouteCollection(context: LinearOAuthRequestContext.self)
        routes.get("/healthz") { _, _ in Responses.json(.ok, ["status": "ok"]) }
        routes.get("/readyz") { _, _ in
            do {
                _ = try await manager.vault.store.load(organizationID: "")
            } catch {
                return Responses.json(.serviceUnavailable, ["status": "unavailable", "message": "the database is not reachable"])
            }
            // Still serving tokens, so still ready; but an operator should look.
            if let reason = manager.degradedReason { return Responses.json(.ok, ["status": "degraded", "reason": reason]) }
            return Responses.json(.ok, ["status": "ready"])
        }
        return routes
    }
}
