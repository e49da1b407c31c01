import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthTestSupport
import Testing

extension FaultSuite {
    @Suite("Faults: SIGKILL in the middle of refreshes")
    struct CrashTests {
        @Test("100 runs of: refreshing, SIGKILL at a random point, restart; every installation still yields a valid token and no grant is lost",
              arguments: StoreKind.allCases)
        func killDuringRefresh(kind: StoreKind) async throws {
            var settings = EmulatorSettings()
            // Linear takes a moment to answer, so that kills land before, during and after its answer.
            settings.latencyMilliseconds = 3
            try await withWorld(kind, settings: settings) { world in
                let organizations = (0..<4).map { "org-crash-\($0)" }
                try await world.install(organizations, expiresIn: -60)
                let helper = BuiltProducts.url("linear-oauth-test-helper")
                var answerLost = 0
                for _ in 0..<FaultProfile.crashRuns {
                    let before = await world.emulator.tokenCallsArrived()
                    let child = try ChildProcess(helper, ["refresh-loop", world.databaseURL, organizations.joined(separator: ",")], environment: world.environment())
                    try await child.waitForLine("ready")
                    try await waitUntil("a refresh to reach Linear") { await world.emulator.tokenCallsArrived() > before }
                    // A random point of the refresh cycle (the kill point, not a wait for state).
                    try await Task.sleep(for: .microseconds(Int.random(in: 0...25_000)))
                    child.kill()
                    // Did the kill fall between Linear's answer and the commit? Then only the grace period saves the grant.
                    var lost = false
                    for organization in organizations {
                        let stored = try #require(try await world.vault.load(organizationID: organization))
                        if await world.emulator.check(refreshToken: stored.refreshToken.value) == .replayable { lost = true }
                    }
                    if lost { answerLost += 1 }
                    // Restart: a new process (a new manager over the same store) refreshes every installation.
                    let restarted = world.manager()
                    for organization in organizations { try await restarted.forceRefresh(for: organization) }
                }
                let calls = await world.emulator.requests().filter { $0.grantType == "refresh_token" }
                let replayed = calls.filter { $0.outcome == "replayed" }.count
                #expect(answerLost > 0, "no kill fell between Linear's answer and the commit: the test did not test recovery")
                #expect(replayed >= answerLost)
                try await world.expectValidTokens(organizations, manager: world.manager())
                try await world.expectNoGrantLost(organizations)
                report("SIGKILL (\(kind)): \(FaultProfile.crashRuns) runs, \(calls.count) refresh calls, \(answerLost) kills after Linear "
                    + "rotated but before the commit, \(replayed) answers recovered by replay in the grace period; 0 grants lost")
            }
        }
    }
}
