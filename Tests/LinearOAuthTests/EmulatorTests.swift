import Crypto
import Foundation
import Hummingbird
import LinearEmulator
import LinearOAuth
import Logging
import ServiceLifecycle
import Synchronization
import LinearOAuthTestSupport
import Testing

private let client = LinearEmulator.defaultClient
private let redirectURI = client.redirectURIs[0]
private let clientAuth = ["client_id": client.id, "client_secret": client.secret]

/// The authorize parameters an install sends.
private func authorizeQuery(_ extra: [String: String] = [:], pkce: PKCE? = nil) -> String {
    var fields = ["client_id": client.id, "redirect_uri": redirectURI, "response_type": "code", "scope": "read,write",
                  "state": "state-123", "actor": "app"]
    if let pkce { fields["code_challenge"] = pkce.challenge; fields["code_challenge_method"] = "S256" }
    fields.merge(extra) { $1 }
    return fields.sorted { $0.key < $1.key }.map { "\($0.key)=\(RawHTTP.encode($0.value))" }.joined(separator: "&")
}

/// Approves an install through the consent form (choosing `workspace` when given) and returns the redirect's query.
private func approve(_ url: String, query: String, decision: String = "approve", workspace: String? = nil) async throws -> [String: String] {
    var fields = RawHTTP.query("?" + query)
    fields["decision"] = decision
    if let workspace { fields["organization_id"] = workspace }
    let answer = try await RawHTTP.form(url + "/oauth/authorize", fields)
    #expect(answer.status == 302)
    #expect(answer.header("location")?.hasPrefix(redirectURI) == true)
    return RawHTTP.query(answer.header("location"))
}

@Suite("Linear emulator over HTTP", .capturesLogs)
struct EmulatorTests {
    @Test("authorize validates the request and shows a consent page naming the workspace and scopes")
    func authorizeConsentPage() async throws {
        try await withEmulator { _, url in
            let page = try await RawHTTP.request(.GET, url + "/oauth/authorize?" + authorizeQuery())
            #expect(page.status == 200)
            #expect(page.text.contains("Acme (emulated)") && page.text.contains("<li>write</li>"))
            #expect(page.text.contains("value=\"approve\"") && page.text.contains("value=\"deny\""))

            let unknownClient = try await RawHTTP.request(.GET, url + "/oauth/authorize?" + authorizeQuery(["client_id": "nope"]))
            #expect(unknownClient.status == 400 && unknownClient.text.contains("client_id"))
            let badRedirect = try await RawHTTP.request(.GET, url + "/oauth/authorize?" + authorizeQuery(["redirect_uri": "https://evil.example/cb"]))
            #expect(badRedirect.status == 400 && badRedirect.text.contains("redirect_uri"))

            for (extra, error) in [(["response_type": "token"], "unsupported_response_type"),
                                   (["scope": "read,teleport"], "invalid_scope"),
                                   (["scope": "read,admin"], "invalid_scope"),
                                   (["actor": "robot"], "invalid_request"),
                                   (["code_challenge_method": "S512", "code_challenge": "x"], "invalid_request")] {
                let answer = try await RawHTTP.request(.GET, url + "/oauth/authorize?" + authorizeQuery(extra))
                #expect(answer.status == 302)
                let query = RawHTTP.query(answer.header("location"))
                #expect(query["error"] == error)
                #expect(query["state"] == "state-123")
            }
        }
    }

