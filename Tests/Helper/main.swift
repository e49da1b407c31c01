// A helper process for the cross-process tests.
//
//   linear-oauth-test-helper hold-lock DATABASE_URL ORGANIZATION
//   linear-oauth-test-helper tokens DATABASE_URL ORGANIZATION CALLERS
//
//   linear-oauth-test-helper refresh-loop DATABASE_URL ORGANIZATION[,ORGANIZATION...]
//
// `refresh-loop` prints "ready" and then refreshes every ORGANIZATION (all at once) over and over
// until it is killed: the crash tests SIGKILL it at a random point of a refresh.
//
// `tokens` prints "ready", waits for the line "go", then asks a TokenManager for ORGANIZATION's
// access token from CALLERS concurrent tasks and prints one line per caller: the token's
// fingerprint (never the token), or "error: ..." (keys and Linear settings from the environment).
//
// takes ORGANIZATION's refresh lock, prints "locked", holds it until it reads the line "release"
// (or standard input ends), then commits and prints "released". Exit status 5 if the lock timed out.
// A line rather than end of input: a pipe's write end can be inherited by other children the test
// process starts meanwhile, and then the end of input never comes.
import Crypto
import Foundation
import LinearOAuth
import LinearOAuthPostgres
import LinearOAuthSQLite

let arguments = CommandLine.arguments
guard (arguments.count == 4 && ["hold-lock", "refresh-loop"].contains(arguments[1])) || (arguments.count == 5 && arguments[1] == "tokens") else {
    FileHandle.standardError.write(Data("usage: linear-oauth-test-helper hold-lock|tokens|refresh-loop DATABASE_URL ORGANIZATION [CALLERS]\n".utf8))
    exit(2)
}
let organizationID = arguments[3]
let store: any TokenStore
switch try DatabaseURL(parsing: arguments[2]) {
case .sqlite(let path): store = try SQLiteTokenStore(path: path, lockTimeout: .seconds(30))
case .postgres(let settings): store = PostgresTokenStore(settings: settings, lockTimeout: .seconds(30), minConnections: 0)
}
try await store.migrate()

if arguments[1] == "refresh-loop" {
    let manager = TokenManager(
        vault: TokenVault(store: store, keyRing: try KeyRing.load()),
        linear: LinearClient(configuration: try LinearClientConfiguration.fromEnvironment()))
    let organizations = organizationID.split(separator: ",").map(String.init)
    FileHandle.standardOutput.write(Data("ready\n".utf8))
    while true {
        await withTaskGroup(of: Void.self) { group in
            for organization in organizations {
                group.addTask { _ = try? await manager.forceRefresh(for: organization) }
            }
        }
    }
}

if arguments[1] == "tokens" {
    let manager = TokenManager(
        vault: TokenVault(store: store, keyRing: try KeyRing.load()),
        linear: LinearClient(configuration: try LinearClientConfiguration.fromEnvironment()))
    FileHandle.standardOutput.write(Data("ready\n".utf8))
    while let line = readLine(), line != "go" {}
    let lines = await withTaskGroup(of: String.self) { group in
        for _ in 0..<(Int(arguments[4]) ?? 1) {
            group.addTask {
                do {
                    return fingerprint(try await manager.accessToken(for: organizationID).token.value)
                } catch {
                    return "error: \(error)"
                }
            }
        }
        var lines: [String] = []
        for await line in group { lines.append(line) }
        return lines
    }
    FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\ndone\n").utf8))
    try await store.close()
    exit(0)
}
do {
    try await store.withRefreshLock(organizationID: organizationID) { _, _ in
        FileHandle.standardOutput.write(Data("locked\n".utf8))
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                while let line = readLine(), line != "release" {}
                continuation.resume()
            }
        }
    }
    FileHandle.standardOutput.write(Data("released\n".utf8))
    try await store.close()
} catch TokenStoreError.lockTimeout {
    FileHandle.standardOutput.write(Data("timeout\n".utf8))
    exit(5)
}

func fingerprint(_ token: String) -> String {
    SHA256.hash(data: Data(token.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
}
