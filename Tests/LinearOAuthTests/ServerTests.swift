import Crypto
import Foundation
import Hummingbird
import LinearEmulator
import LinearOAuth
import LinearOAuthServer
import LinearOAuthSQLite
import LinearOAuthTestSupport
import Logging
import MetricsTestKit
import NIOHTTP1
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

private let apiKey = TestSecrets.record("key-\(UUID().uuidString)", kind: "api-key")
private let webhookSecret = TestSecrets.record("whsec-\(UUID().uuidString)", kind: "webhook-secret")

/// Runs the service's routes on a free port with a manager over the fixture's store, whose
/// redirect URI is this server's callback (registered with the emulator).
func withServer(
    _ fixture: ManagerFixture, prometheus: PrometheusCollectorRegistry? = nil, redirectURI: String? = nil,
    limits: LinearOAuthConnectionLimits = .init(), store: (any TokenStore)? = nil, stopsWhenDone: Bool = true,
    configure: (inout LinearOAuthServerConfiguration) -> Void = { _ in },
    _ body: (String, TokenManager) async throws -> Void
) async throws {
    let port = try freePort()
    let callback = "http://127.0.0.1:\(port)/oauth/callback"
    var client = LinearEmulator.defaultClient
    client.redirectURIs.append(callback)
    await fixture.emulator.add(client)
    var linear = fixture.linear.configuration
    // Instances behind one load balancer share one public redirect URI.
    linear.redirectURI = redirectURI ?? callback
    var managerConfiguration = TokenManager.Configuration()
    managerConfiguration.initialBackoff = .milliseconds(20)
    managerConfiguration.metricsFactory = prometheus.map { PrometheusMetricsFactory(registry: $0) }
    // As serve does: the console's recent events include the manager's.
    let events = ConsoleEventLog()
    managerConfiguration.onEvent = { events.record($0) }
    let vault = store.map { TokenVault(store: $0, keyRing: fixture.vault.keyRing) } ?? fixture.vault
    let manager = TokenManager(vault: vault, linear: LinearClient(configuration: linear), configuration: managerConfiguration)
    var configuration = LinearOAuthServerConfiguration(apiKeys: [Secret("other-key"), Secret(apiKey)], webhookSecret: Secret(webhookSecret))
    configuration.installURL = "http://127.0.0.1:8080/oauth/authorize"
    configuration.prometheus = prometheus
    configuration.events = events
    configure(&configuration)
    let (stream, continuation) = AsyncStream<Int>.makeStream()
    let app = Application(
        router: LinearOAuthServer(manager: manager, configuration: configuration).router(),
        server: LinearOAuthServer.httpServer(limits),
        configuration: .init(address: .hostname("127.0.0.1", port: port)),
        onServerRunning: { continuation.yield($0.localAddress?.port ?? 0); continuation.finish() })
    // Stopped as `serve` stops: a graceful shutdown, which closes the connections it holds (cancelling
    // the server instead drops connections it has accepted but not yet handled, which NIO traps).
    let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "linear-oauth.test.server")))
    let task = Task { try await group.run() }
    do {
        var iterator = stream.makeAsyncIterator()
        let bound = try #require(await iterator.next())
        #expect(bound == port)
        try await body("http://127.0.0.1:\(port)", manager)
    } catch {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        throw error
    }
    // A server that was just flooded with connections is left running until the test process ends:
    // stopped while connections it accepted are still on their way to it, SwiftNIO traps
    // ("Deinited NIOAsyncWriter without calling finish()"), which was seen here under load.
    guard stopsWhenDone else { return }
    await group.triggerGracefulShutdown()
    _ = try? await task.value
}

private let auth = [("Authorization", "Bearer \(apiKey)")]

/// Starts `linear-oauth serve --port 0 ARGUMENTS` and returns it with the URL it listens on.
private func startServe(_ arguments: [String] = [], environment: [String: String]) async throws -> (ChildProcess, String) {
    let child = try ChildProcess(BuiltProducts.url("linear-oauth"), ["serve", "--port", "0"] + arguments, environment: environment)
    let line = try await child.waitForLine(startingWith: "linear-oauth listening on ")
    return (child, String(line.dropFirst("linear-oauth listening on ".count)))
}

private func signedWebhook(
    _ url: String, _ payload: [String: Any], secret: String = webhookSecret, signature: String? = nil, extraHeaders: [(String, String)] = []
) async throws -> HTTPAnswer {
    let body = try JSONSerialization.data(withJSONObject: payload)
    let computed = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        .map { String(format: "%02x", $0) }.joined()
    return try await RawHTTP.request(
        .POST, url + "/webhooks/linear",
        headers: [("Content-Type", "application/json"), ("linear-signature", signature ?? computed)] + extraHeaders, body: body)
}

private func revokedPayload(_ organizationID: String, at date: Date = Date()) -> [String: Any] {
    ["type": "OAuthApp", "action": "revoked", "organizationId": organizationID, "oauthClientId": LinearEmulator.defaultClient.id,
     "createdAt": RFC3339.format(date), "webhookId": UUID().uuidString, "webhookTimestamp": Int64(date.timeIntervalSince1970 * 1000)]
}

