import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthTestSupport
import MetricsTestKit
import Synchronization
import Testing

/// An emulator, a store of one kind, keys, and helpers to install organizations and count refreshes.
struct ManagerFixture {
    let emulator: LinearEmulator
    let url: String
    let test: TestStore
    let keyEntry: String
    let vault: TokenVault

    var linear: LinearClient { emulatorClient(url) }

    func manager(_ configure: (inout TokenManager.Configuration) -> Void = { _ in }) -> TokenManager {
        testManager(vault: vault, linear: linear, configure)
    }

    /// Installs an organization with tokens minted by the emulator, stored as expiring in `expiresIn` seconds.
    @discardableResult
    func install(_ organizationID: String = "org-acme", expiresIn: TimeInterval = -60) async throws -> EmulatedTokenResponse {
        try await installMinted([organizationID], emulator: emulator, vault: vault, expiresIn: expiresIn)[organizationID]!
    }

    func refreshCalls() async -> [EmulatorRequestRecord] {
        await emulator.requests().filter { $0.grantType == "refresh_token" }
    }

    /// The environment a child process needs: the store, the key and the emulator.
    var environment: [String: String] {
        childEnvironment([
            "DATABASE_URL": test.databaseURL, "LINEAR_OAUTH_ENCRYPTION_KEYS": keyEntry,
            "LINEAR_CLIENT_ID": LinearEmulator.defaultClient.id, "LINEAR_CLIENT_SECRET": LinearEmulator.defaultClient.secret,
            "LINEAR_API_URL": url,
        ])
    }
}

func withManagerFixture(_ kind: StoreKind, settings: EmulatorSettings = EmulatorSettings(), _ body: (ManagerFixture) async throws -> Void) async throws {
    try await withEmulator(settings: settings) { emulator, url in
        try await withTestStore(kind, lockTimeout: .seconds(20)) { test in
            let keyEntry = TestSecrets.keyEntry(id: "k1")
            let vault = TokenVault(store: test.store, keyRing: try KeyRing(parsing: keyEntry))
            try await body(ManagerFixture(emulator: emulator, url: url, test: test, keyEntry: keyEntry, vault: vault))
        }
    }
}

