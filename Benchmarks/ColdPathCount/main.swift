// The SQLite cold path in instructions, for Scripts/callgrind-cold-path.sh (valgrind cannot run the
// test bundle, so this is a plain executable, built only with LINEAR_OAUTH_BENCHMARKS=1):
//
//   ColdPathCount bare|ours|load|open|none ITERATIONS
//
// The set-up stores ITERATIONS installations, then runs one path over each of them once, in the
// same order: `bare` (SQLiteNIO's `query` of the row on a plain connection), `ours`
// (`accessToken(for:)` of an installation not yet cached: load from the store, decrypt, cache),
// `load` (the store's load alone), `open` (the load and the access token's decryption: what `ours`
// does without the token manager) or `none` (the same set-up, no iterations). Each load is a real first request, with nothing to evict
// (an earlier version evicted one installation before each call, which charged the path for the
// eviction). Under `valgrind --tool=callgrind`, each run's total less the `none` run's, divided by
// ITERATIONS, is the path's instructions: repeatable on a noisy machine where wall clock is not.
import Foundation
import LinearOAuth
import LinearOAuthSQLite
import LinearOAuthTestSupport
import SQLiteNIO

let arguments = CommandLine.arguments
guard arguments.count == 3, ["bare", "ours", "none", "load", "open"].contains(arguments[1]), let iterations = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: ColdPathCount bare|ours|none|load|open ITERATIONS\n".utf8))
    exit(2)
}
let mode = arguments[1]

/// The whole run (on a detached task: see `runBlockingMain`).
@Sendable func run() async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let path = directory.path + "/cold.sqlite"
    let store = try SQLiteTokenStore(path: path, maxConnections: 8)
    try await store.migrate()
    let vault = TokenVault(store: store, keyRing: try KeyRing(parsing: KeyRing.generateEntry(id: "cold")))
    let expiresAt = Date().addingTimeInterval(86_400)
    func installation(_ organizationID: String) -> Installation {
        Installation(
            organizationID: organizationID, appUserID: "app-user-\(organizationID)",
            accessToken: Secret("lin_oauth_" + String(repeating: "a", count: 64)),
            refreshToken: Secret("lin_refresh_" + String(repeating: "r", count: 64)), expiresAt: expiresAt, scopes: ["read", "write"])
    }
    let organizations = (0..<iterations).map { String(format: "org-%06d", $0) }
    try await store.save((organizations + ["org-warm"]).map { try vault.keyRing.seal(installation($0)) })
    let manager = TokenManager(vault: vault, linear: LinearClient(configuration: LinearClientConfiguration(
        clientID: "cold", clientSecret: Secret("cold-secret"), apiURL: "http://127.0.0.1:9")))
    let raw: SQLiteConnection = try await SQLiteConnection.open(storage: .file(path: path))
    // The same row and columns the store reads.
    let sql = "SELECT \(TokenSchema.installationColumnList) FROM linear_tokens WHERE organization_id = ?"
    // Both warmed, whatever the mode, so that the set-up is the same in every run.
    guard try await raw.query(sql, [.text("org-warm")]).count == 1, try await manager.accessToken(for: "org-warm").organizationID == "org-warm"
    else { fatalError("the row is missing") }
    var rows = 0
    switch mode {
    case "bare":
        for organizationID in organizations { rows += try await raw.query(sql, [.text(organizationID)]).count }
    case "ours":
        for organizationID in organizations {
            rows += try await manager.accessToken(for: organizationID).organizationID == organizationID ? 1 : 0
        }
    case "load":
        for organizationID in organizations { rows += try await store.load(organizationID: organizationID) != nil ? 1 : 0 }
    case "open":
        for organizationID in organizations {
            guard let sealed = try await store.load(organizationID: organizationID) else { continue }
            rows += try vault.keyRing.open(sealed.accessToken, organizationID: organizationID, column: .accessToken).isEmpty ? 0 : 1
        }
    default:
        rows = iterations
    }
    precondition(rows == iterations)
    try await raw.close()
    try await store.close()
    print("\(mode): \(iterations) iterations")
}

runBlockingMain("ColdPathCount", run)
