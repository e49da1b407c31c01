import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthTestSupport
import Testing

extension FaultSuite {
    @Suite("Faults: several processes on one database under load")
    struct MultiProcessTests {
        @Test("4 service instances on one PostgreSQL, 50 installations expiring together, 200 concurrent clients: exactly one refresh per installation per expiry")
        func instancesOnPostgres() async throws {
            try await expiries(.postgres, instances: 4, clients: 200)
        }

        @Test("SQLite: two processes on one file under load: no database-is-locked errors, exactly one refresh per installation per expiry")
        func processesOnSQLite() async throws {
            try await expiries(.sqlite, instances: 2, clients: 100)
        }

        private func expiries(_ kind: StoreKind, instances count: Int, clients: Int) async throws {
            var settings = EmulatorSettings()
            // Tokens live 20 s and the instances refresh them within 16 s of expiry: a new expiry every
            // 4 to 12 s (refresh ahead starts at a random point of the margin's first half; a caller
            // waits for a refresh once 8 s are left).
            settings.accessTokenLifetime = 20
            try await withWorld(kind, settings: settings) { world in
                let organizations = (0..<50).map { String(format: "org-load-%02d", $0) }
                try await world.install(organizations, expiresIn: -1)
                var instances: [ServeInstance] = []
                defer { for instance in instances { instance.child.kill() } }
                // From before the instances start: their background refreshers count from then.
                let began = Date()
                for _ in 0..<count { instances.append(try await ServeInstance.start(world.environment(["LINEAR_OAUTH_REFRESH_MARGIN": "16"]))) }
                let load = await runLoad(
                    instances: instances.map(\.url), organizations: organizations, clients: clients,
                    duration: FaultProfile.loadDuration, apiKey: world.apiKey,
                    // The checks get the load client's connection pool: the shared client's 8 connections would queue them.
                    linear: LinearClient(configuration: world.linear.configuration, httpClient: loadClient), emulator: world.emulator)
                let elapsed = Date().timeIntervalSince(began)
                #expect(load.statuses.keys.sorted() == [200], "answers: \(load.statuses) \(load.unexpected)")
                #expect(load.transportErrors == 0)
                #expect(load.expiredServed == 0)
                let calls = await refreshCalls(world.emulator)
                var refreshes = 0
                for organization in organizations {
                    let mine = calls[organization] ?? []
                    refreshes += mine.count
                    #expect(!mine.isEmpty, "\(organization) was never refreshed")
                    // One refresh per expiry: each used a refresh token no other call used, and none was a
                    // replay or refused (a second refresh of the same expiry would be one of those).
                    #expect(mine.allSatisfy { $0.outcome == "ok" }, "\(organization): \(mine.map(\.outcome))")
                    #expect(Set(mine.compactMap(\.refreshTokenFingerprint)).count == mine.count)
                    // Never before the margin: at most one refresh per 4 s of the token's 20, plus the first, plus one
                    // per pass of each instance's background refresher (every 60-72 s, window 1 hour).
                    let allowed = Int(elapsed / 4) + 1 + count * (1 + Int(elapsed / 60))
                    #expect(mine.count <= allowed, "\(organization) was refreshed \(mine.count) times in \(Int(elapsed)) s")
                }
                // The tokens handed out are ones Linear accepts (each organization's first, then one answer in
                // 50, checked as they arrived): at least half of the organizations' first tokens checked.
                #expect(load.checkedWithLinear >= organizations.count / 2, "checked \(load.checkedWithLinear), \(load.expiredBeforeChecked) expired first, \(load.uncheckable) unanswered")
                #expect(load.refusedByLinear == 0, "Linear refused \(load.refusedByLinear) of \(load.checkedWithLinear) tokens handed out")
                try await world.expectNoGrantLost(organizations)
                for instance in instances { #expect(!instance.child.hasExited) }
                // What the instances themselves counted (Prometheus): refreshes by outcome.
                var outcomes: [String: Double] = [:]
                for instance in instances {
                    let metrics = try await RawHTTP.request(.GET, instance.url + "/metrics").text
                    for line in metrics.split(separator: "\n") where line.hasPrefix("linear_oauth_refreshes_total{") {
                        let parts = line.split(separator: " ")
                        let outcome = parts[0].split(separator: "\"").dropFirst().first.map(String.init) ?? "?"
                        outcomes[outcome, default: 0] += Double(parts.last ?? "0") ?? 0
                    }
                }
                let counted = outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }.joined(separator: ", ")
                let answers = load.statuses.sorted { $0.key < $1.key }.map { "\($0.value) x \($0.key)" }.joined(separator: ", ")
                report("\(count) instances on \(kind), \(clients) clients, \(Int(elapsed)) s: \(load.requests) requests (\(answers)), "
                    + "p50 \(String(format: "%.1f", load.p50Milliseconds)) ms, p99 \(String(format: "%.1f", load.p99Milliseconds)) ms; \(refreshes) refreshes for \(organizations.count) installations, "
                    + "one per expiry; 0 replays, 0 refused, 0 grants lost; \(load.checkedWithLinear) served tokens checked with Linear, "
                    + "all accepted (\(load.expiredBeforeChecked) expired while the check waited, \(load.uncheckable) checks unanswered, "
                    + "\(load.expiredInTransit) expired on the way to the client); the instances counted: \(counted)")
            }
        }
    }
}
