import Foundation
import HTTPTypes
import Hummingbird
import LinearOAuth
import Logging

/// The install flow: `/oauth/authorize` sends a workspace admin to Linear's consent page
/// (`actor=app`, a single-use `state`, PKCE S256); `/oauth/callback` takes the code back,
/// exchanges it, asks Linear who we are in that workspace, and stores the tokens encrypted.
/// The state lives in the database, so the callback may land on any instance.
struct InstallRoutes {
    let manager: TokenManager
    let configuration: LinearOAuthServerConfiguration
    let logger: Logger

    var routes: RouteCollection<LinearOAuthRequestContext> {
        let routes = RouteCollection(context: LinearOAuthRequestContext.self)
        if let limit = configuration.installRateLimit {
            routes.add(middleware: RateLimitMiddleware(
                limiter: RateLimiter(burst: limit.burst, perMinute: limit.perMinute), trustProxy: configuration.trustProxy))
        }
        routes.get("/oauth/authorize") { _, _ in try await authorize() }
        routes.get("/oauth/callback") { request, _ in await callback(request) }
        return routes
    }

    private func authorize() async throws -> Response {
        let state = PKCE.base64URL(Data((0..<32).map { _ in UInt8.random(in: 0...255) }))
        let pkce = PKCE()
        let keyRing = manager.vault.keyRing
        let sealed = try keyRing.seal(pkce.verifier, organizationID: Self.stateName(state), column: .codeVerifier)
        let stored = try await manager.vault.store.saveAuthorizationState(
            state, sealedVerifier: sealed, expiresAt: Date().addingTimeInterval(configuration.stateLifetime.timeInterval),
            maxPending: configuration.maxPendingInstalls)
        guard stored else {
            logger.warning("too many installs in progress; refusing a new one", metadata: ["limit": .stringConvertible(configuration.maxPendingInstalls)])
            var response = Self.failure(.serviceUnavailable, "Install unavailable", "Too many installs are in progress; try again in a minute.")
            response.headers[.retryAfter] = "60"
            return response
        }
        do {
            let url = try manager.linear.authorizationURL(state: state, pkce: pkce, scopes: configuration.scopes, actor: "app", promptConsent: configuration.promptConsent)
            return Response(status: .found, headers: [.location: url, .cacheControl: "no-store"])
        } catch {
            return Self.failure(.internalServerError, "Install failed", "The service is not configured for installs: \(error)")
        }
    }

