import Foundation

/// The authorize endpoint: validating a request as Linear does, and the consent that follows.
extension EmulatorState {
    // MARK: - Authorization

    enum AuthorizeOutcome {
        /// Show the consent page (or, with auto-approve, redirect at once).
        /// `organization`: where the install goes unless the user picks another of `choices` (every
        /// workspace with `prompt=consent`, else only the one they are signed in to).
        case consent(client: EmulatedClient, organization: EmulatedOrganization, choices: [EmulatedOrganization], scopes: [String])
        /// A redirect to the client with `error=...`.
        case redirectError(String, description: String)
        /// An error page: the request cannot be sent back to the client.
        case page(status: Int, message: String)
    }

    /// Validates an authorize request as Linear does.
    func validateAuthorize(_ query: [String: String]) -> AuthorizeOutcome {
        guard let clientID = query["client_id"], let client = clients[clientID] else {
            return .page(status: 400, message: "Invalid client_id: no OAuth application has this client id.")
        }
        guard let redirectURI = query["redirect_uri"], client.redirectURIs.contains(redirectURI) else {
            return .page(status: 400, message: "Invalid redirect_uri: it does not match the application's redirect URIs.")
        }
        guard query["response_type"] == "code" else {
            return .redirectError("unsupported_response_type", description: "response_type must be code")
        }
        let actor = query["actor"] ?? "user"
        guard ["user", "app", "application"].contains(actor) else {
            return .redirectError("invalid_request", description: "actor must be user or app")
        }
        let scopes = Self.parseScopes(query["scope"] ?? "read")
        if let unknown = scopes.first(where: { !knownScopes.contains($0) }) {
            return .redirectError("invalid_scope", description: "Unknown scope: \(unknown)")
        }
        if actor != "user" && scopes.contains("admin") {
            return .redirectError("invalid_scope", description: "The admin scope cannot be requested with actor=app")
        }
        if let method = query["code_challenge_method"], !["plain", "S256"].contains(method) {
            return .redirectError("invalid_request", description: "code_challenge_method must be plain or S256")
        }
        if query["code_challenge_method"] != nil && query["code_challenge"] == nil {
            return .redirectError("invalid_request", description: "code_challenge is missing")
        }
        guard let organization = organization(settings.defaultOrganizationID ?? "") ?? organizations.first else {
            return .page(status: 500, message: "The emulator has no organization to install into.")
        }
        // The emulator's one user belongs to every workspace and is signed in to the default one. As at
        // Linear, only `prompt=consent` lets them choose another.
        let choices = query["prompt"] == "consent" ? organizations : [organization]
        return .consent(client: client, organization: organization, choices: choices, scopes: scopes)
    }

    /// Issues a single-use code for an approved authorize request.
    func approve(_ query: [String: String], organizationID: String?, now: Date) -> String? {
        guard case .consent(_, let fallback, let choices, let scopes) = validateAuthorize(query) else { return nil }
        var organization = fallback
        if let organizationID {
            // A workspace that was not offered cannot be chosen.
            guard let chosen = choices.first(where: { $0.id == organizationID }) else { return nil }
            organization = chosen
        }
        let code = Self.randomToken(prefix: "lin_code_")
        var actor = query["actor"] ?? "user"
        if actor == "application" { actor = "app" }
        codes[code] = AuthorizationCode(
            clientID: query["client_id"]!, organizationID: organization.id, redirectURI: query["redirect_uri"]!,
            scopes: scopes.contains("read") ? scopes : ["read"] + scopes, actor: actor,
            challenge: query["code_challenge"], challengeMethod: query["code_challenge_method"] ?? "plain",
            expiresAt: now.addingTimeInterval(TimeInterval(settings.authorizationCodeLifetime)))
        return code
    }
}
