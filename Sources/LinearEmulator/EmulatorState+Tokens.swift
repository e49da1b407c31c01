import Foundation

/// The token endpoint (authorization code, refresh token and client credentials grants, with
/// their faults) and revocation.
extension EmulatorState {
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

    func tokenResponse(
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
    func authenticate(form: [String: String], authorization: String?) -> EmulatedClient? {
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

    func authorizationCodeGrant(
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

    func refreshTokenGrant(
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

    func clientCredentialsGrant(
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

    func newGrant(_ grant: Grant) -> Int {
        let id = nextGrantID
        nextGrantID += 1
        grants[id] = grant
        return id
    }

    /// A new access and refresh token for a grant; the previous current refresh token is not touched here.
    func issueTokens(grantID: Int, now: Date) -> EmulatedTokenResponse {
        let grant = grants[grantID]!
        let access = Self.randomToken(prefix: "lin_oauth_")
        let refresh = Self.randomToken(prefix: "lin_refresh_")
        accessTokens[access] = AccessToken(grantID: grantID, expiresAt: now.addingTimeInterval(TimeInterval(settings.accessTokenLifetime)))
        refreshTokens[refresh] = RefreshToken(grantID: grantID, state: .current)
        return EmulatedTokenResponse(
            accessToken: access, refreshToken: refresh, expiresIn: settings.accessTokenLifetime, scopes: grant.scopes,
            legacyScopeArray: clients[grant.clientID]?.legacyScopeArray ?? false)
    }

    func revokeGrant(_ id: Int) {
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

    func revokeResponse(form: [String: String], authorization: String?, record: inout EmulatorRequestRecord) -> EmulatorResponse {
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
    func revokeToken(_ token: String, record: inout EmulatorRequestRecord) -> Bool {
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
}
