import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthTestSupport
import Synchronization
import Testing

/// A day at scale, simulated in emulated time: installations whose expiries are spread over 24 hours,
/// several instances (each a token manager with its own connection pool and background refresher,
/// as separate processes would have) on one PostgreSQL, clients asking random instances for random
/// installations' tokens, and the emulator as Linear. The day passes in steps of ``step`` emulated
/// seconds; each instance makes a background pass every minute (+ up to 20 % jitter) at the emulated
/// time, and the refreshes themselves are real calls to the emulator and real writes.
///
/// Two ways to begin the day:
/// - ``Start/running``: the fleet has been running for a day. The refreshers' windows are open and
///   every token expiring within the window has been refreshed, so the expiries are spread evenly
///   from the end of the window to 24 hours from now (a token lives 24 hours: none expires later).
///   This is every ordinary day.
/// - ``Start/cold``: the instances start now over expiries spread evenly from 10 minutes to 24 hours
///   from now (a first start, or every instance restarted after an outage): the refreshers' windows
///   open gradually (``TokenRefresher/Configuration/windowGrowth``), and the catch-up runs at 1.15
///   times the steady rate.
struct DaySimulation {
    enum Start { case running, cold }
    var installations: Int
    var instances = 4
    /// Clients' token requests per step, to random instances, for random installations.
    var requestsPerStep = 20
    var step: TimeInterval = 15
    var day: TimeInterval = 86_400
    /// How the day begins.
    var beginning = Start.cold
    var refresher = TokenRefresher.Configuration()

    struct Refresh: Sendable {
        var organizationID: String
        /// Emulated time of the refresh.
        var at: Date
        var expiresAt: Date
        /// Whether it happened during the background passes of its step (else while clients asked).
        var duringPasses: Bool
        /// Which instance made it.
        var instance: Int
    }

    struct Outcome: Sendable {
        var start: Date
        var firstExpiries: [String: Date]
        var refreshes: [Refresh]
        var failures: [String]
        var linearRefreshCalls: [EmulatorRequestRecord]
        var requests: Int
        var expiredServed: [String]
        var storedExpiries: [String: Date]
        var cachedTokens: [Int]
        var wallClock: Duration

        /// Refreshes per bucket of `width` seconds of emulated time, over the day.
        func perBucket(_ width: TimeInterval, day: TimeInterval) -> [Int] {
            var buckets = [Int](repeating: 0, count: Int((day / width).rounded(.up)))
            for refresh in refreshes {
                let index = Int(refresh.at.timeIntervalSince(start) / width)
                if buckets.indices.contains(index) { buckets[index] += 1 }
            }
            return buckets
        }

        /// The peak bucket over the mean bucket.
        func peakOverMean(_ width: TimeInterval, day: TimeInterval) -> Double {
            let buckets = perBucket(width, day: day)
            let mean = Double(buckets.reduce(0, +)) / Double(buckets.count)
            return Double(buckets.max() ?? 0) / max(mean, 1e-9)
        }

        /// What broke the promise, per installation: every expiry met by exactly one refresh while it
        /// was due (within the window before it, never after it), and nothing left expired at the end.
        func violations(window: TimeInterval, end: Date) -> [String] {
            var problems: [String] = []
            let byOrganization = Dictionary(grouping: refreshes, by: \.organizationID)
            for (organization, first) in firstExpiries {
                var expiry = first
                for refresh in (byOrganization[organization] ?? []).sorted(by: { $0.at < $1.at }) {
                    if refresh.at > expiry { problems.append("\(organization): refreshed \(Int(refresh.at.timeIntervalSince(expiry))) s after it expired") }
                    if refresh.at < expiry.addingTimeInterval(-window) {
                        problems.append("\(organization): refreshed \(Int(expiry.timeIntervalSince(refresh.at))) s before expiry, not yet due (a second refresh?)")
                    }
                    expiry = refresh.expiresAt
                }
                if expiry <= end { problems.append("\(organization): left expired at the end of the day") }
                if let stored = storedExpiries[organization], abs(stored.timeIntervalSince(expiry)) > 1 {
                    problems.append("\(organization): the store's expiry is not the last refresh's")
                }
            }
            return problems
        }
    }

