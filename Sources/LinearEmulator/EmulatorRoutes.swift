import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The request context: the channel is kept so a "lost" response can close the connection.
struct EmulatorContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    var maxUploadSize: Int { 1 << 20 }
}

/// Maps HTTP onto ``EmulatorState``.
struct EmulatorRoutes: Sendable {
    let state: EmulatorState
    /// Written after every request that may change the world (all but GETs), when set.
    var stateFile: String? = nil

    func router() -> Router<EmulatorContext> {
        let router = Router(context: EmulatorContext.self)
        if let stateFile { router.add(middleware: PersistingMiddleware(state: state, path: stateFile)) }
        router.get("/oauth/authorize") { request, _ in try await authorize(request) }
        router.post("/oauth/authorize") { request, context in try await decide(request, context) }
        router.post("/oauth/token") { request, context in
            await state.tokenCallArrived()
            return try await oauthCall(request, context) { form, authorization in
                await state.token(form: form, authorization: authorization, now: Date())
            }
        }
        router.post("/oauth/revoke") { request, context in
            try await oauthCall(request, context) { form, authorization in
                await state.revoke(form: form, authorization: authorization, now: Date())
            }
        }
        router.post("/graphql") { request, context in try await graphQL(request, context) }

        let control = router.group("/_emulator")
        control.get("config") { _, _ in try Self.encode(await state.settings) }
        control.post("config") { request, context in
            let settings = try await request.decode(as: EmulatorSettings.self, context: context)
            await state.update(settings)
            return try Self.encode(settings)
        }
        control.post("faults") { request, context in
            let faults = try await request.decode(as: FaultsRequest.self, context: context)
            if let fail = faults.failNext {
                await state.armFailures(count: fail.count, status: fail.status, retryAfter: fail.retryAfter)
            }
            if faults.dropNextRefresh == true { await state.armDropNextRefresh() }
            if faults.holdNextRefresh == true { await state.armHoldNextRefresh() }
            if faults.releaseHeld == true { await state.releaseHeldResponses() }
            return Response(status: .noContent)
        }
        control.post("organizations") { request, context in
            await state.add(try await request.decode(as: EmulatedOrganization.self, context: context))
            return Response(status: .noContent)
        }
        control.post("clients") { request, context in
            await state.add(try await request.decode(as: EmulatedClient.self, context: context))
            return Response(status: .noContent)
        }
        control.post("grants") { request, context in
            let grant = try await request.decode(as: GrantRequest.self, context: context)
            guard let tokens = await state.mintGrant(
                clientID: grant.clientID ?? LinearEmulator.defaultClient.id, organizationID: grant.organizationID,
                scopes: grant.scopes ?? ["read", "write"], actor: grant.actor ?? "app", now: Date())
            else { throw HTTPError(.notFound, message: "unknown client or organization") }
            return Self.send(.json(200, tokens.json))
        }
        control.post("expire") { request, context in
            let body = try await request.decode(as: OrganizationRequest.self, context: context)
            let count = await state.expireAccessTokens(organizationID: body.organizationID, now: Date())
            return Self.send(.json(200, ["expired": count]))
        }
        control.post("revoke") { request, context in
            let body = try await request.decode(as: OrganizationRequest.self, context: context)
            let clientID = body.clientID ?? LinearEmulator.defaultClient.id
            let revoked = await state.revokeGrants(clientID: clientID, organizationID: body.organizationID)
            var answer: [String: Any] = ["revoked_grants": revoked]
            if let client = await state.client(clientID), let url = client.webhookURL, let secret = client.webhookSecret {
                do {
                    answer["webhook_status"] = try await LinearEmulator.sendRevokedWebhook(
                        to: url, secret: secret, clientID: clientID, organizationID: body.organizationID)
                } catch {
                    answer["webhook_error"] = "\(error)"
                }
            }
            return Self.send(.json(200, answer))
        }
        control.get("requests") { _, _ in try Self.encode(await state.requests()) }
        control.delete("requests") { _, _ in
            await state.clearRequests()
            return Response(status: .noContent)
        }
        return router
    }

    // MARK: - OAuth

    private func delay() async throws {
        let milliseconds = await state.settings.latencyMilliseconds
        if milliseconds > 0 { try await Task.sleep(for: .milliseconds(milliseconds)) }
    }

    private func authorize(_ request: Request) async throws -> Response {
        let query = Self.parseForm(request.uri.query ?? "")
        switch await state.validateAuthorize(query) {
        case .page(let status, let message):
            return Self.html(status, page(title: "Authorization failed", body: "<p>\(escape(message))</p>"))
        case .redirectError(let error, let description):
            return redirect(query, ["error": error, "error_description": description])
        case .consent(let client, let organization, let choices, let scopes):
            if await state.settings.autoApprove, let code = await state.approve(query, organizationID: nil, now: Date()) {
                return redirect(query, ["code": code])
            }
            let hidden = query.sorted { $0.key < $1.key }
                .map { "<input type=\"hidden\" name=\"\(escape($0.key))\" value=\"\(escape($0.value))\">" }.joined()
            let workspace: String
            if choices.count > 1 {
                // prompt=consent and several workspaces: the user picks one.
                let options = choices.map { choice in
                    let checked = choice.id == organization.id ? " checked" : ""
                    return """
                        <li><label><input type="radio" name="organization_id" value="\(escape(choice.id))"\(checked)> \
                        <strong>\(escape(choice.name))</strong> (\(escape(choice.urlKey)))</label></li>
                        """
                }.joined()
                workspace = """
                    <p><strong>\(escape(client.name))</strong> wants to access one of your workspaces. Choose the workspace:</p>
                    <ul class="workspaces">\(options)</ul>
                    """
            } else {
                workspace = """
                    <p><strong>\(escape(client.name))</strong> wants to access the <strong>\(escape(organization.name))</strong> \
                    workspace (\(escape(organization.urlKey))).</p>
                    <input type="hidden" name="organization_id" value="\(escape(organization.id))">
                    """
            }
            let body = """
                <form method="post" action="/oauth/authorize">\(hidden)
                \(workspace)
                <p>Requested scopes:</p><ul>\(scopes.map { "<li>\(escape($0))</li>" }.joined())</ul>
                <button type="submit" name="decision" value="approve">Approve</button>
                <button type="submit" name="decision" value="deny">Deny</button>
                </form>
                """
            return Self.html(200, page(title: "Authorize \(client.name)", body: body))
        }
    }