@Suite("The service over HTTP", .capturesLogs)
struct ServerTests {
    @Test("health and readiness")
    func health() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await withServer(fixture) { url, _ async throws in
                #expect(try await RawHTTP.request(.GET, url + "/healthz").json["status"] as? String == "ok")
                #expect(try await RawHTTP.request(.GET, url + "/readyz").status == 200)
            }
        }
    }

    @Test("GET /metrics: refreshes by outcome, refresh latency, cache hits and misses, installations by status, webhooks, HTTP requests")
    func metrics() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install("org-acme")
            let registry = PrometheusCollectorRegistry()
            try await withServer(fixture, prometheus: registry) { url, _ async throws in
                for _ in 0..<2 { _ = try await RawHTTP.request(.GET, url + "/v1/installations/org-acme/access-token", headers: auth) }
                _ = try await RawHTTP.request(.GET, url + "/v1/installations/org-none/access-token", headers: auth)
                _ = try await signedWebhook(url, revokedPayload("org-x"), secret: "wrong")
                // A scrape counts installations only if the database answers within 1 s: on a busy machine, scrape again.
                var text = try await RawHTTP.request(.GET, url + "/metrics").text
                let deadline = ContinuousClock.now + .seconds(60)
                while !text.contains("linear_oauth_installations{"), ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                    text = try await RawHTTP.request(.GET, url + "/metrics").text
                }
                for line in [
                    #"linear_oauth_refreshes_total{outcome="success"} 1"#,
                    #"linear_oauth_token_cache_hits_total 1"#,
                    #"linear_oauth_token_cache_misses_total 2"#,
                    #"linear_oauth_installations{status="active"} 1"#,
                    #"linear_oauth_installations{status="reauthorization_required"} 0"#,
                    #"linear_oauth_webhooks_total{outcome="refused_401"} 1"#,
                    #"linear_oauth_http_requests_total{route="/v1/installations/{organization}/access-token",method="GET",status="200"} 2"#,
                    #"linear_oauth_http_requests_total{route="/v1/installations/{organization}/access-token",method="GET",status="404"} 1"#,
                ] {
                    #expect(text.contains(line), "\(line)")
                }
                #expect(text.contains("linear_oauth_refresh_duration_seconds_bucket"))
                #expect(!text.contains("lin_oauth_") && !text.contains(apiKey))
            }
        }
    }

    @Test("the token API needs one of the API keys")
    func apiKeys() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await withServer(fixture) { url, _ async throws in
                let missing = try await RawHTTP.request(.GET, url + "/v1/installations")
                #expect(missing.status == 401 && missing.json["error"] as? String == "unauthorized")
                let wrong = try await RawHTTP.request(.GET, url + "/v1/installations", headers: [("Authorization", "Bearer nope")])
                #expect(wrong.status == 401 && !wrong.text.contains(apiKey))
                #expect(try await RawHTTP.request(.GET, url + "/v1/installations", headers: auth).status == 200)
                #expect(try await RawHTTP.request(.GET, url + "/v1/installations", headers: [("Authorization", "Bearer other-key")]).status == 200)
            }
        }
    }

    @Test("the token API: list, show, access-token (refreshed when due), refresh, revoke; 404, 409, 503", arguments: StoreKind.allCases)
    func tokenAPI(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install("org-acme")
            try await withServer(fixture) { url, _ async throws in
                let list = try await RawHTTP.request(.GET, url + "/v1/installations", headers: auth)
                let rows = try #require(list.json["installations"] as? [[String: Any]])
                #expect(rows.map { $0["organization_id"] as? String } == ["org-acme"])
                #expect(list.json["next"] == nil)
                #expect(!list.text.contains("lin_oauth_") && !list.text.contains("lin_refresh_"))
                let show = try await RawHTTP.request(.GET, url + "/v1/installations/org-acme", headers: auth)
                #expect(show.json["status"] as? String == "active" && show.json["key_id"] as? String == "k1")

                let token = try await RawHTTP.request(.GET, url + "/v1/installations/org-acme/access-token", headers: auth)
                #expect(token.status == 200)
                let stored = try #require(try await fixture.vault.load(organizationID: "org-acme"))
                #expect((token.json["access_token"] as? String).map(Secret.init) == stored.accessToken)
                #expect(token.json["organization_id"] as? String == "org-acme")
                #expect(token.json["app_user_id"] as? String == "app-user-org-acme")
                #expect((token.json["expires_at"] as? String).flatMap(RFC3339.parse).map { $0 > Date() } == true)
                #expect(token.header("cache-control") == "no-store")

                let refreshed = try await RawHTTP.request(.POST, url + "/v1/installations/org-acme/refresh", headers: auth)
                #expect(refreshed.status == 200 && (refreshed.json["access_token"] as? String).map(Secret.init) != stored.accessToken)

                let missing = try await RawHTTP.request(.GET, url + "/v1/installations/org-none/access-token", headers: auth)
                #expect(missing.status == 404 && missing.json["error"] as? String == "not_installed")
                #expect(try await RawHTTP.request(.GET, url + "/v1/installations/org-none", headers: auth).status == 404)

                // 503 while Linear fails and the token has expired.
                try await fixture.install("org-globex")
                await fixture.emulator.failNextTokenCalls(10, status: 503, retryAfter: 9)
                let unavailable = try await RawHTTP.request(.GET, url + "/v1/installations/org-globex/access-token", headers: auth)
                #expect(unavailable.status == 503 && unavailable.json["error"] as? String == "unavailable")
                #expect(unavailable.header("retry-after") != nil)
                await fixture.emulator.failNextTokenCalls(0, status: 503)

                // 409 once Linear refuses the refresh token.
                let dead = try await fixture.install("org-globex")
                _ = try await fixture.linear.revoke(Secret(dead.refreshToken!), hint: .refreshToken)
                let conflict = try await RawHTTP.request(.GET, url + "/v1/installations/org-globex/access-token", headers: auth)
                #expect(conflict.status == 409 && conflict.json["error"] as? String == "reauthorization_required")
                #expect(conflict.json["install_url"] as? String == "http://127.0.0.1:8080/oauth/authorize")

                let revoked = try await RawHTTP.request(.DELETE, url + "/v1/installations/org-acme", headers: auth)
                #expect(revoked.status == 204)
                #expect(try await RawHTTP.request(.DELETE, url + "/v1/installations/org-acme", headers: auth).status == 404)
                #expect(try await fixture.test.store.load(organizationID: "org-acme") == nil)
            }
        }
    }

    @Test("Linear's uninstall webhook, signed by the emulator, deletes the tokens and evicts the cache", arguments: StoreKind.allCases)
    func uninstallWebhook(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install("org-acme", expiresIn: 3_600)
            try await withServer(fixture) { url, manager async throws in
                _ = try await manager.accessToken(for: "org-acme")   // cached
                var client = LinearEmulator.defaultClient
                client.webhookURL = url + "/webhooks/linear"
                client.webhookSecret = webhookSecret
                await fixture.emulator.add(client)
                #expect(try await fixture.emulator.uninstall(organizationID: "org-acme") == 200)
                #expect(try await fixture.test.store.load(organizationID: "org-acme") == nil)
                await #expect(throws: TokenManagerError.notInstalled(organizationID: "org-acme")) {
                    _ = try await manager.accessToken(for: "org-acme")
                }
            }
        }
    }

    @Test("webhooks: a bad or missing signature, a stale or missing timestamp, an oversized body change nothing; other types are ignored")
    func webhookRefusals() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install("org-acme", expiresIn: 3_600)
            try await withServer(fixture) { url, _ async throws in
                let wrongSecret = try await signedWebhook(url, revokedPayload("org-acme"), secret: "not-the-secret")
                #expect(wrongSecret.status == 401 && wrongSecret.json["error"] as? String == "bad_signature")
                let garbage = try await signedWebhook(url, revokedPayload("org-acme"), signature: "zz")
                #expect(garbage.status == 401)
                let unsigned = try await RawHTTP.request(
                    .POST, url + "/webhooks/linear", headers: [("Content-Type", "application/json")],
                    body: try JSONSerialization.data(withJSONObject: revokedPayload("org-acme")))
                #expect(unsigned.status == 401)
                // An uninstall more than a day late, and any other type more than a minute late, are refused.
                let stale = try await signedWebhook(url, revokedPayload("org-acme", at: Date().addingTimeInterval(-25 * 3_600)))
                #expect(stale.status == 400 && stale.json["error"] as? String == "stale_timestamp")
                var lateOther = revokedPayload("org-acme", at: Date().addingTimeInterval(-120))
                lateOther["type"] = "PermissionChange"
                #expect(try await signedWebhook(url, lateOther).json["error"] as? String == "stale_timestamp")
                // Freshness only from the signed body: no webhookTimestamp or createdAt, a fresh linear-timestamp header: refused.
                var noTimestamp = revokedPayload("org-acme")
                noTimestamp.removeValue(forKey: "webhookTimestamp")
                noTimestamp.removeValue(forKey: "createdAt")
                let headerOnly = try await signedWebhook(
                    url, noTimestamp, extraHeaders: [("linear-timestamp", String(Int64(Date().timeIntervalSince1970 * 1000)))])
                #expect(headerOnly.status == 400 && headerOnly.json["error"] as? String == "missing_timestamp")
                // Without webhookTimestamp, createdAt decides: a day and more old is stale; unreadable is missing.
                var createdOnly = revokedPayload("org-acme", at: Date().addingTimeInterval(-25 * 3_600))
                createdOnly.removeValue(forKey: "webhookTimestamp")
                #expect(try await signedWebhook(url, createdOnly).json["error"] as? String == "stale_timestamp")
                createdOnly["createdAt"] = "yesterday"
                #expect(try await signedWebhook(url, createdOnly).json["error"] as? String == "missing_timestamp")
                var huge = revokedPayload("org-acme")
                huge["padding"] = String(repeating: "x", count: 100_000)
                #expect(try await signedWebhook(url, huge).status == 400)
                #expect(try await fixture.test.store.load(organizationID: "org-acme") != nil)

                var other = revokedPayload("org-acme")
                other["type"] = "PermissionChange"
                other["action"] = "teamAccessChanged"
                let ignored = try await signedWebhook(url, other)
                #expect(ignored.status == 200 && ignored.json["status"] as? String == "ignored")
                #expect(try await fixture.test.store.load(organizationID: "org-acme") != nil)

                var createdAtOnly = revokedPayload("org-acme")   // createdAt alone is enough
                createdAtOnly.removeValue(forKey: "webhookTimestamp")
                let accepted = try await signedWebhook(url, createdAtOnly)
                #expect(accepted.status == 200 && accepted.json["status"] as? String == "deleted")
                #expect(try await fixture.test.store.load(organizationID: "org-acme") == nil)
            }
        }
    }
}