    @Test("prompt=consent: a user in several workspaces picks one, and the install goes there; without it, the signed-in workspace only")
    func workspacePicker() async throws {
        try await withEmulator { _, url in
            let plain = try await RawHTTP.request(.GET, url + "/oauth/authorize?" + authorizeQuery())
            #expect(plain.status == 200 && plain.text.contains("Acme (emulated)") && !plain.text.contains("Globex"))
            #expect(!plain.text.contains("type=\"radio\""))
            let picker = try await RawHTTP.request(.GET, url + "/oauth/authorize?" + authorizeQuery(["prompt": "consent"]))
            #expect(picker.status == 200 && picker.text.contains("Choose the workspace"))
            for organization in ["org-acme", "org-globex"] {
                #expect(picker.text.contains("type=\"radio\" name=\"organization_id\" value=\"\(organization)\""))
            }

            // Picked: the code installs into Globex; its token's viewer is Globex's app user.
            let picked = try #require(try await approve(url, query: authorizeQuery(["prompt": "consent"]), workspace: "org-globex")["code"])
            let tokens = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(
                ["grant_type": "authorization_code", "code": picked, "redirect_uri": redirectURI]) { $1 })
            let token = try #require(tokens.json["access_token"] as? String)
            let viewer = try await RawHTTP.json(url + "/graphql", ["query": "query { viewer { id } organization { id } }"],
                                                headers: [("Authorization", "Bearer \(token)")])
            #expect(((viewer.json["data"] as? [String: Any])?["organization"] as? [String: Any])?["id"] as? String == "org-globex")

            // Without prompt=consent another workspace cannot be chosen, nor a workspace that does not exist.
            var refused = RawHTTP.query("?" + authorizeQuery())
            refused["decision"] = "approve"
            refused["organization_id"] = "org-globex"
            #expect(try await RawHTTP.form(url + "/oauth/authorize", refused).status == 400)
            var unknown = RawHTTP.query("?" + authorizeQuery(["prompt": "consent"]))
            unknown["decision"] = "approve"
            unknown["organization_id"] = "org-nowhere"
            #expect(try await RawHTTP.form(url + "/oauth/authorize", unknown).status == 400)
        }
        // One workspace: nothing to pick, even with prompt=consent.
        try await withEmulator(organizations: [LinearEmulator.defaultOrganizations[0]]) { _, url in
            let page = try await RawHTTP.request(.GET, url + "/oauth/authorize?" + authorizeQuery(["prompt": "consent"]))
            #expect(page.status == 200 && page.text.contains("Acme (emulated)") && !page.text.contains("type=\"radio\""))
        }
    }

    @Test("Deny redirects with access_denied; Approve with a code and the state; auto-approve at once")
    func approveAndDeny() async throws {
        try await withEmulator { emulator, url in
            let denied = try await approve(url, query: authorizeQuery(), decision: "deny")
            #expect(denied["error"] == "access_denied" && denied["state"] == "state-123" && denied["code"] == nil)
            let approved = try await approve(url, query: authorizeQuery())
            #expect(approved["code"]?.isEmpty == false && approved["state"] == "state-123")

            var settings = await emulator.settings()
            settings.autoApprove = true
            await emulator.configure(settings)
            let auto = try await RawHTTP.request(.GET, url + "/oauth/authorize?" + authorizeQuery())
            #expect(auto.status == 302)
            #expect(RawHTTP.query(auto.header("location"))["code"]?.isEmpty == false)
        }
    }

    @Test("a code is single-use, expires, checks PKCE (S256 and plain) and the redirect URI")
    func authorizationCodeGrant() async throws {
        try await withEmulator { emulator, url in
            let pkce = PKCE()
            let code = try #require(try await approve(url, query: authorizeQuery(pkce: pkce))["code"])
            var fields = clientAuth.merging(["grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI]) { $1 }

            let wrongVerifier = try await RawHTTP.form(url + "/oauth/token", fields.merging(["code_verifier": PKCE().verifier]) { $1 })
            #expect(wrongVerifier.status == 400 && wrongVerifier.json["error"] as? String == "invalid_grant")
            let wrongRedirect = try await RawHTTP.form(url + "/oauth/token", fields.merging(["code_verifier": pkce.verifier, "redirect_uri": "http://localhost:8080/oauth/callback"]) { $1 })
            #expect(wrongRedirect.status == 400 && wrongRedirect.json["error"] as? String == "invalid_request")

            fields["code_verifier"] = pkce.verifier
            let tokens = try await RawHTTP.form(url + "/oauth/token", fields)
            #expect(tokens.status == 200)
            #expect(tokens.json["token_type"] as? String == "Bearer")
            #expect(tokens.json["expires_in"] as? Int == 86_399)
            #expect(tokens.json["scope"] as? String == "read write")
            #expect((tokens.json["access_token"] as? String)?.hasPrefix("lin_oauth_") == true)
            #expect(tokens.json["refresh_token"] is String)
            let reused = try await RawHTTP.form(url + "/oauth/token", fields)
            #expect(reused.status == 400 && reused.json["error"] as? String == "invalid_grant")

            let plainCode = try #require(try await approve(
                url, query: authorizeQuery(["code_challenge": "plain-verifier-0123456789-0123456789-abcdefg", "code_challenge_method": "plain"]))["code"])
            let plain = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging([
                "grant_type": "authorization_code", "code": plainCode, "redirect_uri": redirectURI,
                "code_verifier": "plain-verifier-0123456789-0123456789-abcdefg"]) { $1 })
            #expect(plain.status == 200)

            var settings = await emulator.settings()
            settings.authorizationCodeLifetime = 0
            await emulator.configure(settings)
            let expiring = try #require(try await approve(url, query: authorizeQuery())["code"])
            let expired = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging([
                "grant_type": "authorization_code", "code": expiring, "redirect_uri": redirectURI]) { $1 })
            #expect(expired.status == 400 && expired.json["error"] as? String == "invalid_grant")
        }
    }

    @Test("client authentication by Basic header or by body; a wrong secret is invalid_client; unknown grants are refused")
    func clientAuthentication() async throws {
        try await withEmulator { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            let basic = "Basic " + Data("\(client.id):\(client.secret)".utf8).base64EncodedString()
            let viaHeader = try await RawHTTP.form(
                url + "/oauth/token", ["grant_type": "refresh_token", "refresh_token": grant.refreshToken!],
                headers: [("Authorization", basic)])
            #expect(viaHeader.status == 200)
            let wrong = try await RawHTTP.form(url + "/oauth/token", [
                "grant_type": "refresh_token", "refresh_token": "x", "client_id": client.id, "client_secret": "wrong"])
            #expect(wrong.status == 401 && wrong.json["error"] as? String == "invalid_client")
            let unknown = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "password"]) { $1 })
            #expect(unknown.status == 400 && unknown.json["error"] as? String == "unsupported_grant_type")
            let json = try await RawHTTP.json(url + "/oauth/token", ["grant_type": "refresh_token"])
            #expect(json.status == 400 && json.json["error"] as? String == "invalid_request")
        }
    }

    @Test("refresh rotates both tokens; the old refresh token replays the same answer within the grace window, then is dead")
    func refreshRotationAndGrace() async throws {
        try await withEmulator { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            let old = try #require(grant.refreshToken)
            let first = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "refresh_token", "refresh_token": old]) { $1 })
            #expect(first.status == 200)
            let newRefresh = try #require(first.json["refresh_token"] as? String)
            #expect(newRefresh != old && first.json["access_token"] as? String != grant.accessToken)
            let replay = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "refresh_token", "refresh_token": old]) { $1 })
            #expect(replay.status == 200)
            #expect(replay.json["refresh_token"] as? String == newRefresh)
            #expect(replay.json["access_token"] as? String == first.json["access_token"] as? String)

            let configured = try await RawHTTP.json(url + "/_emulator/config", ["access_token_lifetime": 5, "grace_period": -1])
            #expect(configured.json["access_token_lifetime"] as? Int == 5)
            var settings = await emulator.settings()
            #expect(settings.gracePeriod == -1)  // the window has passed
            await emulator.configure(settings)
            let late = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "refresh_token", "refresh_token": old]) { $1 })
            #expect(late.status == 400 && late.json["error"] as? String == "invalid_grant")
            let current = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "refresh_token", "refresh_token": newRefresh]) { $1 })
            #expect(current.status == 200 && current.json["expires_in"] as? Int == 5)
            settings.accessTokenLifetime = 86_399
            await emulator.configure(settings)

            let log = await emulator.requests().filter { $0.grantType == "refresh_token" }
            #expect(log.map(\.outcome) == ["ok", "replayed", "invalid_grant", "ok"])
            #expect(log[0].refreshTokenFingerprint == tokenFingerprint(old))
            #expect(log.allSatisfy { $0.organizationID == "org-acme" })
        }
    }

    @Test("client_credentials: a 30-day token without refresh token; switchable off; other scopes revoke earlier app tokens")
    func clientCredentials() async throws {
        var off = LinearEmulator.defaultClient
        off.id = "no-cc"
        off.clientCredentialsEnabled = false
        try await withEmulator(clients: [LinearEmulator.defaultClient, off]) { _, url in
            let first = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "client_credentials", "scope": "read,write"]) { $1 })
            #expect(first.status == 200)
            #expect(first.json["expires_in"] as? Int == 2_591_999 && first.json["refresh_token"] == nil)
            let token = try #require(first.json["access_token"] as? String)
            let query = ["query": "{ viewer { id } }"]
            #expect(try await RawHTTP.json(url + "/graphql", query, headers: [("Authorization", "Bearer \(token)")]).status == 200)
            _ = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "client_credentials", "scope": "read"]) { $1 })
            #expect(try await RawHTTP.json(url + "/graphql", query, headers: [("Authorization", "Bearer \(token)")]).status == 401)

            // Rotating the client secret invalidates the app tokens.
            let current = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "client_credentials", "scope": "read"]) { $1 })
            let appToken = try #require(current.json["access_token"] as? String)
            var rotated = client
            rotated.secret = "rotated-secret"
            #expect(try await RawHTTP.json(url + "/_emulator/clients", [
                "id": rotated.id, "secret": rotated.secret, "name": rotated.name, "redirect_uris": rotated.redirectURIs,
                "client_credentials_enabled": true, "legacy_scope_array": false]).status == 204)
            #expect(try await RawHTTP.json(url + "/graphql", query, headers: [("Authorization", "Bearer \(appToken)")]).status == 401)

            let disabled = try await RawHTTP.form(url + "/oauth/token", [
                "grant_type": "client_credentials", "client_id": "no-cc", "client_secret": client.secret])
            #expect(disabled.status == 400)
            #expect(disabled.json["error"] as? String == "Error")
            #expect(disabled.json["error_description"] as? String == "Client does not support the client_credentials grant type")
        }
    }

    @Test("revoke: token + hint ends the whole grant, whichever token; the legacy Bearer and field forms; mixing them, or client credentials, is a 400")
    func revoke() async throws {
        try await withEmulator { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            let refresh = try #require(grant.refreshToken)
            // Mixed forms and client authentication are flagged, and revoke nothing.
            #expect(try await RawHTTP.form(url + "/oauth/revoke", ["token": refresh, "access_token": grant.accessToken]).status == 400)
            #expect(try await RawHTTP.form(
                url + "/oauth/revoke", ["token": grant.accessToken], headers: [("Authorization", "Basic ZW11bGF0b3I6c2VjcmV0")]).status == 400)
            #expect(try await RawHTTP.form(
                url + "/oauth/revoke", ["token": grant.accessToken, "client_id": "emulator-client", "client_secret": "emulator-secret"]).status == 400)
            #expect(await emulator.check(refreshToken: refresh) == .current)
            // The access token's revoke ends the grant: the refresh token is dead too (400), and refreshing with it is invalid_grant.
            #expect(try await RawHTTP.form(url + "/oauth/revoke", ["token": grant.accessToken, "token_type_hint": "access_token"]).status == 200)
            #expect(await emulator.check(refreshToken: refresh) == .revoked)
            #expect(try await RawHTTP.form(url + "/oauth/revoke", ["token": refresh, "token_type_hint": "refresh_token"]).status == 400)
            let afterRevoke = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "refresh_token", "refresh_token": refresh]) { $1 })
            #expect(afterRevoke.status == 400 && afterRevoke.json["error"] as? String == "invalid_grant")
            // And the refresh token's revoke ends the access token's grant.
            let other = try await emulator.mintGrant(organizationID: "org-acme")
            #expect(try await RawHTTP.form(url + "/oauth/revoke", ["token": other.refreshToken!]).status == 200)
            #expect(await emulator.check(accessToken: other.accessToken) == .revoked)

            let second = try await emulator.mintGrant(organizationID: "org-acme")
            #expect(try await RawHTTP.form(url + "/oauth/revoke", [:], headers: [("Authorization", "Bearer \(second.accessToken)")]).status == 200)
            #expect(try await RawHTTP.form(url + "/oauth/revoke", [:], headers: [("Authorization", "Bearer \(second.accessToken)")]).status == 401)
            let third = try await emulator.mintGrant(organizationID: "org-acme")
            #expect(try await RawHTTP.form(url + "/oauth/revoke", ["refresh_token": third.refreshToken!]).status == 200)
            #expect(try await RawHTTP.form(url + "/oauth/revoke", [:]).status == 400)
        }
    }

    @Test("GraphQL: viewer and organization per workspace; 401 AUTHENTICATION_ERROR for missing, expired or revoked tokens")
    func graphQL() async throws {
        try await withEmulator { emulator, url in
            let acme = try await emulator.mintGrant(organizationID: "org-acme")
            let globex = try await emulator.mintGrant(organizationID: "org-globex")
            let query = ["query": "query { viewer { id name } organization { id name urlKey } }"]
            let a = try await RawHTTP.json(url + "/graphql", query, headers: [("Authorization", "Bearer \(acme.accessToken)")])
            let data = try #require(a.json["data"] as? [String: Any])
            #expect((data["viewer"] as? [String: Any])?["id"] as? String == "app-user-acme")
            #expect((data["organization"] as? [String: Any])?["urlKey"] as? String == "acme")
            let g = try await RawHTTP.json(url + "/graphql", query, headers: [("Authorization", "Bearer \(globex.accessToken)")])
            #expect(((g.json["data"] as? [String: Any])?["organization"] as? [String: Any])?["id"] as? String == "org-globex")

            func expectUnauthenticated(_ answer: HTTPAnswer) {
                #expect(answer.status == 401)
                let extensions = (answer.json["errors"] as? [[String: Any]])?.first?["extensions"] as? [String: Any]
                #expect(extensions?["code"] as? String == "AUTHENTICATION_ERROR")
            }
            expectUnauthenticated(try await RawHTTP.json(url + "/graphql", query))
            #expect(await emulator.expireAccessTokens(organizationID: "org-acme") == 1)
            expectUnauthenticated(try await RawHTTP.json(url + "/graphql", query, headers: [("Authorization", "Bearer \(acme.accessToken)")]))
            _ = try await RawHTTP.form(url + "/oauth/revoke", ["token": globex.refreshToken!])
            expectUnauthenticated(try await RawHTTP.json(url + "/graphql", query, headers: [("Authorization", "Bearer \(globex.accessToken)")]))
        }
    }

    @Test("GraphQL rate limit: headers on every answer, RATELIMITED past the limit")
    func rateLimit() async throws {
        var settings = EmulatorSettings()
        settings.rateLimitRequests = 2
        settings.rateLimitStatus = 429
        try await withEmulator(settings: settings) { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            let headers = [("Authorization", "Bearer \(grant.accessToken)")]
            let first = try await RawHTTP.json(url + "/graphql", ["query": "{ viewer { id } }"], headers: headers)
            #expect(first.status == 200)
            #expect(first.header("X-RateLimit-Requests-Limit") == "2" && first.header("X-RateLimit-Requests-Remaining") == "1")
            let reset = try #require(first.header("X-RateLimit-Requests-Reset").flatMap(Double.init))
            #expect(reset > Date().timeIntervalSince1970 * 1000)
            _ = try await RawHTTP.json(url + "/graphql", ["query": "{ viewer { id } }"], headers: headers)
            let limited = try await RawHTTP.json(url + "/graphql", ["query": "{ viewer { id } }"], headers: headers)
            #expect(limited.status == 429)
            #expect(((limited.json["errors"] as? [[String: Any]])?.first?["extensions"] as? [String: Any])?["code"] as? String == "RATELIMITED")
            #expect(limited.header("X-RateLimit-Requests-Remaining") == "0")
            // Retry-After until the requests budget resets; the other budgets have some left.
            let retryAfter = try #require(limited.header("Retry-After").flatMap(Int.init))
            #expect(retryAfter > 3_500 && retryAfter <= 3_600)
            #expect(limited.header("X-RateLimit-Complexity-Remaining").flatMap(Int.init).map { $0 > 0 } == true)
            #expect(limited.header("X-RateLimit-Endpoint-Requests-Remaining").flatMap(Int.init).map { $0 > 0 } == true)
            #expect(first.header("Retry-After") == nil)
        }
    }

    @Test("faults: the next N token calls fail with the chosen status and Retry-After; latency delays answers")
    func injectedFailures() async throws {
        try await withEmulator { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            let refresh = clientAuth.merging(["grant_type": "refresh_token", "refresh_token": grant.refreshToken!]) { $1 }
            let armed = try await RawHTTP.json(url + "/_emulator/faults", ["fail_next": ["count": 2, "status": 429, "retry_after": 7]])
            #expect(armed.status == 204)
            for _ in 0..<2 {
                let failed = try await RawHTTP.form(url + "/oauth/token", refresh)
                #expect(failed.status == 429 && failed.header("Retry-After") == "7")
            }
            #expect(try await RawHTTP.form(url + "/oauth/token", refresh).status == 200)
            #expect(await emulator.requests().map(\.outcome) == ["injected_429", "injected_429", "ok"])

            _ = try await RawHTTP.json(url + "/_emulator/config", ["latency_ms": 300])
            let start = ContinuousClock.now
            _ = try await RawHTTP.json(url + "/graphql", ["query": "{ viewer { id } }"])
            #expect(ContinuousClock.now - start >= .milliseconds(300))
        }
    }

    @Test("a dropped refresh response: the connection closes, the rotation happened, and the old token replays it")
    func droppedResponse() async throws {
        try await withEmulator { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            let refresh = clientAuth.merging(["grant_type": "refresh_token", "refresh_token": grant.refreshToken!]) { $1 }
            #expect(try await RawHTTP.json(url + "/_emulator/faults", ["drop_next_refresh": true]).status == 204)
            await #expect(throws: (any Error).self) { _ = try await RawHTTP.form(url + "/oauth/token", refresh) }
            let recovered = try await RawHTTP.form(url + "/oauth/token", refresh)
            #expect(recovered.status == 200)
            #expect(await emulator.requests().map(\.outcome) == ["dropped", "replayed"])
        }
    }

    @Test("a held refresh response: the rotation happens at once, the answer comes only when released")
    func heldResponse() async throws {
        try await withEmulator { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            let refresh = clientAuth.merging(["grant_type": "refresh_token", "refresh_token": grant.refreshToken!]) { $1 }
            #expect(try await RawHTTP.json(url + "/_emulator/faults", ["hold_next_refresh": true]).status == 204)
            let answer = Task { try await RawHTTP.form(url + "/oauth/token", refresh) }
            try await waitUntil("the refresh to be held") { await emulator.responsesHeld() == 1 }
            // Carried out already: the old refresh token now only replays.
            #expect(await emulator.check(refreshToken: grant.refreshToken!) == .replayable)
            #expect(try await RawHTTP.json(url + "/_emulator/faults", ["release_held": true]).status == 204)
            let released = try await answer.value
            #expect(released.status == 200 && released.json["refresh_token"] as? String != grant.refreshToken)
            #expect(await emulator.check(accessToken: try #require(released.json["access_token"] as? String)) == .live)
            #expect(await emulator.check(accessToken: "never-issued") == .unknown)
        }
    }

    @Test("an uninstall from Linear's side revokes the grant and sends the signed OAuthApp webhook")
    func uninstallWebhook() async throws {
        let received = Mutex<[(headers: [String: String], body: Data)]>([])
        let router = Router()
        router.post("/webhooks/linear") { request, _ -> HTTPResponse.Status in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 16)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            received.withLock { $0.append((headers, Data(body.readableBytesView))) }
            return .ok
        }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let receiver = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0); continuation.finish() })
        // Stopped gracefully: cancelling a server drops connections it accepted but has not handled, which SwiftNIO traps.
        let group = ServiceGroup(configuration: .init(services: [receiver], logger: Logger(label: "webhook-receiver")))
        let task = Task { try await group.run() }
        defer { Task { await group.triggerGracefulShutdown(); _ = try? await task.value } }
        var iterator = stream.makeAsyncIterator()
        let port = try #require(await iterator.next())
        var webhookClient = LinearEmulator.defaultClient
        webhookClient.webhookURL = "http://127.0.0.1:\(port)/webhooks/linear"
        let secret = TestSecrets.record("whsec-test-\(UUID().uuidString)", kind: "webhook-secret")
        webhookClient.webhookSecret = secret
        try await withEmulator(clients: [webhookClient]) { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-globex")
            let answer = try await RawHTTP.json(url + "/_emulator/revoke", ["organization_id": "org-globex"])
            #expect(answer.json["revoked_grants"] as? Int == 1 && answer.json["webhook_status"] as? Int == 200)
            let delivery = try #require(received.withLock { $0.first })
            let expected = HMAC<SHA256>.authenticationCode(for: delivery.body, using: SymmetricKey(data: Data(secret.utf8)))
                .map { String(format: "%02x", $0) }.joined()
            #expect(delivery.headers["linear-signature"] == expected)
            let payload = try #require(try JSONSerialization.jsonObject(with: delivery.body) as? [String: Any])
            #expect(payload["type"] as? String == "OAuthApp" && payload["action"] as? String == "revoked")
            #expect(payload["organizationId"] as? String == "org-globex" && payload["oauthClientId"] as? String == client.id)
            let timestamp = try #require((payload["webhookTimestamp"] as? NSNumber)?.doubleValue)
            #expect(abs(timestamp / 1000 - Date().timeIntervalSince1970) < 60)
            let refresh = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "refresh_token", "refresh_token": grant.refreshToken!]) { $1 })
            #expect(refresh.json["error"] as? String == "invalid_grant")
        }
    }

    @Test("several clients and workspaces at once: tokens are bound to their client and workspace; the log has no token")
    func severalClientsAndOrganizations() async throws {
        let other = EmulatedClient(id: "other-app", secret: "other-secret", redirectURIs: ["http://127.0.0.1:9/cb"])
        let extra = EmulatedOrganization(id: "org-initech", name: "Initech", urlKey: "initech", appUserID: "app-user-initech")
        try await withEmulator(clients: [LinearEmulator.defaultClient, other]) { emulator, url in
            #expect(try await RawHTTP.json(url + "/_emulator/organizations", [
                "id": extra.id, "name": extra.name, "url_key": extra.urlKey, "app_user_id": extra.appUserID]).status == 204)
            let minted = try await RawHTTP.json(url + "/_emulator/grants", ["organization_id": "org-initech", "client_id": "other-app"])
            let refresh = try #require(minted.json["refresh_token"] as? String)
            // The default client cannot use the other client's refresh token.
            let stolen = try await RawHTTP.form(url + "/oauth/token", clientAuth.merging(["grant_type": "refresh_token", "refresh_token": refresh]) { $1 })
            #expect(stolen.json["error"] as? String == "invalid_grant")
            let own = try await RawHTTP.form(url + "/oauth/token", [
                "grant_type": "refresh_token", "refresh_token": refresh, "client_id": "other-app", "client_secret": "other-secret"])
            let access = try #require(own.json["access_token"] as? String)
            let viewer = try await RawHTTP.json(url + "/graphql", ["query": "{ viewer { id } }"], headers: [("Authorization", "Bearer \(access)")])
            #expect(((viewer.json["data"] as? [String: Any])?["viewer"] as? [String: Any])?["id"] as? String == "app-user-initech")
            let log = try await RawHTTP.request(.GET, url + "/_emulator/requests")
            #expect(!log.text.contains(refresh) && !log.text.contains(access))
            #expect(log.text.contains(tokenFingerprint(refresh)))
        }
    }
}

