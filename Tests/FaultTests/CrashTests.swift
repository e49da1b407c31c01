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
                var heldRuns = 0
                for run in 0..<FaultProfile.crashRuns {
                    // One run in four kills while Linear's answer is on its way, at a point fixed by the
                    // emulator rather than by timing: the answer is lost whatever the machine's speed.
                    let held = run % 4 == 0
                    if held { await world.emulator.holdNextRefreshResponse() }
                    let before = await world.emulator.tokenCallsArrived(), heldBefore = await world.emulator.responsesHeld()
                    let child = try ChildProcess(helper, ["refresh-loop", world.databaseURL, organizations.joined(separator: ",")], environment: world.environment())
                    try await child.waitForLine("ready")
                    if held {
                        try await waitUntil(timeout: .seconds(120), "Linear to rotate and hold its answer") {
                            await world.emulator.responsesHeld() > heldBefore
                        }
                        heldRuns += 1
                    } else {
                        try await waitUntil(timeout: .seconds(120), "a refresh to reach Linear") { await world.emulator.tokenCallsArrived() > before }
                        // A random point of the refresh cycle (the kill point, not a wait for state).
                        try await Task.sleep(for: .microseconds(Int.random(in: 0...25_000)))
                    }
                    child.kill()
                    await world.emulator.releaseHeldResponses()
                    // Did the kill fall between Linear's answer and the commit? Then only the grace period saves the grant.
                    // Read under the refresh lock: it waits for a commit the dead process had already sent.
                    var lost = false
                    for organization in organizations {
                        let stored = try await world.vault.withRefreshLock(organizationID: organization) { current, _ in current }
                        let refreshToken = try #require(stored, "\(organization) is gone").refreshToken.value
                        if await world.emulator.check(refreshToken: refreshToken) == .replayable { lost = true }
                    }
                    if lost { answerLost += 1 }
                    if held { #expect(lost, "run \(run): killed while Linear's answer was held, yet no refresh token is waiting for a replay") }
                    // Restart: a new process (a new manager over the same store) refreshes every installation.
                    let restarted = world.manager()
                    for organization in organizations { try await restarted.forceRefresh(for: organization) }
                }
                let calls = await world.emulator.requests().filter { $0.grantType == "refresh_token" }
                let replayed = calls.filter { $0.outcome == "replayed" }.count
                #expect(answerLost >= heldRuns && heldRuns > 0, "\(answerLost) lost answers in \(heldRuns) runs killed while the answer was held")
                #expect(replayed >= answerLost)
                try await world.expectValidTokens(organizations, manager: world.manager())
                try await world.expectNoGrantLost(organizations)
                report("SIGKILL (\(kind)): \(FaultProfile.crashRuns) runs, \(calls.count) refresh calls, \(answerLost) kills after Linear "
                    + "rotated but before the commit, \(replayed) answers recovered by replay in the grace period; 0 grants lost")
            }
        }
    }
}