extension ServerTests {
    @Test("an uninstall delivery retried two hours late deletes the install it is about; the same delivery after a re-install deletes nothing",
          arguments: StoreKind.allCases)
    func lateUninstallDelivery(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install("org-acme", expiresIn: 3_600)
            // Installed three hours ago; Linear signed the uninstall two hours ago, and the first deliveries failed.
            var installed = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            installed.installedAt = Date().addingTimeInterval(-3 * 3_600)
            try await fixture.vault.save(installed)
            let delivery = revokedPayload("org-acme", at: Date().addingTimeInterval(-2 * 3_600))
            try await withServer(fixture) { url, _ async throws in
                let retried = try await signedWebhook(url, delivery)
                #expect(retried.status == 200 && retried.json["status"] as? String == "deleted", "\(retried.text)")
                #expect(try await fixture.test.store.load(organizationID: "org-acme") == nil)
                // Installed again since: the same (late) delivery is about the earlier grant.
                try await fixture.install("org-acme", expiresIn: 3_600)
                let again = try await signedWebhook(url, delivery)
                #expect(again.status == 200 && again.json["status"] as? String == "newer_install_kept")
                #expect(try await fixture.test.store.load(organizationID: "org-acme") != nil)
            }
        }
    }

    @Test("another OAuth client's grant: 503 client_mismatch on refresh and revoke, the installation untouched; an install records its client")
    func clientMismatch() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install("org-acme", expiresIn: 3_600)
            var other = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            other.clientID = "another-app"
            try await fixture.vault.save(other)
            let before = try #require(try await fixture.test.store.load(organizationID: "org-acme"))
            try await withServer(fixture) { url, _ async throws in
                for (method, path) in [(NIOHTTP1.HTTPMethod.POST, "/refresh"), (.DELETE, "")] {
                    let answer = try await RawHTTP.request(method, url + "/v1/installations/org-acme" + path, headers: auth)
                    #expect(answer.status == 503 && answer.json["error"] as? String == "client_mismatch", "\(method) \(answer.text)")
                    #expect((answer.json["message"] as? String)?.contains("another-app") == true)
                    #expect(answer.header("Retry-After") != nil)
                }
            }
            #expect(try await fixture.test.store.load(organizationID: "org-acme") == before)
        }
    }
}

extension ServerTests {
    @Test("reinstate over HTTP; too many refusals open the breaker: /readyz degraded, tokens kept, until POST /v1/breaker/reset")
    func reinstateAndBreaker() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            let dead = (1...4).map { "org-dead-\($0)" }
            for organization in dead + ["org-back"] {
                await fixture.emulator.add(EmulatedOrganization(id: organization, name: organization, urlKey: organization, appUserID: "u"))
            }
            try await installMinted(dead, emulator: fixture.emulator, vault: fixture.vault, expiresIn: -60)
            try await installMinted(["org-back"], emulator: fixture.emulator, vault: fixture.vault, expiresIn: 3_600)
            for organization in dead { _ = try await fixture.emulator.uninstall(organizationID: organization) }
            var marked = try #require(try await fixture.vault.load(organizationID: "org-back"))
            marked.status = .reauthorizationRequired
            try await fixture.vault.save(marked)
            try await withServer(fixture) { url, _ async throws in
                let reinstated = try await RawHTTP.request(.POST, url + "/v1/installations/org-back/reinstate", headers: auth)
                #expect(reinstated.status == 200 && reinstated.json["outcome"] as? String == "reinstated", "\(reinstated.text)")
                #expect((reinstated.json["expires_at"] as? String).flatMap(RFC3339.parse).map { $0 > Date() } == true)
                let again = try await RawHTTP.request(.POST, url + "/v1/installations/org-back/reinstate", headers: auth)
                #expect(again.status == 200 && again.json["outcome"] as? String == "already_active")
                #expect(try await RawHTTP.request(.POST, url + "/v1/installations/org-none/reinstate", headers: auth).status == 404)
                #expect(try await RawHTTP.request(.POST, url + "/v1/installations/org-back/reinstate").status == 401)

                // Four refusals in a row: three marked (409), the fourth kept as a suspected configuration fault (503).
                var statuses: [Int] = []
                for organization in dead {
                    statuses.append(try await RawHTTP.request(.GET, url + "/v1/installations/\(organization)/access-token", headers: auth).status)
                }
                #expect(statuses == [409, 409, 409, 503])
                #expect(try await fixture.vault.load(organizationID: dead[3])?.status == .active)
                let degraded = try await RawHTTP.request(.GET, url + "/readyz")
                #expect(degraded.status == 200 && degraded.json["status"] as? String == "degraded")
                #expect((degraded.json["reason"] as? String)?.contains("suspected configuration fault") == true)
                let still = try await RawHTTP.request(.POST, url + "/v1/installations/\(dead[0])/reinstate", headers: auth)
                #expect(still.status == 409 && still.json["error"] as? String == "reauthorization_required")
                let reset = try await RawHTTP.request(.POST, url + "/v1/breaker/reset", headers: auth)
                #expect(reset.status == 200 && reset.json["status"] as? String == "closed")
                #expect(try await RawHTTP.request(.GET, url + "/readyz").json["status"] as? String == "ready")
            }
        }
    }
}

