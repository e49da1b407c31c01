// A storm in instructions, for valgrind's callgrind (Scripts/callgrind-storm.sh): wall clock on a
// 2-core machine moves by half between runs, a count of the work does not.
//
//   StormCount floor|storm|none CALLERS
//
// The set-up starts the emulator on 127.0.0.1, stores one installation whose token expired a minute
// ago, and warms both paths with a refresh each. Then `storm` starts CALLERS tasks calling `accessToken(for:)`
// of it (the first leads: load, lock, refresh, write, commit; the others follow), and `floor` starts
// CALLERS tasks awaiting one shared task that makes the same refresh call to the same emulator (a
// bare single flight). `none` stops after the set-up. Each run's total less the `none` run's,
// divided by CALLERS, is the work per caller, the leader's one refresh included.
import Crypto
import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthSQLite
import LinearOAuthTestSupport
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count == 3, ["floor", "storm", "none"].contains(arguments[1]), let callers = Int(arguments[2]), callers > 0 else {
    FileHandle.standardError.write(Data("usage: StormCount floor|storm|none CALLERS\n".utf8))
    exit(2)
}
let mode = arguments[1]

/// Where the callers check out: a count of those still running; the last one out resumes the storm.
final class Board: @unchecked Sendable {
    let running: Atomic<Int>
    var whenDone: CheckedContinuation<Void, Never>?
    init(callers: Int) { running = Atomic(callers) }
    func done() {
        if running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { whenDone!.resume() }
    }
}

/// Starts `callers` unstructured tasks running `call`, and returns when all are done.
@Sendable func storm(_ callers: Int, _ call: @escaping @Sendable () async -> Void) async {
    let board = Board(callers: callers)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        board.whenDone = continuation
        for _ in 0..<callers {
            Task {
                await call()
                board.done()
            }
        }
    }
}

@Sendable func run() async throws {
    let organizationID = "org-acme"
    let emulator = LinearEmulator()
    let url = try await emulator.start()
    let linear = LinearClient(configuration: LinearClientConfiguration(
        clientID: LinearEmulator.defaultClient.id, clientSecret: Secret(LinearEmulator.defaultClient.secret), apiURL: url))
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let store = try SQLiteTokenStore(path: directory.path + "/storm.sqlite", maxConnections: 8)
    try await store.migrate()
    let vault = TokenVault(store: store, keyRing: try KeyRing(keys: [("storm", SymmetricKey(size: .bits256))]))
    let manager = TokenManager(vault: vault, linear: linear)
    let grant = try await emulator.mintGrant(organizationID: organizationID)
    try await vault.save(Installation(
        organizationID: organizationID, appUserID: "app-user-storm", accessToken: Secret(grant.accessToken),
        refreshToken: Secret(grant.refreshToken!), expiresAt: Date().addingTimeInterval(-60), scopes: ["read", "write"]))
    // Both paths warmed, whatever the mode: one refresh through the manager, one bare.
    _ = try await manager.accessToken(for: organizationID)
    let warm = try await emulator.mintGrant(organizationID: organizationID)
    _ = try await linear.refresh(Secret(warm.refreshToken!))
    // The installation expired again, not cached.
    let expired = try await emulator.mintGrant(organizationID: organizationID)
    try await vault.save(Installation(
        organizationID: organizationID, appUserID: "app-user-storm", accessToken: Secret(expired.accessToken),
        refreshToken: Secret(expired.refreshToken!), expiresAt: Date().addingTimeInterval(-60), scopes: ["read", "write"]))
    manager.evict(organizationID)
    let shared = try await emulator.mintGrant(organizationID: organizationID)
    await emulator.clearRequests()
    switch mode {
    case "storm":
        await storm(callers) { _ = try! await manager.accessToken(for: organizationID) }
    case "floor":
        let task = Mutex<Task<LinearTokenResponse, any Error>?>(nil)
        await storm(callers) {
            let call = task.withLock { task in
                if let task { return task }
                let started = Task { try await linear.refresh(Secret(shared.refreshToken!)) }
                task = started
                return started
            }
            _ = try! await call.value
        }
    default:
        break
    }
    // Exactly one refresh call, whatever the mode but `none`: a count of anything else is not a storm.
    let refreshes = await emulator.requests().filter { $0.grantType == "refresh_token" }.count
    guard refreshes == (mode == "none" ? 0 : 1) else { fatalError("\(refreshes) refresh calls in a \(mode) run") }
    try await store.close()
    await emulator.stop()
    print("\(mode): \(callers) callers, one refresh call")
}

runBlockingMain("StormCount", run)
