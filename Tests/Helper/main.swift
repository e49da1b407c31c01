// A helper process for the cross-process tests.
//
//   linear-oauth-test-helper hold-lock DATABASE_URL ORGANIZATION
//
// takes ORGANIZATION's refresh lock, prints "locked", holds it until it reads the line "release"
// (or standard input ends), then commits and prints "released". Exit status 5 if the lock timed out.
// A line rather than end of input: a pipe's write end can be inherited by other children the test
// process starts meanwhile, and then the end of input never comes.
import Foundation
import LinearOAuth
import LinearOAuthPostgres
import LinearOAuthSQLite

let arguments = CommandLine.arguments
guard arguments.count == 4, arguments[1] == "hold-lock" else {
    FileHandle.standardError.write(Data("usage: linear-oauth-test-helper hold-lock DATABASE_URL ORGANIZATION\n".utf8))
    exit(2)
}
let organizationID = arguments[3]
let store: any TokenStore
switch try DatabaseURL(parsing: arguments[2]) {
case .sqlite(let path): store = try SQLiteTokenStore(path: path, lockTimeout: .seconds(30))
case .postgres(let settings): store = PostgresTokenStore(settings: settings, lockTimeout: .seconds(30))
}
try await store.migrate()
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