@Suite("No anonymous overload", .capturesLogs)
struct OverloadTests {
    @Test("the install flow is rate-limited per client: 429 with Retry-After; X-Forwarded-For counts only behind a trusted proxy")
    func installRateLimit() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await withServer(fixture, configure: { $0.installRateLimit = .init(burst: 3, perMinute: 1) }) { url, _ async throws in
                for _ in 0..<3 { #expect(try await RawHTTP.request(.GET, url + "/oauth/authorize").status == 302) }
                let limited = try await RawHTTP.request(.GET, url + "/oauth/authorize")
                #expect(limited.status == 429 && Int(limited.header("Retry-After") ?? "") ?? 0 >= 1)
                // The callback shares the limit; the token API does not.
                #expect(try await RawHTTP.request(.GET, url + "/oauth/callback?state=x&code=y").status == 429)
                #expect(try await RawHTTP.request(.GET, url + "/healthz").status == 200)
                // Not behind a proxy: a claimed address changes nothing.
                let spoofed = try await RawHTTP.request(.GET, url + "/oauth/authorize", headers: [("X-Forwarded-For", "203.0.113.7")])
                #expect(spoofed.status == 429)
            }
            try await withServer(fixture, configure: {
                $0.installRateLimit = .init(burst: 1, perMinute: 1)
                $0.trustProxy = true
            }) { url, _ async throws in
                let first = [("X-Forwarded-For", "198.51.100.1, 203.0.113.1")]
                #expect(try await RawHTTP.request(.GET, url + "/oauth/authorize", headers: first).status == 302)
                #expect(try await RawHTTP.request(.GET, url + "/oauth/authorize", headers: first).status == 429)
                // Behind the proxy, each client (the address the proxy appended) has a bucket of its own.
                let second = [("X-Forwarded-For", "198.51.100.1, 203.0.113.2")]
                #expect(try await RawHTTP.request(.GET, url + "/oauth/authorize", headers: second).status == 302)
            }
        }
    }

    @Test("installs in progress are capped (503 past it); expired states are purged in the background, in batches",
          arguments: StoreKind.allCases)
    func pendingInstallsCap(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await withServer(fixture, configure: {
                $0.installRateLimit = nil
                $0.maxPendingInstalls = 3
            }) { url, _ async throws in
                for _ in 0..<3 { #expect(try await RawHTTP.request(.GET, url + "/oauth/authorize").status == 302) }
                let full = try await RawHTTP.request(.GET, url + "/oauth/authorize")
                #expect(full.status == 503 && full.header("Retry-After") == "60")
            }
            // Expired states do not count, and the purger removes them a batch at a time.
            try await fixture.test.execute("UPDATE linear_oauth_states SET expires_at = \(kind == .sqlite ? "0" : "'2000-01-01T00:00:00Z'")")
            let purger = AuthorizationStatePurger(store: fixture.test.store, batchSize: 2)
            #expect(await purger.purgeExpired() == 3)
            #expect(await purger.purgeExpired() == 0)
            let store = fixture.test.store
            for index in 0..<3 {
                #expect(try await store.saveAuthorizationState("s\(index)", sealedVerifier: [1], expiresAt: Date().addingTimeInterval(600), maxPending: 3))
            }
            #expect(try await store.saveAuthorizationState("s3", sealedVerifier: [1], expiresAt: Date().addingTimeInterval(600), maxPending: 3) == false)
            #expect(try await store.takeAuthorizationState("s3") == nil)
            #expect(try await store.takeAuthorizationState("s0") != nil)
        }
    }

    @Test("slow clients: a request head that trickles in is cut off at the header time-out; /healthz answers while 300 idle connections are held")
    func slowClients() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            var limits = LinearOAuthConnectionLimits()
            limits.headerTimeout = .seconds(2)
            limits.idleTimeout = .seconds(600)
            try await withServer(fixture, limits: limits, stopsWhenDone: false) { url, _ async throws in
                let port = try #require(Int(url.split(separator: ":").last ?? ""))
                // 300 connections that send nothing, held open (only the idle time-out, 10 minutes, ends them).
                let idle = try await HeldConnection.open(300, port: port)
                for _ in 0..<5 { #expect(try await RawHTTP.request(.GET, url + "/healthz").status == 200) }
                // Slow-loris clients: a byte of the head every 200 ms; they never finish it.
                let slow = try await HeldConnection.open(20, port: port)
                for connection in slow { connection.send("GET /healthz HTTP/1.1\r\nHo") }
                let cutOff = Task {
                    while !Task.isCancelled {
                        for connection in slow { connection.send("x") }
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
                defer { cutOff.cancel() }
                try await waitUntil(timeout: .seconds(120), "the slow clients to be disconnected") {
                    slow.allSatisfy(\.isClosedByServer)
                }
                // The idle ones are still there (the header time-out is not the idle time-out), and the service answers.
                #expect(idle.allSatisfy { !$0.isClosedByServer })
                #expect(try await RawHTTP.request(.GET, url + "/healthz").status == 200)
            }
        }
    }

    @Test("a connection past the ceiling is closed at once; the others are served")
    func connectionCeiling() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            var limits = LinearOAuthConnectionLimits()
            limits.maxConnections = 20
            try await withServer(fixture, limits: limits, stopsWhenDone: false) { url, _ async throws in
                let port = try #require(Int(url.split(separator: ":").last ?? ""))
                let held = try await HeldConnection.open(25, port: port)
                try await waitUntil(timeout: .seconds(60), "the connections past the ceiling to be closed") {
                    held.filter(\.isClosedByServer).count == 5
                }
                // A connection within the ceiling still gets its answer.
                let open = held.first { !$0.isClosedByServer }
                #expect(open?.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == true)
            }
        }
    }

    @Test("/metrics counts installations with one aggregate query, kept a few seconds, never a listing")
    func metricsCounts() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install("org-acme", expiresIn: 3_600)
            try await fixture.install("org-globex", expiresIn: 3_600)
            var marked = try #require(try await fixture.vault.load(organizationID: "org-globex"))
            marked.status = .reauthorizationRequired
            try await fixture.vault.save(marked)
            let counting = CountingStore(fixture.test.store)
            try await withServer(fixture, prometheus: PrometheusCollectorRegistry(), store: counting, configure: {
                $0.installationCountsMaxAge = .seconds(3_600)
            }) { url, _ async throws in
                var text = ""
                for _ in 0..<5 { text = try await RawHTTP.request(.GET, url + "/metrics").text }
                #expect(text.contains(#"linear_oauth_installations{status="active"} 1"#))
                #expect(text.contains(#"linear_oauth_installations{status="reauthorization_required"} 1"#))
            }
            #expect(counting.calls("listMetadata") == 0)
            // Five scrapes while the counts are fresh: one query.
            #expect(counting.calls("installationCounts") == 1)
        }
    }
}