    /// Runs the day on `world` (PostgreSQL), with a store per instance.
    func run(_ world: World, openStore: () async throws -> any TokenStore) async throws -> Outcome {
        let wallClock = ContinuousClock.now
        let start = Date()
        // A running fleet's refreshers opened their windows a day ago.
        let clock = EmulatedClock(beginning == .running ? start.addingTimeInterval(-day) : start)
        let firstExpiry = beginning == .running ? refresher.window.timeInterval : 600
        let ids = (0..<installations).map { String(format: "org-day-%06d", $0) }
        var firstExpiries: [String: Date] = [:]
        for (index, id) in ids.enumerated() {
            firstExpiries[id] = start.addingTimeInterval(firstExpiry + Double(index + 1) * (day - firstExpiry) / Double(installations))
        }
        // Installed: workspaces the emulator knows, with grants it minted, expiries spread over the day.
        for batch in stride(from: 0, to: ids.count, by: 1000) {
            var rows: [Installation] = []
            for id in ids[batch..<min(batch + 1000, ids.count)] {
                await world.emulator.add(EmulatedOrganization(id: id, name: id, urlKey: id, appUserID: "app-user-\(id)"))
                let grant = try await world.emulator.mintGrant(organizationID: id)
                rows.append(Installation(
                    organizationID: id, appUserID: "app-user-\(id)", accessToken: Secret(grant.accessToken),
                    refreshToken: Secret(grant.refreshToken!), expiresAt: firstExpiries[id]!, scopes: ["read", "write"],
                    clientID: LinearEmulator.defaultClient.id))
            }
            try await world.vault.save(rows)
        }
        await world.emulator.clearRequests()

        let refreshes = Mutex<[Refresh]>([])
        let passing = Mutex(false)
        let failures = Mutex<[String]>([])
        var stores: [any TokenStore] = []
        var managers: [TokenManager] = []
        var refreshers: [TokenRefresher] = []
        for instance in 0..<instances {
            let store = try await openStore()
            stores.append(store)
            var configuration = TokenManager.Configuration()
            configuration.refreshAhead = true
            configuration.now = { clock.now }
            configuration.onEvent = { event in
                switch event {
                case .refreshed(let organizationID, let expiresAt):
                    let duringPasses = passing.withLock { $0 }
                    refreshes.withLock {
                        $0.append(Refresh(organizationID: organizationID, at: clock.now, expiresAt: expiresAt, duringPasses: duringPasses, instance: instance))
                    }
                case .refreshFailed(let organizationID, let reason):
                    failures.withLock { $0.append("\(organizationID): refresh failed: \(reason)") }
                case .reauthorizationRequired(let organizationID, let reason):
                    failures.withLock { $0.append("\(organizationID): re-authorization required: \(reason)") }
                default: break
                }
            }
            let manager = TokenManager(vault: TokenVault(store: store, keyRing: world.vault.keyRing), linear: world.linear, configuration: configuration)
            managers.append(manager)
            refreshers.append(TokenRefresher(manager: manager, configuration: refresher))
        }
        defer { for store in stores { Task { try? await store.close() } } }
        clock.set(start)
        let (instanceManagers, instanceRefreshers) = (managers, refreshers)

        var random = SeededGenerator(seed: 14)  // the same day every run
        let interval = refresher.interval.timeInterval
        var nextPass = (0..<instances).map { _ in start.addingTimeInterval(Double.random(in: 0..<1, using: &random) * interval) }
        var requests = 0
        var expiredServed: [String] = []
        let steps = Int((day / step).rounded(.up))
        for index in 0...steps {
            let now = start.addingTimeInterval(Double(index) * step)
            clock.set(now)
            let due = (0..<instances).filter { nextPass[$0] <= now }
            for instance in due {
                nextPass[instance] = now.addingTimeInterval(interval * (1 + refresher.jitter * Double.random(in: 0..<1, using: &random)))
            }
            passing.withLock { $0 = true }
            await withTaskGroup(of: Void.self) { group in
                for instance in due {
                    group.addTask { await instanceRefreshers[instance].refreshDue(now: now) }
                }
            }
            passing.withLock { $0 = false }
            let asks = (0..<requestsPerStep).map { _ in (ids[Int.random(in: 0..<ids.count, using: &random)], Int.random(in: 0..<instances, using: &random)) }
            let served = await withTaskGroup(of: String?.self) { group in
                for (organization, instance) in asks {
                    group.addTask {
                        do {
                            let token = try await instanceManagers[instance].accessToken(for: organization)
                            return token.expiresAt > now ? nil : "\(organization): served a token expired at \(token.expiresAt) at \(now)"
                        } catch {
                            return "\(organization): \(error)"
                        }
                    }
                }
                var problems: [String] = []
                for await problem in group { if let problem { problems.append(problem) } }
                return problems
            }
            requests += asks.count
            expiredServed += served
        }
        for manager in managers { await manager.finishBackgroundRefreshes() }

        var storedExpiries: [String: Date] = [:]
        for batch in stride(from: 0, to: ids.count, by: 1000) {
            for id in ids[batch..<min(batch + 1000, ids.count)] {
                storedExpiries[id] = try await world.vault.load(organizationID: id)?.expiresAt
            }
        }
        let calls = await world.emulator.requests().filter { $0.grantType == "refresh_token" }
        return Outcome(
            start: start, firstExpiries: firstExpiries, refreshes: refreshes.withLock { $0 }, failures: failures.withLock { $0 },
            linearRefreshCalls: calls, requests: requests, expiredServed: expiredServed, storedExpiries: storedExpiries,
            cachedTokens: managers.map(\.cachedTokenCount), wallClock: ContinuousClock.now - wallClock)
    }