    private func callback(_ request: Request) async -> Response {
        let query = request.uri.queryParameters
        let state = query["state"].map(String.init)
        if let error = query["error"].map(String.init) {
            if let state { _ = try? await manager.vault.store.takeAuthorizationState(state) }
            let reason = error == "access_denied" ? "The install was cancelled in Linear." : "Linear did not authorize the install (\(error))."
            return Self.failure(.ok, "Install cancelled", "\(reason) Nothing was stored.")
        }
        // States are base64url: anything else (a receipt's name, say) was not issued here.
        guard let state, !state.isEmpty, !state.contains(":") else {
            return Self.failure(.badRequest, "Install failed", "The callback has no state: start the install again.")
        }
        guard let code = query["code"].map(String.init), !code.isEmpty else {
            return Self.failure(.badRequest, "Install failed", "The callback has no code: start the install again.")
        }
        let taken: (sealedVerifier: [UInt8], expiresAt: Date)?
        do {
            taken = try await manager.vault.store.takeAuthorizationState(state)
        } catch {
            return Self.failure(.serviceUnavailable, "Install failed", "The database is not reachable; try again.")
        }
        guard let taken else {
            // A reload of the callback after a success: say so, rather than alarm.
            if let organizationID = try? await InstallReceipts.organizationID(forState: state, store: manager.vault.store) {
                let metadata = try? await manager.vault.store.load(organizationID: organizationID)?.metadata
                return success(organizationID: organizationID, name: metadata?.organizationName, urlKey: metadata?.urlKey, again: true)
            }
            return Self.failure(.badRequest, "Install failed", "This install link is unknown or was already used: start the install again.")
        }
        guard taken.expiresAt > Date() else {
            return Self.failure(.badRequest, "Install failed", "This install link has expired: start the install again.")
        }
        let verifier: String
        do {
            verifier = try manager.vault.keyRing.open(taken.sealedVerifier, organizationID: Self.stateName(state), column: .codeVerifier)
        } catch {
            return Self.failure(.badRequest, "Install failed", "This install link cannot be verified: start the install again.")
        }
        let tokens: LinearTokenResponse
        do {
            tokens = try await manager.linear.exchangeCode(code, codeVerifier: verifier)
        } catch {
            switch error {
            case .transient:
                return Self.failure(.serviceUnavailable, "Install failed", "Linear did not answer; try the install again in a moment.")
            case .configuration(let details) where details.status == 401 || ["invalid_client", "unauthorized_client"].contains(details.code ?? ""):
                logger.error("Linear refused the app's credentials at the code exchange", metadata: ["reason": .string(error.description)])
                return Self.failure(.internalServerError, "Install failed", "Linear refused this app's credentials: the service is misconfigured.")
            case .reauthorizationRequired, .configuration:
                // Anything else about the code (forged, used, expired, malformed) is the request's fault.
                // Logged, in case it is this service's configuration (a redirect URI Linear does not know).
                logger.warning("Linear refused an authorization code", metadata: ["reason": .string(error.description)])
                return Self.failure(.badRequest, "Install failed", "Linear refused the authorization code (\(error.details.message)): start the install again.")
            }
        }
        struct Identity: Decodable {
            struct Viewer: Decodable { var id: String }
            struct Organization: Decodable { var id: String; var name: String; var urlKey: String }
            var viewer: Viewer
            var organization: Organization
        }
        let identity: Identity
        do {
            identity = try await manager.linear.graphQL(
                "query { viewer { id } organization { id name urlKey } }", accessToken: tokens.accessToken
            ).decode(Identity.self)
        } catch {
            // The grant exists at Linear but will not be stored: give it back (best effort).
            await revokeUnstored(tokens)
            switch error {
            case LinearAPIError.transport, LinearAPIError.rateLimited:
                return Self.failure(.serviceUnavailable, "Install failed", "Linear did not answer; try the install again in a moment.")
            default:
                logger.error("Linear's answer did not name the workspace", metadata: ["reason": .string("\(error)")])
                return Self.failure(.badGateway, "Install failed", "Linear did not say which workspace this is; try the install again.")
            }
        }
        guard let refreshToken = tokens.refreshToken else {
            await revokeUnstored(tokens)
            return Self.failure(.badGateway, "Install failed", "Linear sent no refresh token.")
        }
        do {
            // A re-install replaces the tokens and clears reauthorization_required.
            try await manager.vault.save(Installation(
                organizationID: identity.organization.id, appUserID: identity.viewer.id, accessToken: tokens.accessToken,
                refreshToken: refreshToken, expiresAt: tokens.expiresAt, scopes: tokens.scopes,
                clientID: manager.linear.configuration.clientID, organizationName: identity.organization.name,
                urlKey: identity.organization.urlKey))
        } catch {
            await revokeUnstored(tokens)
            return Self.failure(.serviceUnavailable, "Install failed", "The tokens could not be stored; try the install again.")
        }
        manager.evict(identity.organization.id)
        logger.info("the app was installed", metadata: [
            "organization": .string(identity.organization.id), "url_key": .string(identity.organization.urlKey)])
        configuration.events.record(.init(organizationID: identity.organization.id, event: "install", outcome: "installed", detail: identity.organization.urlKey))
        try? await InstallReceipts.record(state: state, organizationID: identity.organization.id, lifetime: configuration.stateLifetime, store: manager.vault.store)
        if let successURL = configuration.successURL {
            return Response(status: .found, headers: [.location: successURL, .cacheControl: "no-store"])
        }
        return success(organizationID: identity.organization.id, name: identity.organization.name, urlKey: identity.organization.urlKey, again: false)
    }

    /// The success page: the workspace, its organization id and URL key, and what to do next.
    private func success(organizationID: String, name: String?, urlKey: String?, again: Bool) -> Response {
        let base = configuration.publicURL(redirectURI: manager.linear.configuration.redirectURI) ?? ""
        var details = [["name": "Organization id", "value": organizationID]]
        if let urlKey { details.append(["name": "URL key", "value": urlKey]) }
        let workspace = name.map { "the \($0) workspace" } ?? "the workspace"
        let context: [String: Any] = [
            "title": again ? "Already installed" : "Installed",
            "tone": "success",
            "paragraphs": [again
                ? "This install already completed: the app is installed in \(workspace). Nothing more to do here."
                : "The app is installed in \(workspace). Its tokens are stored encrypted and kept fresh."],
            "hasDetails": true, "details": details,
            "hasSteps": true,
            "steps": [
                ["text": "See it in the operator console:", "href": "/", "label": "open the console"],
                ["text": "Get an access token over HTTP with an API key:",
                 "code": "curl -H \"Authorization: Bearer $API_KEY\" \(base)/v1/installations/\(organizationID)/access-token"],
                ["text": "Or on the command line:", "code": "linear-oauth token \(organizationID)"],
            ] as [[String: String]],
            "links": [] as [[String: String]],
        ]
        return ConsoleRoutes.html(.ok, "message", context)
    }

    /// An install page that went wrong (or was cancelled): what happened, and a way to start again.
    static func failure(_ status: HTTPResponse.Status, _ title: String, _ text: String) -> Response {
        ConsoleRoutes.html(status, "message", [
            "title": title, "tone": "alert", "paragraphs": [text],
            "links": [["label": "Start the install again", "href": "/oauth/authorize"]],
        ])
    }

    /// Revokes tokens of an install that failed after the code exchange, so no grant is left behind
    /// at Linear that nothing here knows of (the admin's next attempt makes a new one).
    private func revokeUnstored(_ tokens: LinearTokenResponse) async {
        let revocations = [tokens.accessToken].map { ($0, LinearTokenTypeHint.accessToken) }
            + (tokens.refreshToken.map { [($0, LinearTokenTypeHint.refreshToken)] } ?? [])
        for (token, hint) in revocations { _ = try? await manager.linear.revoke(token, hint: hint) }
    }

    static func stateName(_ state: String) -> String { "oauth-state:\(state)" }
}