@Suite("linear-oauth emulator command", .capturesLogs)
struct EmulatorCommandTests {
    @Test("starts on a free port, prints its URL, and answers as Linear")
    func command() async throws {
        let child = try ChildProcess(
            BuiltProducts.url("linear-oauth"), ["emulator", "--port", "0", "--client-id", "cli-app", "--client-secret", "cli-secret"],
            environment: childEnvironment([:]))
        defer { child.kill() }
        let line = try await child.waitForLine(startingWith: "Linear emulator listening on ")
        let url = try #require(line.split(separator: " ").dropFirst(4).first.map(String.init))
        #expect(url.hasPrefix("http://127.0.0.1:"))
        let minted = try await RawHTTP.json(url + "/_emulator/grants", ["organization_id": "org-acme", "client_id": "cli-app"])
        let refresh = try #require(minted.json["refresh_token"] as? String)
        let answer = try await RawHTTP.form(url + "/oauth/token", [
            "grant_type": "refresh_token", "refresh_token": refresh, "client_id": "cli-app", "client_secret": "cli-secret"])
        #expect(answer.status == 200 && answer.json["refresh_token"] as? String != refresh)
    }

    /// The server runs in a service group stopped by a graceful shutdown (never by cancelling it: see
    /// `LinearEmulator.start`); the command hands SIGTERM and SIGINT to that shutdown.
    @Test("SIGTERM and SIGINT stop it gracefully: exit 0", arguments: [SIGTERM, SIGINT])
    func stopsOnSignal(signal: Int32) async throws {
        let child = try ChildProcess(BuiltProducts.url("linear-oauth"), ["emulator", "--port", "0"], environment: childEnvironment([:]))
        defer { child.kill() }
        let line = try await child.waitForLine(startingWith: "Linear emulator listening on ")
        let url = try #require(line.split(separator: " ").dropFirst(4).first.map(String.init))
        let grant = ["organization_id": "org-acme", "client_id": LinearEmulator.defaultClient.id]
        #expect(try await RawHTTP.json(url + "/_emulator/grants", grant).status == 200)
        #expect(Foundation.kill(child.pid, signal) == 0)
        #expect(try await child.waitForExit(timeout: .seconds(30)) == 0, "a signal's default action would exit 128 + \(signal)")
    }
}