@Suite("Several instances on one PostgreSQL", .capturesLogs)
struct SeveralInstancesTests {
    @Test("a revoke on one instance stops the other from serving the token (LISTEN/NOTIFY)")
    func revokeEvictsOtherInstances() async throws {
        try await withManagerFixture(.postgres) { fixture in
            try await fixture.install("org-acme", expiresIn: 3_600)
            let metrics = TestMetrics()
            var configuration = TokenManager.Configuration()
            configuration.metricsFactory = metrics
            let other = TokenManager(
                vault: TokenVault(store: try await fixture.test.openAnother(), keyRing: fixture.vault.keyRing),
                linear: fixture.linear, configuration: configuration)
            let listener = Task { try await TokenChangeListener(manager: other).run() }
            defer { listener.cancel() }
            @Sendable func misses() throws -> Int64 { try metrics.expectCounter("linear_oauth_token_cache_misses_total").totalValue }
            _ = try await other.accessToken(for: "org-acme")
            // Once the listener is subscribed, a change made elsewhere empties the other's cache (a miss).
            try await waitUntil(timeout: .seconds(30), "the other instance to hear a change") {
                try await fixture.vault.save(try #require(try await fixture.vault.load(organizationID: "org-acme")))
                _ = try await other.accessToken(for: "org-acme")
                return try misses() > 1
            }
            _ = try await fixture.manager().revoke(for: "org-acme")
            try await waitUntil(timeout: .seconds(30), "the other instance to stop serving the revoked token") {
                do {
                    _ = try await other.accessToken(for: "org-acme")
                    return false
                } catch TokenManagerError.notInstalled {
                    return true
                }
            }
            listener.cancel()
            try await other.vault.store.close()
        }
    }
}

extension SeveralInstancesTests {
    @Test("after the change listener reconnects, a token changed during the gap is never served again")
    func reconnectForgetsTheGap() async throws {
        try await withManagerFixture(.postgres) { fixture in
            try await fixture.install("org-acme", expiresIn: 3_600)
            let otherStore = try await fixture.test.openAnother()
            let other = TokenManager(vault: TokenVault(store: otherStore, keyRing: fixture.vault.keyRing), linear: fixture.linear)
            let gate = Gate()
            let subscriptions = Mutex(0)
            var hooks = TokenChangeListener.Hooks()
            hooks.listening = { subscriptions.withLock { $0 += 1 } }
            // The gap is held open by the test, not by a timer: the listener reconnects when told to.
            hooks.lost = {
                gate.open("lost")
                try? await gate.wait("reconnect", timeout: .seconds(120))
            }
            let listener = Task { try await TokenChangeListener(manager: other, reconnectDelay: .zero, hooks: hooks).run() }
            defer { listener.cancel() }
            try await waitUntil("the listener to subscribe") { subscriptions.withLock { $0 } == 1 }
            let before = try await other.accessToken(for: "org-acme")
            // Cut the listener's connection, as a network fault or a failover would.
            try await fixture.test.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
            try await gate.wait("lost")
            // Another instance replaces the token while nobody listens: its notification reaches no one.
            let renewed = try await fixture.manager().forceRefresh(for: "org-acme")
            #expect(renewed.token != before.token)
            // During the gap the token in memory is still served (as while the database is down)...
            #expect(try await other.accessToken(for: "org-acme").token == before.token)
            gate.open("reconnect")
            try await waitUntil("the listener to subscribe again") { subscriptions.withLock { $0 } == 2 }
            // ...but once the listener is back, never again.
            #expect(try await other.accessToken(for: "org-acme").token == renewed.token)
            listener.cancel()
            try await otherStore.close()
        }
    }
}

@Suite("The install flow", .capturesLogs)
struct InstallFlowTests {
    /// Follows an install: our /oauth/authorize, the emulator's consent (auto-approve), our callback.
    func install(_ url: String) async throws -> (authorize: [String: String], callback: HTTPAnswer, callbackURL: String) {
        let start = try await RawHTTP.request(.GET, url + "/oauth/authorize")
        #expect(start.status == 302)
        let location = try #require(start.header("location"))
        let consent = try await RawHTTP.request(.GET, location)
        #expect(consent.status == 302)
        let callbackURL = try #require(consent.header("location"))
        #expect(callbackURL.hasPrefix(url + "/oauth/callback?"))
        return (RawHTTP.query(location), try await RawHTTP.request(.GET, callbackURL), callbackURL)
    }

    @Test("a full install through the emulator stores the workspace's tokens and app user; a re-install clears re-authorization",
          arguments: StoreKind.allCases)
    func fullInstall(kind: StoreKind) async throws {
        var settings = EmulatorSettings()
        settings.autoApprove = true
        try await withManagerFixture(kind, settings: settings) { fixture in
            try await withServer(fixture) { url, manager async throws in
                let (authorize, callback, _) = try await install(url)
                #expect(authorize["client_id"] == LinearEmulator.defaultClient.id)
                #expect(authorize["redirect_uri"] == url + "/oauth/callback")
                #expect(authorize["response_type"] == "code" && authorize["scope"] == "read,write" && authorize["actor"] == "app")
                #expect(authorize["prompt"] == "consent")
                #expect(authorize["code_challenge_method"] == "S256" && authorize["code_challenge"]?.count == 43)
                #expect((authorize["state"]?.count ?? 0) >= 43)
                #expect(callback.status == 200 && callback.text.contains("Acme (emulated)"))
                let stored = try #require(try await fixture.vault.load(organizationID: "org-acme"))
                #expect(stored.appUserID == "app-user-acme" && stored.status == .active && stored.scopes == ["read", "write"])
                #expect(stored.clientID == LinearEmulator.defaultClient.id)
                #expect(try await manager.accessToken(for: "org-acme").token == stored.accessToken)

                var dead = stored
                dead.status = .reauthorizationRequired
                dead.lastError = "invalid_grant"
                try await fixture.vault.save(dead)
                let again = try await install(url)
                #expect(again.callback.status == 200)
                let reinstalled = try #require(try await fixture.vault.load(organizationID: "org-acme"))
                #expect(reinstalled.status == .active && reinstalled.lastError == nil && reinstalled.accessToken != stored.accessToken)
            }
        }
    }