@Suite("Token manager: always a valid access token", .capturesLogs)
struct TokenManagerTests {
    @Test("an expired token is refreshed transparently and the rotated pair is what the store holds", arguments: StoreKind.allCases)
    func expiredTokenRefreshed(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let original = try await fixture.install()
            let events = Mutex<[TokenEvent]>([])
            let manager = fixture.manager { $0.onEvent = { event in events.withLock { $0.append(event) } } }
            let token = try await manager.accessToken(for: "org-acme")
            #expect(token.token != Secret(original.accessToken))
            #expect(token.expiresAt > Date().addingTimeInterval(86_000))
            #expect(token.appUserID == "app-user-org-acme")
            let stored = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            #expect(stored.accessToken == token.token)
            #expect(stored.refreshToken != original.refreshToken.map(Secret.init))
            #expect(stored.status == .active && stored.lastRefreshAt != nil && stored.refreshFailures == 0)
            // The stored refresh token is the live one: Linear accepts it.
            _ = try await fixture.linear.refresh(stored.refreshToken)
            // Cached: a second call does not refresh again.
            #expect(try await manager.accessToken(for: "org-acme") == token)
            #expect(await fixture.refreshCalls().count == 2)
            #expect(events.withLock { $0 } == [.refreshed(organizationID: "org-acme", expiresAt: token.expiresAt)])
        }
    }

    @Test("refresh ahead: inside the margin with time to spare, 100 callers get the cached token at once and one background refresh runs")
    func refreshAhead() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            let original = try await fixture.install(expiresIn: 3_600)
            let start = Date()
            let clock = Mutex(start)
            let manager = fixture.manager {
                $0.refreshAhead = true
                $0.now = { clock.withLock { $0 } }
            }
            let first = try await manager.accessToken(for: "org-acme")
            #expect(first.token == Secret(original.accessToken))
            // 312 s left: inside the 600 s margin, with more than half of it to spare, and below every
            // entry's refresh-ahead point (a random point between 330 and 600 s).
            clock.withLock { $0 = start.addingTimeInterval(3_288) }
            let tokens = try await withThrowingTaskGroup(of: Secret.self) { group in
                for _ in 0..<100 { group.addTask { try await manager.accessToken(for: "org-acme").token } }
                return try await group.reduce(into: Set<Secret>()) { $0.insert($1) }
            }
            #expect(tokens == [Secret(original.accessToken)])
            await manager.finishBackgroundRefreshes()
            #expect(await fixture.refreshCalls().count == 1)
            let renewed = try await manager.accessToken(for: "org-acme")
            #expect(renewed.token != Secret(original.accessToken))
            #expect(try #require(try await fixture.vault.load(organizationID: "org-acme")).accessToken == renewed.token)
            // Under half the margin left, callers wait for the refresh (refresh ahead or not).
            clock.withLock { $0 = renewed.expiresAt.addingTimeInterval(-200) }
            let waited = try await manager.accessToken(for: "org-acme")
            #expect(waited.token != renewed.token)
            #expect(await fixture.refreshCalls().count == 2)
        }
    }

    @Test("200 concurrent callers on an expired token: one refresh, one token for all", arguments: StoreKind.allCases)
    func concurrentCallersInProcess(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install()
            let manager = fixture.manager()
            let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<200 { group.addTask { try await manager.accessToken(for: "org-acme").token.value } }
                var tokens: Set<String> = []
                for try await token in group { tokens.insert(token) }
                return tokens
            }
            #expect(tokens.count == 1)
            #expect(await fixture.refreshCalls().count == 1)
        }
    }

    @Test("200 concurrent callers on a revoked grant: one refresh call, and every caller gets reauthorization_required", arguments: StoreKind.allCases)
    func concurrentCallersRevoked(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let grant = try await fixture.install()
            _ = try await fixture.linear.revoke(Secret(grant.refreshToken!), hint: .refreshToken)
            let manager = fixture.manager()
            let errors = try await withThrowingTaskGroup(of: TokenManagerError?.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        do throws(TokenManagerError) {
                            _ = try await manager.accessToken(for: "org-acme")
                            return nil
                        } catch {
                            return error
                        }
                    }
                }
                var errors: [TokenManagerError?] = []
                for try await error in group { errors.append(error) }
                return errors
            }
            #expect(errors.count == 200)
            #expect(errors.allSatisfy { $0 == .reauthorizationRequired(organizationID: "org-acme", reason: "invalid_grant") })
            #expect(await fixture.refreshCalls().count == 1)
        }
    }

    @Test("a leader cancelled in the middle of its load: its followers join again, one of them leads, and each gets the token")
    func cancelledLeader() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install()
            let store = CountingStore(fixture.test.store)
            let manager = testManager(vault: TokenVault(store: store, keyRing: fixture.vault.keyRing), linear: fixture.linear)
            // The leader's load is held until its task is cancelled.
            store.heldLoads.close()
            let leader = Task { try await manager.accessToken(for: "org-acme") }
            try await waitUntil("the leader's load to be held") { store.heldLoads.waitingCount == 1 }
            let followersDone = Mutex(false)
            let followers = Task {
                defer { followersDone.withLock { $0 = true } }
                return try await withThrowingTaskGroup(of: Secret.self) { group in
                    for _ in 0..<20 { group.addTask { try await manager.accessToken(for: "org-acme").token } }
                    var tokens: [Secret] = []
                    for try await token in group { tokens.append(token) }
                    return tokens
                }
            }
            try await waitUntil("20 followers to wait for the leader") { manager.waitingCallers(for: "org-acme") == 20 }
            // Cancelled while its load is held: the load throws, and so does the leader.
            leader.cancel()
            await #expect(throws: (any Error).self) { _ = try await leader.value }
            // The followers join again and one of them leads: its load is the one held now. (Followers
            // that failed instead are done: their error is the test's failure, below.)
            try await waitUntil("a follower to lead, its load held") {
                store.heldLoads.waitingCount == 1 || followersDone.withLock { $0 }
            }
            store.heldLoads.open()
            let tokens = try await followers.value
            // Counted outside the expectation: a failure message would show the token strings.
            let distinct = Set(tokens).count
            #expect(tokens.count == 20)
            #expect(distinct == 1)
            let stored = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            #expect(tokens.first == stored.accessToken)
            #expect(await fixture.refreshCalls().count == 1)
        }
    }

    @Test("a caller that joins the background refresher's flight gets its token, and it is cached then (not otherwise)")
    func callerJoinsRefresherFlight() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install("org-acme", expiresIn: 1800)
            let store = CountingStore(fixture.test.store)
            let manager = testManager(vault: TokenVault(store: store, keyRing: fixture.vault.keyRing), linear: fixture.linear)
            // Alone, the refresher's flight caches nothing.
            _ = try await manager.refreshIfExpiring(within: .seconds(3_600), for: "org-acme")
            #expect(manager.cachedTokenCount == 0)
            // The refresher leads again (forced by a wide window), held in its load; a caller joins it.
            store.heldLoads.close()
            let refresh = Task { try await manager.refreshIfExpiring(within: .seconds(200_000), for: "org-acme") }
            try await waitUntil("the refresher's load to be held") { store.heldLoads.waitingCount == 1 }
            let caller = Task { try await manager.accessToken(for: "org-acme") }
            try await waitUntil("the caller to follow the refresher's flight") { manager.waitingCallers(for: "org-acme") == 1 }
            store.heldLoads.open()
            let refreshed = try await refresh.value
            let served = try await caller.value
            #expect(served.token == refreshed.token)
            #expect(manager.cachedTokenCount == 1, "the token a caller waited for is cached")
            let loads = store.calls("load")
            _ = try await manager.accessToken(for: "org-acme")
            #expect(store.calls("load") == loads, "served from the cache")
        }
    }

    @Test("4 processes with 25 callers each on one expired installation: exactly one refresh", arguments: StoreKind.allCases)
    func concurrentProcesses(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install()
            let helpers = try (0..<4).map { _ in
                try ChildProcess(BuiltProducts.url("linear-oauth-test-helper"), ["tokens", fixture.test.databaseURL, "org-acme", "25"],
                                 environment: fixture.environment)
            }
            defer { helpers.forEach { $0.kill() } }
            for helper in helpers { try await helper.waitForLine("ready") }
            for helper in helpers { try helper.send("go") }
            var fingerprints: Set<String> = []
            for helper in helpers {
                try await helper.waitForLine("done")
                let lines = helper.output.filter { $0 != "ready" && $0 != "done" }
                #expect(lines.count == 25)
                #expect(lines.allSatisfy { !$0.hasPrefix("error") }, "\(lines.first { $0.hasPrefix("error") } ?? "")")
                fingerprints.formUnion(lines)
            }
            #expect(fingerprints.count == 1)
            #expect(await fixture.refreshCalls().count == 1)
            let stored = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            #expect(fingerprints.first == tokenFingerprint(stored.accessToken.value))
        }
    }

    @Test("20 concurrent `linear-oauth token ORG` processes: exactly one refresh, the same token", arguments: StoreKind.allCases)
    func concurrentCLIProcesses(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install()
            let outputs = try await withThrowingTaskGroup(of: ProcessOutput.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await runProcess(BuiltProducts.url("linear-oauth"), ["token", "org-acme"], environment: fixture.environment)
                    }
                }
                var outputs: [ProcessOutput] = []
                for try await output in group { outputs.append(output) }
                return outputs
            }
            #expect(outputs.allSatisfy { $0.status == 0 }, "\(outputs.first { $0.status != 0 }?.stderr ?? "")")
            #expect(Set(outputs.map(\.stdout)).count == 1)
            #expect(outputs[0].stdout.hasPrefix("lin_oauth_") && outputs[0].stdout.hasSuffix("\n"))
            #expect(await fixture.refreshCalls().count == 1)
        }
    }

    @Test("a refresh whose response is lost is recovered by the next attempt; the installation stays active", arguments: StoreKind.allCases)
    func lostResponse(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install()
            await fixture.emulator.dropNextRefreshResponse()
            let token = try await fixture.manager().accessToken(for: "org-acme")
            #expect(await fixture.refreshCalls().map(\.outcome) == ["dropped", "replayed"])
            let stored = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            #expect(stored.status == .active && stored.accessToken == token.token)
            // The replayed pair is live.
            _ = try await fixture.linear.refresh(stored.refreshToken)
        }
    }

    @Test("a process killed (SIGKILL) with its refresh in flight: the next process gets a token, the installation stays active",
          arguments: StoreKind.allCases)
    func killedMidRefresh(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install()
            var settings = await fixture.emulator.settings()
            settings.latencyMilliseconds = 1_500
            await fixture.emulator.configure(settings)
            let victim = try ChildProcess(BuiltProducts.url("linear-oauth"), ["token", "org-acme"], environment: fixture.environment)
            try await waitUntil(timeout: .seconds(60), "the victim's refresh to reach the emulator") {
                await fixture.emulator.tokenCallsArrived() >= 1
            }
            victim.kill()
            settings.latencyMilliseconds = 0
            await fixture.emulator.configure(settings)
            let next = try await runProcess(BuiltProducts.url("linear-oauth"), ["token", "org-acme"], environment: fixture.environment)
            #expect(next.status == 0, "\(next.stderr)")
            let stored = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            #expect(stored.status == .active)
            #expect(Secret(next.stdout) == Secret(stored.accessToken.value + "\n"))
        }
    }

    @Test("invalid_grant: reauthorization_required, a typed error, exit 4, and no more refresh calls", arguments: StoreKind.allCases)
    func invalidGrant(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let grant = try await fixture.install()
            _ = try await fixture.linear.revoke(Secret(grant.refreshToken!), hint: .refreshToken)
            let events = Mutex<[TokenEvent]>([])
            let manager = fixture.manager { $0.onEvent = { event in events.withLock { $0.append(event) } } }
            for _ in 0..<5 {
                await #expect(throws: TokenManagerError.reauthorizationRequired(organizationID: "org-acme", reason: "invalid_grant")) {
                    _ = try await manager.accessToken(for: "org-acme")
                }
            }
            let stored = try #require(try await fixture.test.store.load(organizationID: "org-acme"))
            #expect(stored.status == .reauthorizationRequired && stored.lastError == "invalid_grant" && stored.refreshFailures == 1)
            #expect(events.withLock { $0 } == [.reauthorizationRequired(organizationID: "org-acme", reason: "The refresh token has been revoked")])
            let cli = try await runProcess(BuiltProducts.url("linear-oauth"), ["token", "org-acme"], environment: fixture.environment)
            expectOneLineError(cli, status: 4, mentioning: ["org-acme", "install the app again"])
            #expect(await fixture.refreshCalls().count == 1)
        }
    }

    @Test("invalid_client leaves the installation untouched; the CLI exits 2", arguments: StoreKind.allCases)
    func invalidClient(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install()
            let before = try #require(try await fixture.test.store.load(organizationID: "org-acme"))
            let manager = TokenManager(vault: fixture.vault, linear: emulatorClient(fixture.url, secret: "wrong"))
            await #expect(throws: TokenManagerError.self) { _ = try await manager.accessToken(for: "org-acme") }
            #expect(try await fixture.test.store.load(organizationID: "org-acme") == before)
            var environment = fixture.environment
            environment["LINEAR_CLIENT_SECRET"] = "wrong"
            let cli = try await runProcess(BuiltProducts.url("linear-oauth"), ["token", "org-acme"], environment: environment)
            expectOneLineError(cli, status: 2, mentioning: ["invalid_client"], secrets: ["wrong"])
            #expect(try await fixture.test.store.load(organizationID: "org-acme") == before)
        }
    }

    @Test("5xx, 429 and time-outs are retried while the still-valid token is served; an expired one is retried, then exit 5",
          arguments: StoreKind.allCases)
    func transientFailures(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            // Inside the margin but not expired: the old token is served while Linear fails.
            let grant = try await fixture.install(expiresIn: 120)
            let manager = fixture.manager { $0.initialBackoff = .seconds(60) }
            await fixture.emulator.failNextTokenCalls(1, status: 503)
            #expect(try await manager.accessToken(for: "org-acme").token == Secret(grant.accessToken))
            let stored = try #require(try await fixture.test.store.load(organizationID: "org-acme"))
            #expect(stored.status == .active && stored.lastError == "server_error" && stored.refreshFailures == 1)
            // Backing off: the next call does not hammer Linear.
            #expect(try await manager.accessToken(for: "org-acme").token == Secret(grant.accessToken))
            #expect(await fixture.refreshCalls().count == 1)

            // Expired: the call retries (after 429 with Retry-After 0, twice) and then succeeds.
            try await fixture.install("org-globex")
            await fixture.emulator.clearRequests()
            await fixture.emulator.failNextTokenCalls(2, status: 429, retryAfter: 0)
            let fresh = try await fixture.manager().accessToken(for: "org-globex")
            #expect(fresh.expiresAt > Date())
            #expect(await fixture.refreshCalls().map(\.outcome) == ["injected_429", "injected_429", "ok"])

            // Expired and Linear keeps failing: after its attempts the CLI exits 5; the tokens are kept.
            let third = try await fixture.install("org-acme")
            await fixture.emulator.failNextTokenCalls(3, status: 502)
            let cli = try await runProcess(BuiltProducts.url("linear-oauth"), ["token", "org-acme"], environment: fixture.environment)
            expectOneLineError(cli, status: 5, mentioning: ["org-acme", "HTTP 502"])

            // A time-out on an expired token, past the attempts: temporarily unavailable.
            var settings = await fixture.emulator.settings()
            settings.latencyMilliseconds = 1_000
            await fixture.emulator.configure(settings)
            var quick = TokenManager.Configuration()
            quick.initialBackoff = .milliseconds(10)
            quick.maxAttempts = 2
            let slow = TokenManager(vault: fixture.vault, linear: emulatorClient(fixture.url, timeout: .milliseconds(200)), configuration: quick)
            do {
                _ = try await slow.accessToken(for: "org-acme")
                Issue.record("no error")
            } catch {
                guard case .temporarilyUnavailable(let organizationID, _, _)? = error as? TokenManagerError else { Issue.record("\(error)"); return }
                #expect(organizationID == "org-acme")
            }
            let kept = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            #expect(kept.refreshToken == Secret(third.refreshToken!) && kept.status == .active)
        }
    }

    @Test("after repeated transient failures an organization cools down instead of hammering Linear")
    func cooldown() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            let grant = try await fixture.install(expiresIn: 120)   // due, but still valid
            let manager = fixture.manager {
                $0.initialBackoff = .zero
                $0.cooldownAfterFailures = 2
                $0.cooldown = .seconds(3_600)
            }
            await fixture.emulator.failNextTokenCalls(10, status: 503)
            for _ in 0..<6 {
                #expect(try await manager.accessToken(for: "org-acme").token == Secret(grant.accessToken))
            }
            #expect(await fixture.refreshCalls().count == 2)
            #expect(try await fixture.test.store.load(organizationID: "org-acme")?.refreshFailures == 2)
        }
    }

    @Test("a grant of another OAuth client is never refreshed or revoked with this one: a configuration error, nothing changed; a row from before adopts the client of its next refresh",
          arguments: StoreKind.allCases)
    func clientBinding(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            // Stored without a client id, as rows from before it was recorded: the next refresh records it.
            try await fixture.install()
            #expect(try await fixture.vault.load(organizationID: "org-acme")?.clientID == nil)
            _ = try await fixture.manager().accessToken(for: "org-acme")
            #expect(try await fixture.vault.load(organizationID: "org-acme")?.clientID == LinearEmulator.defaultClient.id)

            // Now it belongs to another app, and its token has expired.
            var other = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            other.clientID = "another-app"
            other.expiresAt = Date().addingTimeInterval(-60)
            try await fixture.vault.save(other)
            let before = try #require(try await fixture.test.store.load(organizationID: "org-acme"))
            await fixture.emulator.clearRequests()
            let mismatch = TokenManagerError.clientMismatch(
                organizationID: "org-acme", installedBy: "another-app", configured: LinearEmulator.defaultClient.id)
            let manager = fixture.manager()
            await #expect(throws: mismatch) { _ = try await manager.accessToken(for: "org-acme") }
            await #expect(throws: mismatch) { _ = try await manager.forceRefresh(for: "org-acme") }
            await #expect(throws: mismatch) { _ = try await manager.revoke(for: "org-acme") }
            #expect(mismatch.description.contains("another-app") && mismatch.description.contains("LINEAR_CLIENT_ID"))
            let cli = try await runProcess(BuiltProducts.url("linear-oauth"), ["token", "org-acme"], environment: fixture.environment)
            expectOneLineError(cli, status: 2, mentioning: ["org-acme", "another-app", "nothing was changed"])
            let revoke = try await runProcess(
                BuiltProducts.url("linear-oauth"), ["installations", "revoke", "org-acme"], environment: fixture.environment)
            expectOneLineError(revoke, status: 2, mentioning: ["another-app"])
            // Linear was not asked, and nothing stored changed.
            #expect(await fixture.emulator.requests().isEmpty)
            #expect(try await fixture.test.store.load(organizationID: "org-acme") == before)
        }
    }

    @Test("a wrong-app misconfiguration marks at most the breaker's threshold and keeps the other tokens; reinstate repairs the marked ones",
          arguments: StoreKind.allCases)
    func deauthorizationBreaker(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let organizations = (1...6).map { "org-b\($0)" }
            for organization in organizations {
                await fixture.emulator.add(EmulatedOrganization(id: organization, name: organization, urlKey: organization, appUserID: "u-\(organization)"))
            }
            // Rows from before client ids were recorded, so only Linear can tell the grants are not this client's.
            try await installMinted(organizations, emulator: fixture.emulator, vault: fixture.vault, expiresIn: -60)
            let before = try await fixture.test.store.listMetadata()
            // Another app that Linear knows: it refuses our grants with invalid_grant, as for dead ones.
            let wrongApp = EmulatedClient(id: "wrong-app", secret: "wrong-app-secret", name: "Wrong app", redirectURIs: [])
            await fixture.emulator.add(wrongApp)
            var configuration = fixture.linear.configuration
            configuration.clientID = wrongApp.id
            configuration.clientSecret = Secret(wrongApp.secret)
            let misconfigured = TokenManager(vault: fixture.vault, linear: LinearClient(configuration: configuration))
            var marked = 0, suspected = 0
            for organization in organizations {
                do throws(TokenManagerError) {
                    _ = try await misconfigured.accessToken(for: organization)
                    Issue.record("\(organization) got a token")
                } catch {
                    switch error {
                    case .reauthorizationRequired: marked += 1
                    case .temporarilyUnavailable(_, let reason, _) where reason.contains("suspected configuration fault"): suspected += 1
                    default: Issue.record("\(organization): \(error)")
                    }
                }
            }
            #expect(marked == 3 && suspected == 3)
            let after = try await fixture.test.store.listMetadata()
            #expect(after.filter { $0.status == .reauthorizationRequired }.count == 3)
            // The others are exactly as they were: tokens kept, nothing written.
            let untouched = after.filter { $0.status == .active }
            #expect(untouched.count == 3 && untouched.allSatisfy { row in before.contains(row) })
            #expect(misconfigured.degradedReason?.contains("suspected configuration fault") == true)
            // A suspected fault is not retried inline: one call to Linear per caller.
            let refusals = await fixture.refreshCalls().count
            _ = try? await misconfigured.accessToken(for: organizations[5])
            #expect(await fixture.refreshCalls().count == refusals + 1)
            misconfigured.resetDeauthorizationBreaker()
            #expect(misconfigured.degradedReason == nil)

            // The right client: reinstate repairs the marked ones, the others refresh as usual.
            let manager = fixture.manager()
            for row in after where row.status == .reauthorizationRequired {
                guard case .reinstated = try await manager.reinstate(for: row.organizationID) else {
                    Issue.record("\(row.organizationID) not reinstated"); continue
                }
            }
            for organization in organizations { _ = try await manager.accessToken(for: organization) }
            #expect(try await fixture.test.store.listMetadata().allSatisfy { $0.status == .active && $0.clientID == LinearEmulator.defaultClient.id })
            for organization in organizations {
                let stored = try #require(try await fixture.vault.load(organizationID: organization))
                #expect(await fixture.emulator.check(refreshToken: stored.refreshToken.value) == .current, "\(organization)")
            }
        }
    }

    @Test("a genuine uninstall is marked at once; a refresh that succeeds closes an open breaker")
    func breakerClosesOnSuccess() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            for organization in ["org-u1", "org-u2", "org-u3"] {
                await fixture.emulator.add(EmulatedOrganization(id: organization, name: organization, urlKey: organization, appUserID: "u"))
            }
            let grants = try await installMinted(["org-u1", "org-u2", "org-u3"], emulator: fixture.emulator, vault: fixture.vault, expiresIn: -60)
            for organization in ["org-u1", "org-u2"] { _ = try await fixture.emulator.uninstall(organizationID: organization) }
            let manager = fixture.manager { $0.deauthorizationThreshold = 1 }
            await #expect(throws: TokenManagerError.reauthorizationRequired(organizationID: "org-u1", reason: "invalid_grant")) {
                _ = try await manager.accessToken(for: "org-u1")
            }
            // A second refusal within the window is too many for a threshold of 1: kept, breaker open.
            await #expect(throws: TokenManagerError.self) { _ = try await manager.accessToken(for: "org-u2") }
            #expect(try await fixture.vault.load(organizationID: "org-u2")?.status == .active)
            #expect(manager.degradedReason != nil)
            _ = try await manager.accessToken(for: "org-u3")
            #expect(manager.degradedReason == nil)
            _ = grants
        }
    }

    @Test("a lock time-out is a temporary failure, never a reason to re-authorize", arguments: StoreKind.allCases)
    func lockTimeoutIsTransient(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install()
            let impatient = TokenVault(store: try await fixture.test.openAnother(lockTimeout: .milliseconds(200)), keyRing: fixture.vault.keyRing)
            let holder = try ChildProcess(
                BuiltProducts.url("linear-oauth-test-helper"), ["hold-lock", fixture.test.databaseURL, "org-acme"],
                environment: childEnvironment([:]))
            defer { holder.kill() }
            try await holder.waitForLine("locked")
            var configuration = TokenManager.Configuration()
            configuration.initialBackoff = .milliseconds(10)
            configuration.maxAttempts = 2
            let manager = TokenManager(vault: impatient, linear: fixture.linear, configuration: configuration)
            do {
                _ = try await manager.accessToken(for: "org-acme")
                Issue.record("no error")
            } catch {
                guard case .temporarilyUnavailable(_, let reason, _)? = error as? TokenManagerError else { Issue.record("\(error)"); return }
                #expect(reason.contains("another process"))
            }
            try holder.send("release")
            #expect(try await holder.waitForExit() == 0)
            #expect(try await fixture.test.store.load(organizationID: "org-acme")?.status == .active)
            #expect(await fixture.refreshCalls().isEmpty)
            // Once the lock is free the same manager gets its token.
            #expect(try await manager.accessToken(for: "org-acme").expiresAt > Date())
            try await impatient.store.close()
        }
    }

    @Test("a fresh token is served without opening the refresh token; a due one opens it, and an unopenable one is undecryptable",
          arguments: StoreKind.allCases)
    func refreshTokenOpenedOnlyToRefresh(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let grant = try await fixture.install(expiresIn: 3_600)
            // The refresh token's column holds the access token's sealed value: sealed for another column, it cannot be opened.
            var row = try #require(try await fixture.test.store.load(organizationID: "org-acme"))
            row.refreshToken = row.accessToken
            try await fixture.test.store.save(row)
            let manager = fixture.manager()
            #expect(try await manager.accessToken(for: "org-acme").token == Secret(grant.accessToken))
            // Due now: refreshing needs the refresh token, which does not open.
            await #expect(throws: TokenManagerError.undecryptable(.authenticationFailed(organizationID: "org-acme", column: .refreshToken))) {
                _ = try await manager.forceRefresh(for: "org-acme")
            }
            #expect(await fixture.refreshCalls().isEmpty)
        }
    }

    @Test("a forced refresh does not settle for a load already in flight: it refreshes", arguments: StoreKind.allCases)
    func forcedRefreshLeadsItsOwnFlight(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let grant = try await fixture.install(expiresIn: 3_600)
            let manager = fixture.manager()
            let forced = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<50 { group.addTask { _ = try await manager.accessToken(for: "org-acme"); return nil } }
                group.addTask { try await manager.forceRefresh(for: "org-acme").token.value }
                var forced: String?
                for try await value in group where value != nil { forced = value }
                return forced
            }
            #expect(forced != nil && forced.map(Secret.init) != Secret(grant.accessToken))
            #expect(await fixture.refreshCalls().count == 1)
        }
    }

    @Test("revoke deletes tokens it cannot decrypt, and says they were not revoked at Linear")
    func revokeUndecryptable() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await TokenVault(store: fixture.test.store, keyRing: try KeyRing(parsing: TestSecrets.keyEntry(id: "lost")))
                .save(Fixtures.installation("org-lost"))
            let result = try await fixture.manager().revoke(for: "org-lost")
            #expect(result.wasInstalled)
            #expect(result.linearFailures.count == 1 && result.linearFailures[0].contains("not revoked at Linear"))
            #expect(try await fixture.test.store.load(organizationID: "org-lost") == nil)
        }
    }

    @Test("revoke: both tokens revoked at Linear, the row gone, `token ORG` exits 3; idempotent", arguments: StoreKind.allCases)
    func revoke(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let grant = try await fixture.install(expiresIn: 3_600)
            let manager = fixture.manager()
            _ = try await manager.accessToken(for: "org-acme")
            let result = try await manager.revoke(for: "org-acme")
            #expect(result.wasInstalled && result.linearFailures.isEmpty)
            // The access token's revoke ended the grant; the refresh token's 400 (already gone) is no failure.
            #expect(await fixture.emulator.requests().filter { $0.endpoint == "revoke" }.map(\.status) == [200, 400])
            #expect(try await fixture.test.store.load(organizationID: "org-acme") == nil)
            await #expect(throws: TokenManagerError.notInstalled(organizationID: "org-acme")) {
                _ = try await manager.accessToken(for: "org-acme")
            }
            #expect(try await manager.revoke(for: "org-acme").wasInstalled == false)
            // Linear no longer accepts either token.
            await #expect(throws: LinearAPIError.self) { _ = try await fixture.linear.graphQL("{ viewer { id } }", accessToken: Secret(grant.accessToken)) }
            await expectKind(.reauthorization, code: "invalid_grant", status: 400) { _ = try await fixture.linear.refresh(Secret(grant.refreshToken!)) }
            let cli = try await runProcess(BuiltProducts.url("linear-oauth"), ["token", "org-acme"], environment: fixture.environment)
            expectOneLineError(cli, status: 3, mentioning: ["not installed"])

            // An access token Linear no longer knows (400), then the refresh token ends the grant: no failure.
            let globex = try await fixture.install("org-globex", expiresIn: 3_600)
            var stale = try #require(try await fixture.vault.load(organizationID: "org-globex"))
            stale.accessToken = Secret("lin_oauth_unknown")
            try await fixture.vault.save(stale)
            await fixture.emulator.clearRequests()
            #expect(try await manager.revoke(for: "org-globex").linearFailures.isEmpty)
            #expect(await fixture.emulator.requests().filter { $0.endpoint == "revoke" }.map(\.status) == [400, 200])
            await expectKind(.reauthorization, code: "invalid_grant", status: 400) { _ = try await fixture.linear.refresh(Secret(globex.refreshToken!)) }

            // Neither revocable (the grant ended at Linear already): reported, and the row deleted all the same.
            let gone = try await fixture.install("org-globex", expiresIn: 3_600)
            _ = try await fixture.linear.revoke(Secret(gone.refreshToken!), hint: .refreshToken)
            let failed = try await manager.revoke(for: "org-globex")
            #expect(failed.wasInstalled && failed.linearFailures.count == 2, "\(failed.linearFailures)")
            #expect(try await fixture.test.store.load(organizationID: "org-globex") == nil)
        }
    }

    @Test("revoke: once the access token's revoke succeeded, a refresh-token revoke without an answer is still reported")
    func revokeUnanswered() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install(expiresIn: 3_600)
            let linear = CaptureServer()
            linear.queue(status: 200, body: "{}")
            linear.respond(status: 503, body: #"{"error":"server_error"}"#)
            let url = try await linear.start()
            var configuration = fixture.linear.configuration
            configuration.apiURL = url
            let manager = TokenManager(vault: fixture.vault, linear: LinearClient(configuration: configuration))
            let result = try await manager.revoke(for: "org-acme")
            await linear.stop()
            #expect(linear.requests.map { $0.body.contains("token_type_hint=access_token") } == [true, false])
            #expect(result.linearFailures.count == 1 && result.linearFailures[0].hasPrefix("refresh_token:"), "\(result.linearFailures)")
            #expect(try await fixture.test.store.load(organizationID: "org-acme") == nil)
        }
    }

    @Test("the background refresher refreshes exactly the installations inside its window", arguments: StoreKind.allCases)
    func backgroundRefresher(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            try await fixture.install("org-acme", expiresIn: 30 * 60)        // inside a 1-hour window
            try await fixture.install("org-globex", expiresIn: 3 * 3_600)    // outside
            await fixture.emulator.add(EmulatedOrganization(id: "org-initech", name: "Initech", urlKey: "initech", appUserID: "u"))
            try await fixture.install("org-initech", expiresIn: 10 * 60)
            var stale = try #require(try await fixture.vault.load(organizationID: "org-initech"))
            stale.status = .reauthorizationRequired
            try await fixture.vault.save(stale)                                // inside, but skipped
            await fixture.emulator.clearRequests()
            var configuration = TokenRefresher.Configuration.openAtOnce
            configuration.window = .seconds(3_600)
            let manager = fixture.manager()
            let refresher = TokenRefresher(manager: manager, configuration: configuration)
            #expect(await refresher.refreshDue() == ["org-acme"])
            #expect(await fixture.refreshCalls().compactMap(\.organizationID) == ["org-acme"])
            #expect(manager.cachedTokenCount == 0, "the refresher does not fill the cache with the rows it visits")
            #expect(try await fixture.vault.load(organizationID: "org-acme")!.expiresAt > Date().addingTimeInterval(20 * 3_600))
        }
    }

    @Test("installations reinstate from the command line: one, already active, still refused, --all")
    func cliReinstate() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            await fixture.emulator.add(EmulatedOrganization(id: "org-dead", name: "Dead", urlKey: "dead", appUserID: "u"))
            try await installMinted(["org-acme", "org-globex", "org-dead"], emulator: fixture.emulator, vault: fixture.vault, expiresIn: 3_600)
            _ = try await fixture.emulator.uninstall(organizationID: "org-dead")
            for organization in ["org-acme", "org-globex", "org-dead"] {
                var marked = try #require(try await fixture.vault.load(organizationID: organization))
                marked.status = .reauthorizationRequired
                marked.lastError = "invalid_grant"
                try await fixture.vault.save(marked)
            }
            let cli = BuiltProducts.url("linear-oauth")
            let one = try await runProcess(cli, ["installations", "reinstate", "org-acme"], environment: fixture.environment)
            #expect(one.status == 0 && one.stdout.hasPrefix("reinstated organization org-acme: active again"), "\(one.stderr)")
            #expect(try await fixture.vault.load(organizationID: "org-acme")?.status == .active)
            let again = try await runProcess(cli, ["installations", "reinstate", "org-acme"], environment: fixture.environment)
            #expect(again.status == 0 && again.stdout.contains("nothing to do"))
            expectOneLineError(try await runProcess(cli, ["installations", "reinstate", "org-dead"], environment: fixture.environment),
                               status: 4, mentioning: ["org-dead", "still refuses", "install the app again"])
            #expect(try await fixture.vault.load(organizationID: "org-dead")?.status == .reauthorizationRequired)
            let all = try await runProcess(cli, ["installations", "reinstate", "--all"], environment: fixture.environment)
            #expect(all.status == 4)
            #expect(all.stdout.contains("org-globex: reinstated") && all.stdout.contains("org-dead: still refused"))
            #expect(all.stdout.contains("reinstated 1, still refused 1, not reinstated 0"))
            expectOneLineError(try await runProcess(cli, ["installations", "reinstate"], environment: fixture.environment),
                               status: 2, mentioning: ["--all"])
        }
    }

    @Test("installations refresh and revoke from the command line")
    func cliRefreshAndRevoke() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install(expiresIn: 3_600)
            let refreshed = try await runProcess(BuiltProducts.url("linear-oauth"), ["installations", "refresh", "org-acme"], environment: fixture.environment)
            #expect(refreshed.status == 0 && refreshed.stdout.hasPrefix("refreshed organization org-acme"))
            #expect(await fixture.refreshCalls().count == 1)
            let revoked = try await runProcess(BuiltProducts.url("linear-oauth"), ["installations", "revoke", "org-acme"], environment: fixture.environment)
            #expect(revoked.status == 0 && revoked.stderr.isEmpty)
            expectOneLineError(
                try await runProcess(BuiltProducts.url("linear-oauth"), ["installations", "revoke", "org-acme"], environment: fixture.environment),
                status: 3, mentioning: ["not installed"])
            // Linear unreachable: a temporary failure, exit 5 (the command does not wait out the time-out).
            var unreachable = fixture.environment
            unreachable["LINEAR_API_URL"] = "http://127.0.0.1:\(try freePort())"
            try await fixture.install("org-globex")
            expectOneLineError(try await runProcess(BuiltProducts.url("linear-oauth"), ["token", "org-globex"], environment: unreachable),
                               status: 5, mentioning: ["org-globex", "could not reach Linear"])

            var environment = fixture.environment
            environment["LINEAR_CLIENT_ID"] = nil
            expectOneLineError(try await runProcess(BuiltProducts.url("linear-oauth"), ["token", "org-acme"], environment: environment),
                               status: 2, mentioning: ["LINEAR_CLIENT_ID"])
        }
    }
}

