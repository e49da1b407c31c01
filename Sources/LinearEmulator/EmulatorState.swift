import Crypto
import Foundation

/// Everything the emulator remembers: organizations, clients, codes, grants and tokens, faults,
/// and the request log. All of Linear's OAuth behaviour lives here; the HTTP layer only translates.
actor EmulatorState {
    var settings = EmulatorSettings()
    var organizations: [EmulatedOrganization]
    var clients: [String: EmulatedClient]
    private(set) var log: [EmulatorRequestRecord] = []

    struct AuthorizationCode: Codable {
        var clientID: String
        var organizationID: String
        var redirectURI: String
        var scopes: [String]
        var actor: String
        var challenge: String?
        var challengeMethod: String
        var expiresAt: Date
        var used = false
    }

    struct Grant: Codable {
        var clientID: String
        var organizationID: String
        var scopes: [String]
        var actor: String
        var revoked = false

        /// An app-actor grant: an `actor=app` install (`application` is the old name) or a `client_credentials` token.
        var isAppActor: Bool { ["app", "application", "client_credentials"].contains(actor) }
    }

    struct AccessToken: Codable {
        var grantID: Int
        var expiresAt: Date
        var revoked = false
        var appToken = false
    }

    enum RefreshTokenState: Codable {
        case current
        /// Rotated at `at`; replaying it within the grace period answers `response` again.
        case rotated(at: Date, response: EmulatedTokenResponse)
        case revoked
    }

    struct RefreshToken: Codable {
        var grantID: Int
        var state: RefreshTokenState
    }

    var codes: [String: AuthorizationCode] = [:]
    var grants: [Int: Grant] = [:]
    var nextGrantID = 1
    var accessTokens: [String: AccessToken] = [:]
    var refreshTokens: [String: RefreshToken] = [:]
    private var rateWindows: [String: (start: Date, count: Int)] = [:]

    // Faults armed by tests.
    private var failNext: (count: Int, status: Int, retryAfter: Int?) = (0, 500, nil)
    /// Token calls received, counted on arrival (before latency): a test can see a call in flight.
    private(set) var tokenCallsArrived = 0
    func tokenCallArrived() { tokenCallsArrived += 1 }
    private var dropNextRefresh = false
    private var holdNextRefresh = false
    /// Responses held back (``EmulatorResponse/hold``), waiting for ``releaseHeldResponses()``.
    private var held: [CheckedContinuation<Void, Never>] = []
    /// Responses held back so far.
    private(set) var responsesHeld = 0

    init(organizations: [EmulatedOrganization], clients: [EmulatedClient], settings: EmulatorSettings) {
        self.settings = settings
        self.organizations = organizations
        self.clients = Dictionary(uniqueKeysWithValues: clients.map { ($0.id, $0) })
        for client in clients { SecretLedger.record(client) }
    }

    // MARK: - Control

    func update(_ settings: EmulatorSettings) { self.settings = settings }
    func add(_ organization: EmulatedOrganization) {
        organizations.removeAll { $0.id == organization.id }
        organizations.append(organization)
    }
    func add(_ client: EmulatedClient) {
        // Rotating a client's secret invalidates its app (client_credentials) tokens, as at Linear.
        if let old = clients[client.id], old.secret != client.secret {
            for (id, grant) in grants where grant.clientID == client.id && grant.actor == "client_credentials" { revokeGrant(id) }
        }
        clients[client.id] = client
        SecretLedger.record(client)
    }
    func client(_ id: String) -> EmulatedClient? { clients[id] }
    func organization(_ id: String) -> EmulatedOrganization? { organizations.first { $0.id == id } }
    func requests() -> [EmulatorRequestRecord] { log }
    func clearRequests() { log.removeAll() }

    func armFailures(count: Int, status: Int, retryAfter: Int?) { failNext = (count, status, retryAfter) }
    func armDropNextRefresh() { dropNextRefresh = true }
    func armHoldNextRefresh() { holdNextRefresh = true }

    /// Waits until the test releases held responses.
    func waitForRelease() async {
        await withCheckedContinuation { continuation in
            responsesHeld += 1
            held.append(continuation)
        }
    }

    func releaseHeldResponses() {
        let waiting = held
        held.removeAll()
        for continuation in waiting { continuation.resume() }
    }

    /// Expires every access token of an organization now (as if a day had passed).
    func expireAccessTokens(organizationID: String, now: Date) -> Int {
        var count = 0
        for (token, record) in accessTokens where grants[record.grantID]?.organizationID == organizationID {
            accessTokens[token]?.expiresAt = now.addingTimeInterval(-1)
            count += 1
        }
        return count
    }

    /// Issues tokens for a new grant without the browser flow (what an install would produce).
    func mintGrant(clientID: String, organizationID: String, scopes: [String], actor: String, now: Date) -> EmulatedTokenResponse? {
        guard clients[clientID] != nil, organization(organizationID) != nil else { return nil }
        let grantID = newGrant(Grant(clientID: clientID, organizationID: organizationID, scopes: scopes, actor: actor))
        return issueTokens(grantID: grantID, now: now)
    }

    /// What an access token would get now: why a call with it was refused.
    func check(accessToken token: String, now: Date) -> AccessTokenCheck {
        guard let access = accessTokens[token], let grant = grants[access.grantID] else { return .unknown }
        if access.revoked || grant.revoked { return .revoked }
        return access.expiresAt > now ? .live : .expired
    }

    /// What a refresh token would get now: the evidence that a grant was kept or lost.
    func check(refreshToken token: String, now: Date) -> RefreshTokenCheck {
        guard let entry = refreshTokens[token], let grant = grants[entry.grantID] else { return .unknown }
        if grant.revoked { return .revoked }
        switch entry.state {
        case .current: return .current
        case .revoked: return .revoked
        case .rotated(let at, _):
            return now.timeIntervalSince(at) <= TimeInterval(settings.gracePeriod) ? .replayable : .rotatedPastGrace
        }
    }

    /// Live (not revoked) grants per organization for a client.
    func liveGrants(clientID: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for grant in grants.values where grant.clientID == clientID && !grant.revoked { counts[grant.organizationID, default: 0] += 1 }
        return counts
    }

    /// Revokes an organization's grants of one client from Linear's side (an uninstall).
    /// - Returns: How many grants were revoked.
    func revokeGrants(clientID: String, organizationID: String) -> Int {
        var count = 0
        for (id, grant) in grants where grant.clientID == clientID && grant.organizationID == organizationID && !grant.revoked {
            revokeGrant(id)
            count += 1
        }
        return count
    }

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

    // MARK: - Token endpoint

    func token(form: [String: String], authorization: String?, now: Date) -> EmulatorResponse {
        var record = EmulatorRequestRecord(
            endpoint: "token", grantType: form["grant_type"], clientID: nil, organizationID: nil,
            refreshTokenFingerprint: form["refresh_token"].map(tokenFingerprint), outcome: "ok", status: 200, at: now)
        let response = tokenResponse(form: form, authorization: authorization, now: now, record: &record)
        record.status = response.status
        if response.drop { record.outcome = "dropped" }
        log.append(record)
        return response
    }

    private func tokenResponse(
        form: [String: String], authorization: String?, now: Date, record: inout EmulatorRequestRecord
    ) -> EmulatorResponse {
        if failNext.count > 0 {
            failNext.count -= 1
            record.outcome = "injected_\(failNext.status)"
            var headers: [(String, String)] = []
            if let retryAfter = failNext.retryAfter { headers.append(("Retry-After", String(retryAfter))) }
            return EmulatorResponse(
                status: failNext.status, body: Data("{\"error\":\"server_error\"}".utf8), headers: headers)
        }
        guard let client = authenticate(form: form, authorization: authorization) else {
            return Self.reject(&record, 401, "invalid_client", "Client authentication failed")
        }
        record.clientID = client.id
        switch form["grant_type"] {
        case "authorization_code":
            return authorizationCodeGrant(form: form, client: client, now: now, record: &record)
        case "refresh_token":
            return refreshTokenGrant(form: form, client: client, now: now, record: &record)
        case "client_credentials":
            return clientCredentialsGrant(form: form, client: client, now: now, record: &record)
        case nil:
            return Self.reject(&record, 400, "invalid_request", "grant_type is required")
        default:
            return Self.reject(&record, 400, "unsupported_grant_type", "Unsupported grant type")
        }
    }

    /// Client authentication: HTTP Basic, or `client_id` and `client_secret` in the body.
    private func authenticate(form: [String: String], authorization: String?) -> EmulatedClient? {
        var id = form["client_id"], secret = form["client_secret"]
        if let authorization, authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        {
            id = String(text[..<colon]).removingPercentEncoding
            secret = String(text[text.index(after: colon)...]).removingPercentEncoding
        }
        guard let id, let secret, let client = clients[id], Self.constantTimeEqual(client.secret, secret) else { return nil }
        return client
    }

    private func authorizationCodeGrant(
        form: [String: String], client: EmulatedClient, now: Date, record: inout EmulatorRequestRecord
    ) -> EmulatorResponse {
        guard let code = form["code"], var entry = codes[code], entry.clientID == client.id else {
            return Self.reject(&record, 400, "invalid_grant", "The authorization code is invalid")
        }
        record.organizationID = entry.organizationID
        guard !entry.used else {
            return Self.reject(&record, 400, "invalid_grant", "The authorization code has already been used")
        }
        guard entry.expiresAt > now else {
            return Self.reject(&record, 400, "invalid_grant", "The authorization code has expired")
        }
        guard form["redirect_uri"] == entry.redirectURI else {
            // UNCONFIRMED which code Linear uses here; a redirect URI mismatch is our configuration.
            return Self.reject(&record, 400, "invalid_request", "redirect_uri does not match the authorization request")
        }
        if let challenge = entry.challenge {
            guard let verifier = form["code_verifier"] else {
                return Self.reject(&record, 400, "invalid_grant", "code_verifier is required")
            }
            let computed = entry.challengeMethod == "S256" ? Self.s256(verifier) : verifier
            guard Self.constantTimeEqual(computed, challenge) else {
                return Self.reject(&record, 400, "invalid_grant", "code_verifier does not match the code challenge")
            }
        }
        entry.used = true
        codes[code] = entry
        let grantID = newGrant(Grant(clientID: client.id, organizationID: entry.organizationID, scopes: entry.scopes, actor: entry.actor))
        return .json(200, issueTokens(grantID: grantID, now: now).json)
    }

    private func refreshTokenGrant(
        form: [String: String], client: EmulatedClient, now: Date, record: inout EmulatorRequestRecord
    ) -> EmulatorResponse {
        guard let token = form["refresh_token"], let entry = refreshTokens[token], let grant = grants[entry.grantID],
            grant.clientID == client.id
        else {
            return Self.reject(&record, 400, "invalid_grant", "The refresh token is invalid")
        }
        record.organizationID = grant.organizationID
        guard !grant.revoked else {
            return Self.reject(&record, 400, "invalid_grant", "The refresh token has been revoked")
        }
        switch entry.state {
        case .revoked:
            return Self.reject(&record, 400, "invalid_grant", "The refresh token has been revoked")
        case .rotated(let at, let response):
            guard now.timeIntervalSince(at) <= TimeInterval(settings.gracePeriod) else {
                return Self.reject(&record, 400, "invalid_grant", "The refresh token has already been used")
            }
            record.outcome = "replayed"
            return .json(200, response.json)
        case .current:
            let response = issueTokens(grantID: entry.grantID, now: now)
            refreshTokens[token]?.state = .rotated(at: now, response: response)
            if dropNextRefresh || holdNextRefresh {
                var faulty = EmulatorResponse.json(200, response.json)
                faulty.drop = dropNextRefresh
                faulty.hold = holdNextRefresh && !dropNextRefresh
                dropNextRefresh = false
                holdNextRefresh = false
                return faulty
            }
            return .json(200, response.json)
        }
    }

    private func clientCredentialsGrant(
        form: [String: String], client: EmulatedClient, now: Date, record: inout EmulatorRequestRecord
    ) -> EmulatorResponse {
        guard client.clientCredentialsEnabled else {
            return Self.reject(&record, 400, "Error", "Client does not support the client_credentials grant type")
        }
        let scopes = Self.parseScopes(form["scope"] ?? "read")
        if let unknown = scopes.first(where: { !knownScopes.contains($0) }) {
            return Self.reject(&record, 400, "invalid_scope", "Unknown scope: \(unknown)")
        }
        // App tokens act in the app's first workspace.
        guard let organization = organization(settings.defaultOrganizationID ?? "") ?? organizations.first else {
            return .oauthError(500, "server_error", "no organization")
        }
        record.organizationID = organization.id
        let granted = scopes.contains("read") ? scopes : ["read"] + scopes
        // Linear: "requesting different scopes revokes all existing app-actor tokens of the app", and
        // app tokens of different grant types cannot be held in parallel. The emulator takes the strict
        // reading (no public source says which Linear does): that includes every `actor=app`
        // installation of the app whose scopes differ, in any workspace.
        for (id, grant) in grants where grant.clientID == client.id && grant.isAppActor && !grant.revoked {
            if Set(grant.scopes + ["read"]) != Set(granted) { revokeGrant(id) }
        }
        let grantID = newGrant(Grant(clientID: client.id, organizationID: organization.id, scopes: granted, actor: "client_credentials"))
        let token = Self.randomToken(prefix: "lin_oauth_")
        accessTokens[token] = AccessToken(
            grantID: grantID, expiresAt: now.addingTimeInterval(TimeInterval(settings.appTokenLifetime)), appToken: true)
        return .json(200, EmulatedTokenResponse(
            accessToken: token, refreshToken: nil, expiresIn: settings.appTokenLifetime, scopes: granted,
            legacyScopeArray: client.legacyScopeArray).json)
    }

    private func newGrant(_ grant: Grant) -> Int {
        let id = nextGrantID
        nextGrantID += 1
        grants[id] = grant
        return id
    }

    /// A new access and refresh token for a grant; the previous current refresh token is not touched here.
    private func issueTokens(grantID: Int, now: Date) -> EmulatedTokenResponse {
        let grant = grants[grantID]!
        let access = Self.randomToken(prefix: "lin_oauth_")
        let refresh = Self.randomToken(prefix: "lin_refresh_")
        accessTokens[access] = AccessToken(grantID: grantID, expiresAt: now.addingTimeInterval(TimeInterval(settings.accessTokenLifetime)))
        refreshTokens[refresh] = RefreshToken(grantID: grantID, state: .current)
        return EmulatedTokenResponse(
            accessToken: access, refreshToken: refresh, expiresIn: settings.accessTokenLifetime, scopes: grant.scopes,
            legacyScopeArray: clients[grant.clientID]?.legacyScopeArray ?? false)
    }

    private func revokeGrant(_ id: Int) {
        grants[id]?.revoked = true
        for (token, record) in accessTokens where record.grantID == id { accessTokens[token]?.revoked = true }
        for (token, record) in refreshTokens where record.grantID == id { refreshTokens[token]?.state = .revoked }
    }

    // MARK: - Revocation

    /// `POST /oauth/revoke`: `token` (+ `token_type_hint`), or the legacy forms (a Bearer header, or
    /// `access_token` / `refresh_token` fields), never combined.
    func revoke(form: [String: String], authorization: String?, now: Date) -> EmulatorResponse {
        var record = EmulatorRequestRecord(
            endpoint: "revoke", grantType: nil, clientID: nil, organizationID: nil, refreshTokenFingerprint: nil,
            outcome: "ok", status: 200, at: now)
        let response = revokeResponse(form: form, authorization: authorization, record: &record)
        record.status = response.status
        log.append(record)
        return response
    }

    private func revokeResponse(form: [String: String], authorization: String?, record: inout EmulatorRequestRecord) -> EmulatorResponse {
        let bearer = authorization.flatMap { $0.lowercased().hasPrefix("bearer ") ? String($0.dropFirst(7)) : nil }
        let legacyFields = [form["access_token"], form["refresh_token"]].compactMap { $0 }
        // Linear documents `token` with no client authentication, and the Authorization header as its
        // legacy way to revoke: a request mixing them is flagged, so a client that does is caught.
        if form["token"] != nil && (!legacyFields.isEmpty || authorization != nil) {
            return Self.reject(&record, 400, "invalid_request", "token cannot be combined with the legacy parameters or an Authorization header")
        }
        if form["client_secret"] != nil {
            return Self.reject(&record, 400, "invalid_request", "revocation takes no client authentication")
        }
        if let hint = form["token_type_hint"], !["access_token", "refresh_token"].contains(hint) {
            return Self.reject(&record, 400, "unsupported_token_type", "token_type_hint must be access_token or refresh_token")
        }
        if let bearer, form["token"] == nil, legacyFields.isEmpty {
            // The legacy header form: the token authenticates the request itself.
            guard revokeToken(bearer, record: &record) else {
                record.outcome = "unauthenticated"
                return .oauthError(401, "invalid_token", "The token could not authenticate")
            }
            return EmulatorResponse(status: 200, body: Data())
        }
        let tokens = form["token"].map { [$0] } ?? legacyFields
        guard !tokens.isEmpty else {
            return Self.reject(&record, 400, "invalid_request", "token is required")
        }
        for token in tokens {
            record.refreshTokenFingerprint = refreshTokens[token] != nil ? tokenFingerprint(token) : record.refreshTokenFingerprint
            guard revokeToken(token, record: &record) else {
                record.outcome = "not_revoked"
                return .oauthError(400, "invalid_request", "The token could not be revoked")
            }
        }
        return EmulatorResponse(status: 200, body: Data())
    }

    /// Revokes one token, and with it its whole grant, as Linear's docs word it ("revoke the
    /// authorization"; UNCONFIRMED in detail: integrations revoke only the access token). `false`
    /// if it was not live.
    private func revokeToken(_ token: String, record: inout EmulatorRequestRecord) -> Bool {
        if let entry = refreshTokens[token] {
            record.organizationID = grants[entry.grantID]?.organizationID
            if case .revoked = entry.state { return false }
            guard grants[entry.grantID]?.revoked == false else { return false }
            revokeGrant(entry.grantID)
            return true
        }
        if let entry = accessTokens[token] {
            record.organizationID = grants[entry.grantID]?.organizationID
            guard !entry.revoked, grants[entry.grantID]?.revoked == false else { return false }
            accessTokens[token]?.revoked = true
            revokeGrant(entry.grantID)
            return true
        }
        return false
    }

    // MARK: - GraphQL

    func graphQL(query: String?, authorization: String?, now: Date) -> EmulatorResponse {
        var record = EmulatorRequestRecord(
            endpoint: "graphql", grantType: nil, clientID: nil, organizationID: nil, refreshTokenFingerprint: nil,
            outcome: "ok", status: 200, at: now)
        defer { log.append(record) }
        var token = authorization ?? ""
        if token.lowercased().hasPrefix("bearer ") { token = String(token.dropFirst(7)) }
        guard let access = accessTokens[token], !access.revoked, access.expiresAt > now,
            let grant = grants[access.grantID], !grant.revoked,
            let organization = organization(grant.organizationID), let client = clients[grant.clientID]
        else {
            record.outcome = "unauthenticated"
            record.status = 401
            return .json(401, ["errors": [[
                "message": "Authentication required, not authenticated",
                "extensions": ["type": "authentication error", "code": "AUTHENTICATION_ERROR", "statusCode": 401, "userError": true],
            ]]])
        }
        record.organizationID = organization.id
        record.clientID = client.id
        var headers: [(String, String)] = []
        if let limit = settings.rateLimitRequests {
            var window = rateWindows[token] ?? (now, 0)
            if now.timeIntervalSince(window.start) >= TimeInterval(settings.rateLimitWindow) { window = (now, 0) }
            window.count += 1
            rateWindows[token] = window
            let (rateHeaders, retryAt) = Self.rateLimitHeaders(
                budget: settings.rateLimitBudget, limit: limit, used: window.count, windowStart: window.start,
                window: TimeInterval(settings.rateLimitWindow))
            headers = rateHeaders
            if window.count > limit {
                record.outcome = "rate_limited"
                record.status = settings.rateLimitStatus
                headers.append(("Retry-After", String(max(1, Int(retryAt.timeIntervalSince(now).rounded(.up))))))
                return .json(settings.rateLimitStatus, ["errors": [[
                    "message": "Rate limit exceeded",
                    "extensions": ["code": "RATELIMITED", "type": "ratelimited", "statusCode": 429, "userError": true],
                ]]], headers: headers)
            }
        }
        let text = query ?? ""
        var data: [String: Any] = [:]
        if text.range(of: #"\bviewer\b"#, options: .regularExpression) != nil {
            data["viewer"] = grant.actor == "user"
                ? ["id": "user-\(organization.id)", "name": "Emulated Admin"]
                : ["id": organization.appUserID, "name": client.name]
        }
        if text.range(of: #"\borganization\b"#, options: .regularExpression) != nil {
            data["organization"] = ["id": organization.id, "name": organization.name, "urlKey": organization.urlKey]
        }
        guard !data.isEmpty else {
            record.outcome = "unsupported_query"
            record.status = 400
            return .json(400, ["errors": [[
                "message": "The emulator answers viewer { id name } and organization { id name urlKey } only",
                "extensions": ["code": "GRAPHQL_VALIDATION_FAILED", "type": "graphql error", "userError": true],
            ]]], headers: headers)
        }
        return .json(200, ["data": data], headers: headers)
    }

    // MARK: - Helpers

    /// Linear's three budgets for a token that has used `used` of `limit` in the window that started at
    /// `windowStart`: the chosen one runs out at the window's end, the others have plenty left and
    /// reset half a window earlier and a whole window later: a client must wait for the budget that
    /// ran out (and `Retry-After`), not for the latest reset it sees. Also returns when the chosen budget resets.
    static func rateLimitHeaders(
        budget: EmulatorSettings.RateLimitBudget, limit: Int, used: Int, windowStart: Date, window: TimeInterval
    ) -> ([(String, String)], Date) {
        let others = EmulatorSettings.RateLimitBudget.allCases.filter { $0 != budget }
        let resets: [EmulatorSettings.RateLimitBudget: Date] = [
            budget: windowStart.addingTimeInterval(window),
            others[0]: windowStart.addingTimeInterval(window / 2),
            others[1]: windowStart.addingTimeInterval(window * 2),
        ]
        var headers: [(String, String)] = []
        for (kind, prefix, scale) in [
            (EmulatorSettings.RateLimitBudget.requests, "X-RateLimit-Requests", 1),
            (.complexity, "X-RateLimit-Complexity", 100), (.endpointRequests, "X-RateLimit-Endpoint-Requests", 1),
        ] {
            // The chosen budget holds `limit`; the others ten times as much, and never run out here.
            let size = (kind == budget ? limit : limit * 10) * scale
            let spent = (kind == budget ? used : min(used, limit)) * scale
            headers += [
                (prefix + "-Limit", String(size)),
                (prefix + "-Remaining", String(max(0, size - spent))),
                (prefix + "-Reset", String(Int64(resets[kind]!.timeIntervalSince1970 * 1000))),
            ]
        }
        return (headers, resets[budget]!)
    }

    /// An OAuth error answer, logged with its code as the outcome.
    static func reject(_ record: inout EmulatorRequestRecord, _ status: Int, _ error: String, _ description: String) -> EmulatorResponse {
        record.outcome = error
        return .oauthError(status, error, description)
    }

    static func parseScopes(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
    }

    static func randomToken(prefix: String) -> String {
        let token = prefix + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        SecretLedger.record(token, kind: prefix)
        return token
    }

    static func s256(_ verifier: String) -> String {
        Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