    @Test("the callback may land on another instance (the state is in the database); LINEAR_OAUTH_SUCCESS_URL gets the admin")
    func callbackOnAnotherInstance() async throws {
        var settings = EmulatorSettings()
        settings.autoApprove = true
        try await withManagerFixture(.postgres, settings: settings) { fixture in
            try await withServer(fixture) { first, _ async throws in
                let start = try await RawHTTP.request(.GET, first + "/oauth/authorize")
                let consent = try await RawHTTP.request(.GET, try #require(start.header("location")))
                let callback = try #require(consent.header("location"))
                let query = try #require(callback.split(separator: "?", maxSplits: 1).last.map(String.init))
                try await withServer(fixture, redirectURI: first + "/oauth/callback", configure: { $0.successURL = "https://app.example/installed" }) {
                    second, _ async throws in
                    let landed = try await RawHTTP.request(.GET, second + "/oauth/callback?" + query)
                    #expect(landed.status == 302 && landed.header("location") == "https://app.example/installed")
                }
            }
            #expect(try await fixture.vault.load(organizationID: "org-acme")?.appUserID == "app-user-acme")
        }
    }

    @Test("bad callbacks: cancelled, missing, unknown, reused or expired state store nothing")
    func badCallbacks() async throws {
        var settings = EmulatorSettings()
        settings.autoApprove = true
        try await withManagerFixture(.sqlite, settings: settings) { fixture in
            try await withServer(fixture) { url, _ async throws in
                let cancelled = try await RawHTTP.request(.GET, url + "/oauth/callback?error=access_denied&state=x")
                #expect(cancelled.status == 200 && cancelled.text.contains("cancelled"))
                let noState = try await RawHTTP.request(.GET, url + "/oauth/callback?code=abc")
                #expect(noState.status == 400)
                let unknown = try await RawHTTP.request(.GET, url + "/oauth/callback?code=abc&state=never-issued")
                #expect(unknown.status == 400 && unknown.text.contains("unknown or was already used"))
                // Every error page offers to start again.
                for page in [cancelled, noState, unknown] { #expect(page.text.contains("href=\"/oauth/authorize\"")) }
                let first = try await install(url)
                #expect(first.callback.status == 200)
                // A reload of a used callback: the install already completed, nothing is exchanged again.
                let stored = try await fixture.test.store.load(organizationID: "org-acme")
                let reused = try await RawHTTP.request(.GET, first.callbackURL)
                #expect(reused.status == 200 && reused.text.contains("already completed") && reused.text.contains("org-acme"))
                #expect(try await fixture.test.store.load(organizationID: "org-acme") == stored)
                try await fixture.vault.delete(organizationID: "org-acme")
            }
            try await withServer(fixture, configure: { $0.stateLifetime = .zero }) { url, _ async throws in
                let expired = try await install(url)
                #expect(expired.callback.status == 400 && expired.callback.text.contains("expired"))
            }
            #expect(try await fixture.test.store.listMetadata().isEmpty)
        }
    }
}

@Suite("linear-oauth serve", .capturesLogs)
struct ServeCommandTests {
    @Test("starts, answers, and stops gracefully on SIGTERM; a missing setting stops start-up with one line naming it")
    func serve() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            var environment = fixture.environment
            environment["LINEAR_OAUTH_API_KEYS"] = apiKey
            environment["LINEAR_WEBHOOK_SECRET"] = webhookSecret
            try await fixture.install("org-acme", expiresIn: 3_600)
            let (child, url) = try await startServe(environment: environment)
            defer { child.kill() }
            #expect(try await RawHTTP.request(.GET, url + "/healthz").status == 200)
            let token = try await RawHTTP.request(.GET, url + "/v1/installations/org-acme/access-token", headers: [("Authorization", "Bearer \(apiKey)")])
            #expect(token.status == 200)
            kill(child.pid, SIGTERM)
            #expect(try await child.waitForExit() == 0)

            for (name, words) in [("LINEAR_OAUTH_API_KEYS", ["LINEAR_OAUTH_API_KEYS"]), ("LINEAR_WEBHOOK_SECRET", ["LINEAR_WEBHOOK_SECRET"])] {
                var missing = environment
                missing[name] = nil
                expectOneLineError(try await runProcess(BuiltProducts.url("linear-oauth"), ["serve", "--port", "0"], environment: missing),
                                   status: 2, mentioning: words)
            }
        }
    }
}

@Suite("linear-oauth serve: configuration from a .env file and a secrets directory", .capturesLogs)
struct ServeConfigurationTests {
    @Test("the API key and LINEAR_OAUTH_PROMPT_CONSENT=off from .env, the client secret from the secrets directory; the environment wins over both")
    func envFileAndSecretsDirectory() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install("org-acme")   // expired: serving it needs the client secret
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let secrets = directory.path + "/secrets"
            try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: secrets + "/linear-client-secret", contents: Data((LinearEmulator.defaultClient.secret + "\n").utf8))
            FileManager.default.createFile(atPath: directory.path + "/.env", contents: Data("""
                # development settings
                LINEAR_OAUTH_API_KEYS=\(apiKey)
                LINEAR_WEBHOOK_SECRET=from-the-env-file
                LINEAR_CLIENT_SECRET=wrong-the-secrets-directory-wins
                LINEAR_OAUTH_PROMPT_CONSENT=off
                LINEAR_REDIRECT_URI=http://127.0.0.1:9/oauth/callback

                """.utf8))
            var environment = fixture.environment
            environment["LINEAR_CLIENT_SECRET"] = nil
            environment["LINEAR_WEBHOOK_SECRET"] = webhookSecret   // the environment wins over .env
            let (child, url) = try await startServe(
                ["--env-file", directory.path + "/.env", "--secrets-dir", secrets], environment: environment)
            defer { child.kill() }
            let token = try await RawHTTP.request(.GET, url + "/v1/installations/org-acme/access-token", headers: [("Authorization", "Bearer \(apiKey)")])
            #expect(token.status == 200)
            #expect(try await signedWebhook(url, revokedPayload("org-none")).status == 200)
            let authorize = try await RawHTTP.request(.GET, url + "/oauth/authorize")
            let query = RawHTTP.query(try #require(authorize.header("location")))
            #expect(query["actor"] == "app" && query["prompt"] == nil, "\(query)")
            kill(child.pid, SIGTERM)
            #expect(try await child.waitForExit() == 0)
        }
    }
}

@Suite("linear-oauth serve: graceful shutdown", .capturesLogs)
struct GracefulShutdownTests {
    @Test("SIGTERM with a refresh in flight: the request finishes, the rotated tokens are stored, the process exits 0")
    func shutdownWithRefreshInFlight() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            var environment = fixture.environment
            environment["LINEAR_OAUTH_API_KEYS"] = apiKey
            environment["LINEAR_WEBHOOK_SECRET"] = webhookSecret
            let original = try await fixture.install("org-acme")
            let (child, url) = try await startServe(environment: environment)
            defer { child.kill() }
            var settings = await fixture.emulator.settings()
            settings.latencyMilliseconds = 1_500
            await fixture.emulator.configure(settings)
            let request = Task {
                try await RawHTTP.request(.GET, url + "/v1/installations/org-acme/access-token", headers: [("Authorization", "Bearer \(apiKey)")])
            }
            try await waitUntil(timeout: .seconds(30), "the refresh to reach the emulator") {
                await fixture.emulator.tokenCallsArrived() >= 1
            }
            kill(child.pid, SIGTERM)
            let answer = try await request.value
            #expect(answer.status == 200)
            #expect(try await child.waitForExit() == 0)
            let stored = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            #expect(stored.refreshToken != original.refreshToken.map(Secret.init) && stored.status == .active)
            #expect((answer.json["access_token"] as? String).map(Secret.init) == stored.accessToken)
        }
    }
}

