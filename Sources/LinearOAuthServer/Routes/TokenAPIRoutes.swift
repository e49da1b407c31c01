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
        routes.get("installations") { request, _ in
            try await Self.installationsPage(request, manager.vault.store)
        }
        routes.get("installations/:organization") { _, context in
            let reference = try context.parameters.require("organization")
            switch try await manager.vault.store.lookUp(reference, suggesting: false) {
            case .found(let metadata):
                return try Responses.encoded(.ok, metadata)
            case .ambiguous(let matches):
                return Responses.ambiguous(reference, matches)
            case .notFound:
                return Responses.error(.notInstalled(organizationID: reference))
            }
        }
        routes.get("installations/:organization/access-token") { _, context in
            let reference = try context.parameters.require("organization")
            return await Self.tokenAnswer(installURL, reference, manager) { (id) async throws(TokenManagerError) in try await manager.accessToken(for: id) }
        }
        routes.post("installations/:organization/refresh") { _, context in
            let reference = try context.parameters.require("organization")
            return await Self.tokenAnswer(installURL, reference, manager) { (id) async throws(TokenManagerError) in try await manager.forceRefresh(for: id) }
        }
        routes.post("installations/:organization/reinstate") { _, context in
            let reference = try context.parameters.require("organization")
            let organizationID: String
            switch await Self.organizationID(reference, manager) {
            case .success(let id): organizationID = id
            case .failure(let ambiguous): return ambiguous.response
            }
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
            let reference = try context.parameters.require("organization")
            let organizationID: String
            switch await Self.organizationID(reference, manager) {
            case .success(let id): organizationID = id
            case .failure(let ambiguous): return ambiguous.response
            }
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

    /// The organization id `reference` names: itself when it is installed under that id, else the
    /// installation whose URL key it is (exactly one), else itself (the caller then answers 404).
    /// A page of installations' metadata, by organization id: `?limit=` (default 100, at most 1000)
    /// and `?after=` (the `next` of the page before). `{"installations": [...], "next": ID}`, `next`
    /// absent on the last page. One keyset query (`WHERE organization_id > after ORDER BY
    /// organization_id LIMIT limit + 1`), however large the table.
    static func installationsPage(_ request: Request, _ store: any TokenStore) async throws -> Response {
        let query = request.uri.queryParameters
        var limit = 100
        if let text = query["limit"].map(String.init) {
            guard let number = Int(text), (1...1000).contains(number) else {
                return Responses.json(.badRequest, ["error": "bad_request", "message": "limit must be a whole number from 1 to 1000"])
            }
            limit = number
        }
        let after = query["after"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        guard !(after ?? "").contains("\0") else {
            return Responses.json(.badRequest, ["error": "bad_request", "message": "after must be an organization id"])
        }
        var rows = try await store.metadata(matching: .all, after: after, limit: limit + 1)
        var next: String?
        if rows.count > limit {
            rows.removeLast(rows.count - limit)
            next = rows.last?.organizationID
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: MetadataJSON.page(rows, next: next)))
    }

    /// 409 `ambiguous_organization`, as an error value.
    struct Ambiguous: Error {
        var response: Response
    }

    private static func organizationID(_ reference: String, _ manager: TokenManager) async -> Result<String, Ambiguous> {
        switch try? await manager.vault.store.lookUp(reference, suggesting: false) {
        case .found(let metadata)?: return .success(metadata.organizationID)
        case .ambiguous(let matches)?: return .failure(Ambiguous(response: Responses.ambiguous(reference, matches)))
        case .notFound?, nil: return .success(reference)
        }
    }

    /// `{"access_token", "app_user_id", "expires_at", "organization_id"}`, or the error's answer. The
    /// reference is tried as an organization id first (the hot path: one cache lookup); only when that
    /// is not installed is it looked up as a URL key.
    private static func tokenAnswer(
        _ installURL: String?, _ reference: String, _ manager: TokenManager,
        _ get: (String) async throws(TokenManagerError) -> TokenManager.AccessToken
    ) async -> Response {
        do throws(TokenManagerError) {
            let token: TokenManager.AccessToken
            do throws(TokenManagerError) {
                token = try await get(reference)
            } catch {
                guard case .notInstalled = error else { throw error }
                switch try? await manager.vault.store.lookUp(reference, suggesting: false) {
                case .found(let metadata)? where metadata.organizationID != reference:
                    token = try await get(metadata.organizationID)
                case .ambiguous(let matches)?:
                    return Responses.ambiguous(reference, matches)
                default:
                    throw error
                }
            }
            // Written by hand, straight into the response's buffer: this is the hot route, and
            // JSONSerialization is slow on Linux.
            let bound = 96 + JSONWriter.timeBound + JSONWriter.bound(token.token.value) + JSONWriter.bound(token.appUserID)
                + JSONWriter.bound(token.organizationID)
            var body = ByteBufferAllocator().buffer(capacity: bound)
            body.writeJSON(bound: bound) { json in
                json.raw("{\"access_token\":")
                json.string(token.token.value)
                json.raw(",\"app_user_id\":")
                json.string(token.appUserID)
                json.raw(",\"expires_at\":")
                json.time(token.expiresAt)
                json.raw(",\"organization_id\":")
                json.string(token.organizationID)
                json.byte(UInt8(ascii: "}"))
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: body))
        } catch {
            return Responses.error(error, installURL: installURL)
        }
    }
}
