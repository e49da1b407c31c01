// The cached path in instructions, over many keys, for Scripts/callgrind-hot-path.sh (valgrind
// cannot run the test bundle, so this is a plain executable, built only with
// LINEAR_OAUTH_BENCHMARKS=1):
//
//   HotPathCount bare|ours|none KEYS ROUNDS
//
// The set-up stores KEYS installations and caches every one in a token manager (a first
// `accessToken(for:)` each, in order), and fills a lock-protected dictionary with the same tokens.
// Then ROUNDS times over the KEYS in the same order: `bare` reads each from the dictionary (the
// TokenBenchmarks baseline: a `Mutex` around `[String: AccessToken]`, read in an async function),
// `ours` asks the manager (`accessToken(for:)`, a cache hit), `none` does nothing. Going over the
// keys in the order they were cached, every hit is on the least recently used entry: each one
// moves an entry from the back of the cache's recency list to its front, the list's most costly
// move. Under `valgrind --tool=callgrind`, each run's total less the `none` run's, divided by
// KEYS x ROUNDS, is a hit's instructions, repeatable where wall clock on this machine is not
// (TokenBenchmarks' hot pair measures one key, whose list move is a comparison).
import Foundation
import LinearOAuth
import LinearOAuthSQLite
import LinearOAuthTestSupport
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count == 4, ["bare", "ours", "none"].contains(arguments[1]),
    let keys = Int(arguments[2]), let rounds = Int(arguments[3]), keys > 0, rounds > 0
else {
    FileHandle.standardError.write(Data("usage: HotPathCount bare|ours|none KEYS ROUNDS\n".utf8))
    exit(2)
}
let mode = arguments[1]

/// The baseline's dictionary, read as TokenBenchmarks' `lookup` reads it.
final class Dictionary: Sendable {
    let tokens = Mutex<[String: TokenManager.AccessToken]>([:])

    @inline(never)
    func lookup(_ organizationID: String) async -> TokenManager.AccessToken? {
        tokens.withLock { $0[organizationID] }
    }
}

/// The whole run (on a detached task: see `runBlockingMain`).
@Sendable func run() async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let store = try SQLiteTokenStore(path: directory.path + "/hot.sqlite", maxConnections: 8)
    try await store.migrate()
    let vault = TokenVault(store: store, keyRing: try KeyRing(parsing: KeyRing.generateEntry(id: "hot")))
    let expiresAt = Date().addingTimeInterval(86_400)
    let organizations = (0..<keys).map { _ in "org-\(UUID().uuidString.lowercased())" }
    try await store.save(organizations.map {
        try vault.keyRing.seal(Installation(
            organizationID: $0, appUserID: "app-user-\($0)",
            accessToken: Secret("lin_oauth_" + String(repeating: "a", count: 64)),
            refreshToken: Secret("lin_refresh_" + String(repeating: "r", count: 64)), expiresAt: expiresAt, scopes: ["read", "write"]))
    })
    let manager = TokenManager(vault: vault, linear: LinearClient(configuration: LinearClientConfiguration(
        clientID: "hot", clientSecret: Secret("hot-secret"), apiURL: "http://127.0.0.1:9")))
    let dictionary = Dictionary()
    // Both filled, whatever the mode, so that the set-up is the same in every run.
    for organizationID in organizations {
        let token = try await manager.accessToken(for: organizationID)
        dictionary.tokens.withLock { $0[organizationID] = token }
    }
    var found = 0
    switch mode {
    case "bare":
        for _ in 0..<rounds {
            for organizationID in organizations { found += await dictionary.lookup(organizationID) != nil ? 1 : 0 }
        }
    case "ours":
        for _ in 0..<rounds {
            for organizationID in organizations {
                found += try await manager.accessToken(for: organizationID).organizationID == organizationID ? 1 : 0
            }
        }
    default:
        found = keys * rounds
    }
    precondition(found == keys * rounds)
    try await store.close()
    print("\(mode): \(keys) keys, \(rounds) rounds")
}

runBlockingMain("HotPathCount", run)