@Suite("linear-oauth serve --emulator", .capturesLogs)
struct ServeEmulatorTests {
    @Test("one command: a newcomer installs through the emulator, then `token org-acme` and `installations list` work in that folder with no configuration; the banner, the console's getting-started panel, and serve's JSON log of the install")
    func tryItInOneCommand() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Logs as JSON lines into a file, to read what serve says about the install.
        let logPath = directory.path + "/serve.log"
        let child = try ChildProcess(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", "exec \"$0\" serve --emulator --port 0 --log-format json 2>serve.log", BuiltProducts.url("linear-oauth").path],
            environment: childEnvironment(["LINEAR_OAUTH_LOG_LEVEL": "info"]), directory: directory.path)
        defer { child.kill() }
        let url = try await Self.listening(child)
        for line in ["  console   \(url)/", "  API       \(url)/v1", "  metrics   \(url)/metrics", "  database  sqlite:", "  keys      file "] {
            _ = try await child.waitForLine(startingWith: line)
        }
        try await installThroughConsent(child)
        // The operator commands work in the same folder with no configuration at all.
        let cli = CLI(environment: [:], directory: directory.path)
        let token = try await cli.run("token", "org-acme")
        #expect(token.status == 0 && !token.stdout.isEmpty, "\(token.stderr)")
        #expect(token.stderr.contains("development: using .linear-oauth-dev/"))
        let byKey = try await cli.run("token", "acme")
        #expect(byKey.status == 0 && byKey.stdout == token.stdout)
        let list = try await cli.run("installations", "list")
        #expect(list.status == 0 && list.stdout.contains("org-acme") && list.stdout.contains("acme") && list.stdout.contains("Acme (emulated)"))
        let show = try await cli.run("installations", "show", "acme")
        #expect(show.status == 0 && show.stdout.contains("org-acme"))
        // A database named in the environment is a deployment: the development world is not used.
        let elsewhere = try await cli.run("installations", "list", extra: ["DATABASE_URL": "sqlite:\(directory.path)/other.sqlite"])
        #expect(elsewhere.stdout.contains("no installations") && !elsewhere.stderr.contains("development"))
        // There, what is missing is said all at once, with where the development world is.
        let unset = try await cli.run("token", "org-acme", extra: ["DATABASE_URL": "sqlite:\(directory.path)/other.sqlite"])
        expectOneLineError(unset, status: 2, mentioning: [
            "LINEAR_CLIENT_ID", "LINEAR_CLIENT_SECRET", "LINEAR_OAUTH_ENCRYPTION_KEYS", ".linear-oauth-dev/keys",
        ])

        // The console: signed in with the development API key, its overview shows the getting-started panel.
        let apiKey = try String(contentsOfFile: directory.path + "/.linear-oauth-dev/api-key", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        TestSecrets.record(apiKey, kind: "api-key")
        let form = try await RawHTTP.request(.GET, url + "/console/sign-in")
        #expect(form.text.contains(".linear-oauth-dev/api-key"))
        let cookie = try #require(form.header("set-cookie")?.split(separator: ";").first.map(String.init))
        let token0 = try #require(form.text.range(of: "name=\"sign_in\" value=\"").map { String(form.text[$0.upperBound...].prefix { $0 != "\"" }) })
        let signedIn = try await RawHTTP.form(url + "/console/sign-in", ["sign_in": token0, "api_key": apiKey], headers: [("Cookie", cookie)])
        let session = try #require(signedIn.header("set-cookie")?.split(separator: ";").first.map(String.init))
        let overview = try await RawHTTP.request(.GET, url + "/", headers: [("Cookie", session)])
        #expect(overview.text.contains("id=\"getting-started\"") && overview.text.contains("swift run linear-oauth token org-acme"))
        #expect(overview.text.contains("org-acme"))

        // serve said so, at info, as one JSON object per line.
        @Sendable func records() -> [[String: Any]] {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
        try await waitUntil(timeout: .seconds(30), "serve to log the install") {
            records().contains { $0["message"] as? String == "the app was installed" }
        }
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        let records = records()
        #expect(records.count == text.split(separator: "\n").filter { $0.hasPrefix("{") }.count, "every JSON line parses")
        let installed = try #require(records.first { $0["message"] as? String == "the app was installed" })
        #expect(installed["level"] as? String == "info" && (installed["label"] as? String)?.hasPrefix("linear-oauth.") == true)
        #expect((installed["metadata"] as? [String: Any])?["organization"] as? String == "org-acme")
        #expect((installed["time"] as? String).map { RFC3339.parse($0) != nil && $0.hasSuffix("Z") } == true)
    }

    @Test("a busy port is one line naming the address and --port; a row under a key not in the ring exits 1 naming the key; an unknown organization suggests the closest")
    func newcomerMessages() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            let (first, url) = try await startServe([], environment: fixture.environment.merging([
                "LINEAR_OAUTH_API_KEYS": apiKey, "LINEAR_WEBHOOK_SECRET": webhookSecret,
            ]) { $1 })
            defer { first.kill() }
            let port = try #require(URL(string: url)?.port)
            let second = try await runProcess(
                BuiltProducts.url("linear-oauth"), ["serve", "--port", String(port)],
                environment: fixture.environment.merging(["LINEAR_OAUTH_API_KEYS": apiKey, "LINEAR_WEBHOOK_SECRET": webhookSecret]) { $1 })
            expectOneLineError(second, status: 1, mentioning: ["127.0.0.1:\(port) is already in use", "--port"])
            #expect(!second.stderr.contains("CancellationError") && !second.stderr.contains("errno"))

            try await fixture.install("org-acme", expiresIn: 3600)
            var named = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            named.urlKey = "acme"
            try await fixture.vault.save(named)
            let cli = CLI(environment: fixture.environment, directory: NSTemporaryDirectory())
            let unknown = try await cli.run("token", "acmee")
            expectOneLineError(unknown, status: 3, mentioning: ["acmee is not installed", "did you mean acme", "installations list"])
            // Sealed under a key this process does not have.
            let gone = TestSecrets.keyEntry(id: "k-gone")
            try await TokenVault(store: fixture.test.store, keyRing: try KeyRing(parsing: gone)).save(Fixtures.installation("org-gone", expiresIn: 3600))
            let undecryptable = try await cli.run("token", "org-gone")
            expectOneLineError(undecryptable, status: 1, mentioning: ["org-gone", "\"k-gone\"", "not in the key ring", "LINEAR_OAUTH_ENCRYPTION_KEYS"])
            let badFormat = try await cli.run("token", "org-acme", "--log-format", "xml")
            expectOneLineError(badFormat, status: 2, mentioning: ["LINEAR_OAUTH_LOG_FORMAT", "text or json"])
        }
    }

    @Test("its own development world: the environment's database is never touched, files are 0600 in .linear-oauth-dev, an install survives a restart, a real grant is refused and not marked")
    func developmentWorld() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // A "real" database, named by the environment as a production shell would: two real grants in it,
        // one with its client recorded, one from before client ids were.
        let realPath = directory.path + "/real.sqlite"
        let realKey = TestSecrets.keyEntry(id: "real")
        let realStore = try SQLiteTokenStore(path: realPath)
        try await realStore.migrate()
        var bound = Fixtures.installation("org-real-bound", expiresIn: -60)
        bound.clientID = "real-app"
        try await TokenVault(store: realStore, keyRing: try KeyRing(parsing: realKey)).save([bound, Fixtures.installation("org-real-legacy", expiresIn: -60)])
        let before = try await realStore.listMetadata()
        let environment = childEnvironment(["DATABASE_URL": "sqlite:\(realPath)", "LINEAR_OAUTH_ENCRYPTION_KEYS": realKey])
        let linearOAuth = BuiltProducts.url("linear-oauth")

        let first = try ChildProcess(linearOAuth, ["serve", "--emulator", "--port", "0"], environment: environment, directory: directory.path)
        try await installThroughConsent(first)
        first.kill()
        #expect(try await realStore.listMetadata() == before)
        let development = directory.path + "/.linear-oauth-dev"
        #expect(Self.mode(development) == 0o700)
        for name in ["keys", "api-key", "emulator.json", "linear-oauth.sqlite"] {
            #expect(Self.mode("\(development)/\(name)") == 0o600, "\(name)")
        }
        let apiKey = try String(contentsOfFile: development + "/api-key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        TestSecrets.record(apiKey, kind: "api-key")
        let auth = [("Authorization", "Bearer \(apiKey)")]

        // Restarted: the install is still there, and the emulator still knows its grant.
        let second = try ChildProcess(linearOAuth, ["serve", "--emulator", "--port", "0"], environment: environment, directory: directory.path)
        let url = try await Self.listening(second)
        #expect(try await RawHTTP.request(.GET, url + "/v1/installations/org-acme/access-token", headers: auth).status == 200)
        let refreshed = try await RawHTTP.request(.POST, url + "/v1/installations/org-acme/refresh", headers: auth)
        #expect(refreshed.status == 200, "\(refreshed.text)")
        second.kill()

        // Pointed at the real database on purpose: its grants are refused, never sent to the emulator, never marked.
        let third = try ChildProcess(
            linearOAuth, ["serve", "--emulator", "--port", "0", "--database-url", "sqlite:\(realPath)", "--encryption-keys", realKey],
            environment: childEnvironment([:]), directory: directory.path)
        let realURL = try await Self.listening(third)
        for organization in ["org-real-bound", "org-real-legacy"] {
            let answer = try await RawHTTP.request(.POST, realURL + "/v1/installations/\(organization)/refresh", headers: auth)
            #expect(answer.status == 503 && answer.json["error"] as? String == "client_mismatch", "\(organization): \(answer.text)")
        }
        third.kill()
        #expect(try await realStore.listMetadata() == before)
        try await realStore.close()

        // A development file that others can read is refused when reused.
        #expect(chmod(development + "/api-key", 0o644) == 0)
        let refused = try await runProcess(linearOAuth, ["serve", "--emulator", "--port", "0"], environment: environment, currentDirectory: directory.path)
        #expect(refused.status == 2 && refused.stderr.contains("chmod 600"), "\(refused.stderr)")
        // And the repository never takes them in.
        let gitignore = try String(contentsOfFile: TestLog.packageRoot + "/.gitignore", encoding: .utf8)
        #expect(gitignore.split(separator: "\n").contains(".linear-oauth-dev/"))
    }

    static func mode(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_mode & 0o777) : -1
    }

    static func listening(_ child: ChildProcess) async throws -> String {
        let line = try await child.waitForLine(startingWith: "linear-oauth listening on ")
        return String(line.dropFirst("linear-oauth listening on ".count))
    }

    /// Our authorize -> the emulator's consent page -> Approve -> our callback.
    func installThroughConsent(_ child: ChildProcess) async throws {
        let open = try await child.waitForLine(startingWith: "open ")
        let authorize = try #require(open.split(separator: " ").dropFirst().first.map(String.init))
        #expect(authorize.hasSuffix("/oauth/authorize"))
        let start = try await RawHTTP.request(.GET, authorize)
        let consentURL = try #require(start.header("location"))
        #expect(RawHTTP.query(consentURL)["prompt"] == "consent")
        let page = try await RawHTTP.request(.GET, consentURL)
        #expect(page.status == 200 && page.text.contains("Acme (emulated)") && page.text.contains("Choose the workspace"))
        var form = RawHTTP.query(consentURL)
        form["decision"] = "approve"
        form["organization_id"] = "org-acme"
        let base = String(consentURL.prefix(while: { $0 != "?" }))
        let approved = try await RawHTTP.form(base, form)
        let callback = try #require(approved.header("location"))
        let done = try await RawHTTP.request(.GET, callback)
        #expect(done.status == 200 && done.text.contains("Acme (emulated)"))
    }
}