@Suite("Token manager: the app token and the GraphQL helper", .capturesLogs)
struct AppTokenAndGraphQLTests {
    @Test("appToken: fetched once, cached, stored encrypted, read back by another process, renewed before expiry, rotated with the keys",
          arguments: StoreKind.allCases)
    func appToken(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let calls = { await fixture.emulator.requests().filter { $0.grantType == "client_credentials" }.count }
            let manager = fixture.manager()
            let first = try await manager.appToken()
            #expect(first.expiresAt > Date().addingTimeInterval(29 * 86_400))
            #expect(try await manager.appToken() == first)
            #expect(try await fixture.manager().appToken().token == first.token)   // another manager: from the store
            #expect(await calls() == 1)
            let dump = try await fixture.test.dump()
            #expect(dump.range(of: Data(first.token.value.utf8)) == nil)

            // Inside the renewal margin: a new token is fetched (a 31-day margin covers the stored 30-day token).
            var settings = await fixture.emulator.settings()
            settings.appTokenLifetime = 60
            await fixture.emulator.configure(settings)
            let renewing = fixture.manager { $0.appTokenRenewalMargin = .seconds(31 * 86_400) }
            let second = try await renewing.appToken()
            #expect(second.token != first.token)
            let third = try await renewing.appToken()
            #expect(third.token != second.token)   // 60 s left is inside the margin too
            #expect(await calls() == 3)

            // keys rotate re-encrypts the app token too.
            let k2 = TestSecrets.keyEntry(id: "k2")
            let rotated = TokenVault(store: fixture.test.store, keyRing: try KeyRing(parsing: "\(k2),\(fixture.keyEntry)"))
            #expect(try await rotated.rotateKeys() == 1)
            let stored = try #require(try await fixture.test.store.loadAppToken(clientID: LinearEmulator.defaultClient.id))
            #expect(stored.keyID == "k2")
            #expect(try rotated.keyRing.openAppToken(stored) == third.token)
        }
    }

    @Test("appToken and the installs: the install scopes leave them working; other scopes are refused unless opted in, and then Linear (strictly read) revokes them")
    func appTokenScopesAndInstalls() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            await fixture.emulator.add(EmulatedOrganization(id: "org-beta", name: "Beta", urlKey: "beta", appUserID: "app-user-beta"))
            let installs = try await installMinted(["org-acme", "org-beta"], emulator: fixture.emulator, vault: fixture.vault, expiresIn: 3_600)
            let viewer = "query { viewer { id } }"
            let manager = fixture.manager()
            let calls = { await fixture.emulator.requests().filter { $0.grantType == "client_credentials" }.count }

            // The default asks for the installations' scopes: every install keeps working.
            let app = try await manager.appToken()
            #expect(Set(app.scopes) == ["read", "write"])
            for organization in ["org-acme", "org-beta"] {
                _ = try await manager.graphQL(viewer, for: organization)
            }
            #expect(await fixture.refreshCalls().isEmpty)

            // Other scopes: a configuration error that says why, and nothing asked of Linear.
            do {
                _ = try await manager.appToken(scopes: ["read", "write", "comments:create"])
                Issue.record("other scopes were accepted")
            } catch {
                guard case .configuration(let reason)? = error as? TokenManagerError else { Issue.record("\(error)"); return }
                #expect(reason.contains("revokes") && reason.contains("allowingRevocationOfInstalls"), "\(reason)")
            }
            #expect(await calls() == 1)
            // The installations' scopes written differently are the same scopes.
            #expect(try await manager.appToken(scopes: ["write"]) == app)

            // Opted in: Linear revokes the installs' grants, in every workspace.
            let other = try await manager.appToken(scopes: ["read", "write", "comments:create"], allowingRevocationOfInstalls: true)
            #expect(other.token != app.token)
            #expect(await calls() == 2)
            for organization in ["org-acme", "org-beta"] {
                await #expect(throws: LinearOAuthError.self) { _ = try await fixture.linear.refresh(Secret(installs[organization]!.refreshToken!)) }
                do {
                    _ = try await manager.graphQL(viewer, for: organization)
                    Issue.record("\(organization) survived")
                } catch {
                    guard case .reauthorizationRequired? = error as? TokenManagerError else { Issue.record("\(error)"); continue }
                }
            }
        }
    }

    @Test("GraphQL helper: a 401 refreshes once and retries once; RATELIMITED surfaces with its reset time")
    func graphQLHelper() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install(expiresIn: 3_600)
            // Linear stops accepting the access token before the expiry the vault holds.
            #expect(await fixture.emulator.expireAccessTokens(organizationID: "org-acme") == 1)
            let manager = fixture.manager()
            let answer = try await manager.graphQL("query { viewer { id } }", for: "org-acme")
            struct Viewer: Decodable { struct Inner: Decodable { var id: String }; var viewer: Inner }
            #expect(try answer.decode(Viewer.self).viewer.id == "app-user-acme")
            #expect(await fixture.refreshCalls().count == 1)

            var settings = await fixture.emulator.settings()
            settings.rateLimitRequests = 0
            await fixture.emulator.configure(settings)
            do {
                _ = try await manager.graphQL("query { viewer { id } }", for: "org-acme")
                Issue.record("not rate limited")
            } catch {
                guard case .rateLimited(let resetAt, _)? = error as? LinearAPIError else { Issue.record("\(error)"); return }
                #expect(resetAt != nil)
            }
            #expect(await fixture.refreshCalls().count == 1)
        }
    }
}

@Suite("Token manager: metrics", .capturesLogs)
struct TokenMetricsTests {
    @Test("refreshes by outcome, refresh latency, cache hits and misses")
    func metrics() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install()
            let metrics = TestMetrics()
            let manager = fixture.manager { $0.metricsFactory = metrics }
            _ = try await manager.accessToken(for: "org-acme")
            _ = try await manager.accessToken(for: "org-acme")
            _ = try await manager.accessToken(for: "org-acme")
            await #expect(throws: TokenManagerError.self) { _ = try await manager.accessToken(for: "org-none") }
            #expect(try metrics.expectCounter("linear_oauth_refreshes_total", [("outcome", "success")]).totalValue == 1)
            #expect(try metrics.expectTimer("linear_oauth_refresh_duration_seconds", [("outcome", "success")]).values.count == 1)
            #expect(try metrics.expectCounter("linear_oauth_token_cache_hits_total").totalValue == 2)
            #expect(try metrics.expectCounter("linear_oauth_token_cache_misses_total").totalValue == 2)
        }
    }
}