    /// Asserts the day's promises, and returns its figures as lines.
    func check(_ outcome: Outcome, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        let end = outcome.start.addingTimeInterval(day)
        let violations = outcome.violations(window: refresher.window.timeInterval, end: end)
        #expect(violations.isEmpty, "\(violations.count) violations, first: \(violations.prefix(5))", sourceLocation: sourceLocation)
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(5))", sourceLocation: sourceLocation)
        #expect(outcome.expiredServed.isEmpty, "\(outcome.expiredServed.count) bad answers, first: \(outcome.expiredServed.prefix(5))",
            sourceLocation: sourceLocation)
        // Every call Linear saw was a refresh we kept, with a refresh token never presented before.
        let calls = outcome.linearRefreshCalls
        #expect(calls.count == outcome.refreshes.count, "Linear saw \(calls.count) refreshes, the instances stored \(outcome.refreshes.count)",
            sourceLocation: sourceLocation)
        #expect(calls.allSatisfy { $0.outcome == "ok" }, "\(Set(calls.map(\.outcome)))", sourceLocation: sourceLocation)
        let fingerprints = calls.compactMap(\.refreshTokenFingerprint)
        #expect(Set(fingerprints).count == fingerprints.count, "a refresh token was presented twice", sourceLocation: sourceLocation)
        let minute = outcome.peakOverMean(60, day: day), fiveMinutes = outcome.peakOverMean(300, day: day)
        let hour = outcome.peakOverMean(3600, day: day)
        let perMinute = outcome.perBucket(60, day: day)
        let wall = outcome.wallClock.seconds
        let peaks = perMinute.enumerated().sorted { $0.element > $1.element }.prefix(3).map { minute, refreshes in
            let inside = outcome.refreshes.filter { Int($0.at.timeIntervalSince(outcome.start) / 60) == minute }
            return String(format: "+%02d:%02d %d (%d by passes)", minute / 60, minute % 60, refreshes, inside.filter(\.duringPasses).count)
        }
        let byPasses = outcome.refreshes.filter(\.duringPasses).count
        return [
            "day (\(beginning == .running ? "a running fleet" : "a cold start")): \(installations) installations, \(instances) instances, \(Int(day / 3600)) h of emulated time in \(String(format: "%.0f", wall)) s",
            "day: \(outcome.refreshes.count) refreshes (\(outcome.refreshes.count - installations) second expiries inside the day), "
                + "\(calls.count) Linear refresh calls, every expiry refreshed exactly once while due: \(violations.isEmpty ? "yes" : "NO")",
            "day: \(outcome.requests) client requests, expired tokens served: \(outcome.expiredServed.count), failures: \(outcome.failures.count)",
            "day: Linear's refresh rate, mean \(String(format: "%.1f", Double(perMinute.reduce(0, +)) / Double(perMinute.count)))/min, peak/mean "
                + "per minute \(String(format: "%.2f", minute))x, per 5 min \(String(format: "%.2f", fiveMinutes))x, per hour \(String(format: "%.2f", hour))x",
            "day: busiest minutes (emulated time since the start): \(peaks.joined(separator: ", "))",
            "day: \(byPasses) refreshes by the background passes, \(outcome.refreshes.count - byPasses) while clients asked",
            "day: refreshes per instance (the due work split, each row by one): \((0..<instances).map { instance in String(outcome.refreshes.lazy.filter { $0.instance == instance }.count) }.joined(separator: " / "))",
            "day: cached tokens per instance at the end: \(outcome.cachedTokens)",
            "day: real refreshes per second achieved: \(String(format: "%.0f", Double(outcome.refreshes.count) / max(wall, 1e-9)))",
        ]
    }
}