@Suite("The OpenAPI document", .capturesLogs)
struct OpenAPITests {
    @Test("/openapi.json is valid JSON and lists exactly the router's routes, with the API key on every /v1 operation")
    func matchesRoutes() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            let server = LinearOAuthServer(
                manager: fixture.manager(),
                configuration: {
                    var c = LinearOAuthServerConfiguration(apiKeys: [Secret(apiKey)], webhookSecret: Secret(webhookSecret))
                    c.prometheus = PrometheusCollectorRegistry()
                    return c
                }())
            // The console's HTML pages are for people in a browser, not part of the API document.
            let routes = Set(server.router().routes.filter { $0.path.description != "/" && !$0.path.description.hasPrefix("/console") }
                .map { "\($0.method.rawValue) \($0.path)" })
            let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var documented: Set<String> = []
            for (path, item) in paths {
                for method in ["get", "post", "put", "patch", "delete"] {
                    guard let operation = item[method] as? [String: Any] else { continue }
                    documented.insert("\(method.uppercased()) \(path)")
                    if path.hasPrefix("/v1/") {
                        #expect((operation["security"] as? [[String: Any]])?.first?["apiKey"] != nil, "\(method) \(path)")
                    }
                }
            }
            #expect(documented == routes, "documented only: \(documented.subtracting(routes)); routed only: \(routes.subtracting(documented))")
            try await withServer(fixture) { url, _ async throws in
                let served = try await RawHTTP.request(.GET, url + "/openapi.json")
                #expect(served.status == 200 && served.text == OpenAPIDocument.json)
            }
        }
    }
}

/// The API key ``withServer(_:prometheus:redirectURI:limits:store:stopsWhenDone:configure:_:)`` accepts, for other suites.
let serverAPIKey = apiKey
