import Hummingbird
import LinearOAuth
import NIOCore

/// The token API under `/v1`, behind the API key: installations' metadata, valid access tokens,
/// forced refreshes and revocation.
struct TokenAPIRoutes {
    let manager: TokenManager
    let configuration: LinearOAuthServerConfiguration

    var routes: RouteCollection<LinearOAuthRequestContext> {
        let manager = self.manager, installURL = configuration.installURL
        let routes = RouteCollection(context: LinearOAuthRequestContext.self)
            .add(middleware: APIKeyMiddleware(keys: configuration.apiKeys))
        routes.get("installations") { _, _ in
            try Responses.encoded(.ok, try await manager.vault.list())
        }
        routes.get("installations/:organization") { _, context in
            let organizationID = try context.parameters.require("organization")
            guard let metadata = try await manager.vault.store.load(organizationID: organizationID)?.metadata else {
                return Responses.error(.notInstalled(organizationID: organizationID))
            }
            return try Responses.encoded(.ok, metadata)
        }
        routes.get("installations/:organization/access-token") { _, context in
            let organizationID = try context.parameters.require("organization")
            return await Self.tokenAnswer(installURL) { () async throws(TokenManagerError) in try await manager.accessToken(for: organizationID) }
        }
        routes.post("installations/:organization/refresh") { _, context in
            let organizationID = try context.parameters.require("organization")
            return await Self.tokenAnswer(installURL) { () async throws(TokenManagerError) in try await manager.forceRefresh(for: organizationID) }
        }
        routes.post("installations/:organization/reinstate") { _, context in
            let organizationID = try context.parameters.require("organization")
            do throws(TokenManagerError) {
                switch try await manager.reinstate(for: organizationID) {
                case .reinstated(let expiresAt):
                    return Responses.json(.ok, [
                        "organization_id": organizationID, "outcome": "reinstated", "status": "active", "expires_at": RFC3339.format(expiresAt),
                    ])
                case .alreadyActive:
                    return Responses.json(.ok, ["organization_id": organizationID, "outcome": "already_active", "status": "active"])
                case .stillRefused(let reason):
                    var body: [String: Any] = [
                        "error": "reauthorization_required",
                        "message": "Linear still refuses the refresh token of organization \(organizationID) (\(reason)): install the app again",
                    ]
                    if let installURL { body["install_url"] = installURL }
                    return Responses.json(.conflict, body)
                }
            } catch {
                return Responses.error(error, installURL: installURL)
            }
        }
        routes.post("breaker/reset") { _, _ in
            manager.resetDeauthorizationBreaker()
            return Responses.json(.ok, ["status": "closed"])
        }
        routes.delete("installations/:organization") { _, context in
            let organizationID = try context.parameters.require("organization")
            do throws(TokenManagerError) {
                let result = try await manager.revoke(for: organizationID)
                guard result.wasInstalled else { return Responses.error(.notInstalled(organizationID: organizationID)) }
                return Response(status: .noContent)
            } catch {
                return Responses.error(error, installURL: installURL)
            }
        }
        return routes
    }

    /// `{"access_token", "app_user_id", "expires_at", "organization_id"}`, or the error's answer.
    private static func tokenAnswer(
        _ installURL: String?, _ get: () async throws(TokenManagerError) -> TokenManager.AccessToken
    ) async -> Response {
        do {
            let token = try await get()
            // Written by hand: this is the hot route, and JSONSerialization is slow on Linux.
            var body = "{\"access_token\":"
            Responses.appendJSONString(token.token.value, to: &body)
            body += ",\"app_user_id\":"
            Responses.appendJSONString(token.appUserID, to: &body)
            body += ",\"expires_at\":\"" + RFC3339.format(token.expiresAt) + "\",\"organization_id\":"
            Responses.appendJSONString(token.organizationID, to: &body)
            body += "}"
            return Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        } catch {
            return Responses.error(error, installURL: installURL)
        }
    }
}