    private func decide(_ request: Request, _ context: EmulatorContext) async throws -> Response {
        var request = request
        let form = Self.parseForm(String(buffer: try await request.collectBody(upTo: context.maxUploadSize)))
        var query = form
        for key in ["decision", "organization_id"] { query.removeValue(forKey: key) }
        guard case .consent = await state.validateAuthorize(query) else {
            return Self.html(400, page(title: "Authorization failed", body: "<p>The authorization request is not valid.</p>"))
        }
        guard form["decision"] == "approve" else {
            return redirect(query, ["error": "access_denied", "error_description": "The user denied the request"])
        }
        guard let code = await state.approve(query, organizationID: form["organization_id"], now: Date()) else {
            return Self.html(400, page(title: "Authorization failed", body: "<p>The authorization request is not valid.</p>"))
        }
        return redirect(query, ["code": code])
    }

    /// A 302 back to the client's redirect URI with `parameters` and the request's `state`.
    private func redirect(_ query: [String: String], _ parameters: [String: String]) -> Response {
        var components = URLComponents(string: query["redirect_uri"] ?? "") ?? URLComponents()
        var items = components.queryItems ?? []
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) { items.append(URLQueryItem(name: name, value: value)) }
        if let state = query["state"] { items.append(URLQueryItem(name: "state", value: state)) }
        components.percentEncodedQuery = items.map { "\(Self.formEncode($0.name))=\(Self.formEncode($0.value ?? ""))" }
            .joined(separator: "&")
        return Response(status: .found, headers: [.location: components.string ?? ""])
    }

    /// Token and revoke calls: form-encoded bodies, latency, and the lost-response fault.
    private func oauthCall(
        _ request: Request, _ context: EmulatorContext,
        _ handle: ([String: String], String?) async -> EmulatorResponse
    ) async throws -> Response {
        try await delay()
        var request = request
        let contentType = request.headers[.contentType] ?? ""
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        guard contentType.lowercased().hasPrefix("application/x-www-form-urlencoded") else {
            return Self.send(.oauthError(400, "invalid_request", "The body must be application/x-www-form-urlencoded"))
        }
        let response = await handle(Self.parseForm(String(buffer: body)), request.headers[.authorization])
        if response.hold { await state.waitForRelease() }
        if response.drop {
            context.channel.close(promise: nil)
        }
        return Self.send(response)
    }

    private func graphQL(_ request: Request, _ context: EmulatorContext) async throws -> Response {
        try await delay()
        var request = request
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
        return Self.send(await state.graphQL(
            query: object?["query"] as? String, authorization: request.headers[.authorization], now: Date()))
    }

    // MARK: - Helpers

    static func send(_ response: EmulatorResponse) -> Response {
        var headers: HTTPFields = [.contentType: response.contentType, .cacheControl: "no-store"]
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(
            status: HTTPResponse.Status(code: response.status), headers: headers,
            body: .init(byteBuffer: ByteBuffer(data: response.body)))
    }

    static func encode<T: Encodable>(_ value: T) throws -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(data: try encoder.encode(value))))
    }

    static func html(_ status: Int, _ text: String) -> Response {
        Response(
            status: HTTPResponse.Status(code: status), headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private func page(title: String, body: String) -> String {
        """
        <!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>\(escape(title)) - Linear emulator</title></head>
        <body><h1>\(escape(title))</h1>\(body)<p><small>Linear emulator: not the real Linear.</small></p></body></html>
        """
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }

    /// Parses `application/x-www-form-urlencoded` (also a URL query): `+` is a space; the last
    /// of repeated names wins.
    static func parseForm(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(part)
            }
            result[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return result
    }

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

struct FaultsRequest: Decodable {
    struct FailNext: Decodable {
        var count: Int
        var status: Int
        var retryAfter: Int?
        enum CodingKeys: String, CodingKey { case count, status, retryAfter = "retry_after" }
    }
    var failNext: FailNext?
    var dropNextRefresh: Bool?
    var holdNextRefresh: Bool?
    var releaseHeld: Bool?
    enum CodingKeys: String, CodingKey {
        case failNext = "fail_next", dropNextRefresh = "drop_next_refresh", holdNextRefresh = "hold_next_refresh", releaseHeld = "release_held"
    }
}

struct GrantRequest: Decodable {
    var clientID: String?
    var organizationID: String
    var scopes: [String]?
    var actor: String?
    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", organizationID = "organization_id", scopes, actor
    }
}

struct OrganizationRequest: Decodable {
    var organizationID: String
    var clientID: String?
    enum CodingKeys: String, CodingKey { case organizationID = "organization_id", clientID = "client_id" }
}

/// Saves the emulator's world after each request that may have changed it.
struct PersistingMiddleware: RouterMiddleware {
    typealias Context = EmulatorContext
    let state: EmulatorState
    let path: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        if request.method != .get { try? await state.save(to: path) }
        return response
    }
}