extension DaySimulation.Start: CustomTestStringConvertible {
    var testDescription: String { self == .running ? "a running fleet" : "a cold start" }
}

extension FaultSuite {
    @Suite("Faults: a day of refreshes, four instances, emulated time")
    struct DayTests {
        @Test("1,000 installations over a day: every expiry refreshed once, while due; none served expired; no herd",
            arguments: [DaySimulation.Start.running, .cold])
        func smallDay(beginning: DaySimulation.Start) async throws {
            try await withWorld(.postgres) { world in
                var simulation = DaySimulation(installations: 1_000)
                simulation.beginning = beginning
                let outcome = try await simulation.run(world) { try await world.openAnotherPostgresStore() }
                for line in simulation.check(outcome) { report(line) }
                // A thousand expiries a day are about 42 an hour: the hour is the bucket that is not noise.
                #expect(outcome.peakOverMean(3600, day: simulation.day) <= 1.5)
            }
        }
    }
}

/// The day at scale: `LINEAR_OAUTH_SCALE=1 swift test -c release -Xswiftc -enable-testing --filter DayAtScale`
/// (`LINEAR_OAUTH_DAY_ROWS`, default 100,000). Figures go to stderr and `.build/day-report.txt`.
@Suite("Scale: a day of 100,000 installations, four instances (LINEAR_OAUTH_SCALE=1)", .enabled(if: ScaleProfile.enabled), .serialized, .capturesLogs)
struct DayAtScaleTests {
    @Test("every expiry refreshed once while due, none served expired, Linear's peak rate within 1.5x of its mean",
        arguments: [DaySimulation.Start.running, .cold])
    func dayAtScale(beginning: DaySimulation.Start) async throws {
        let rows = Int(ProcessInfo.processInfo.environment["LINEAR_OAUTH_DAY_ROWS"] ?? "") ?? 100_000
        try await withWorld(.postgres) { world in
            var simulation = DaySimulation(installations: rows)
            simulation.beginning = beginning
            simulation.requestsPerStep = 50
            let outcome = try await simulation.run(world) { try await world.openAnotherPostgresStore() }
            let lines = simulation.check(outcome)
            for line in lines { FileHandle.standardError.write(Data("scale: \(line)\n".utf8)) }
            let path = FileManager.default.currentDirectoryPath + "/.build/day-report.txt"
            if let handle = FileHandle(forWritingAtPath: path) ?? { FileManager.default.createFile(atPath: path, contents: nil); return FileHandle(forWritingAtPath: path) }() {
                handle.seekToEndOfFile()
                handle.write(Data((lines.joined(separator: "\n") + "\n").utf8))
                try? handle.close()
            }
            switch beginning {
            case .running:
                // An ordinary day: the minute is the bucket.
                #expect(outcome.peakOverMean(60, day: simulation.day) <= 1.5, "Linear's peak minute")
            case .cold:
                // A cold start: the catch-up at 1.15x (windowGrowth), and its echo a day later.
                #expect(outcome.peakOverMean(60, day: simulation.day) <= 1.5, "Linear's peak minute")
                #expect(outcome.peakOverMean(3600, day: simulation.day) <= 1.5, "Linear's peak hour")
            }
        }
    }
}
