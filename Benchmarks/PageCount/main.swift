// A PostgreSQL listing page in instructions, for valgrind's callgrind (Scripts/callgrind-page.sh):
// the client's side of a page only (PostgreSQL runs in its own processes, outside valgrind).
//
//   PageCount bare|decoded|ours|due-bare|due-decoded|due-ours|none PAGES
//
// The set-up stores 2,000 installations in a throwaway PostgreSQL (sealed, through the store), then
// reads PAGES keyset pages of 100 rows (101 asked, as the API asks one more to know whether a next
// page exists), each after a different organization: `bare` runs the store's query on the store's
// own `PostgresClient` and only counts the rows, `decoded` also decodes every row into the same 15
// values with PostgresNIO's `decode`, and `ours` calls `PostgresTokenStore.metadata(matching:after:limit:)`.
// The `due-` modes read PAGES of the background refresher's pages instead, 1,000 due rows each (from
// the same cursor): the store's query on the store's client, rows counted or decoded, and
// `PostgresTokenStore.dueForRefresh(before:after:limit:)`.
// `none` stops after the set-up. Each run's total less the `none` run's, divided by PAGES, is a
// page's instructions.
import Foundation
import LinearOAuth
import LinearOAuthPostgres
import LinearOAuthTestSupport
import Logging
import PostgresNIO

let arguments = CommandLine.arguments
guard arguments.count == 3, ["bare", "decoded", "ours", "none", "due-bare", "due-decoded", "due-ours"].contains(arguments[1]), let pages = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: PageCount bare|decoded|ours|due-bare|due-decoded|due-ours|none PAGES\n".utf8))
    exit(2)
}
let mode = arguments[1]

@Sendable func run() async throws {
    let server = PostgresTestServer.shared
    let settings = try await server.createDatabase()
    let store = PostgresTokenStore(settings: settings)
    try await store.migrate()
    let vault = TokenVault(store: store, keyRing: try KeyRing(parsing: KeyRing.generateEntry(id: "page")))
    let ids = (0..<2_000).map { String(format: "org-%06d", $0) }
    let expiresAt = Date().addingTimeInterval(86_400)
    try await vault.save(ids.map { id in
        var installation = Installation(
            organizationID: id, appUserID: "app-user-\(id)",
            accessToken: Secret("lin_oauth_" + String(repeating: "a", count: 64)),
            refreshToken: Secret("lin_refresh_" + String(repeating: "r", count: 64)), expiresAt: expiresAt, scopes: ["read", "write"])
        installation.urlKey = "key-\(id)"
        return installation
    })
    let logger = Logger(label: "page-count")
    let sql = "SELECT \(TokenSchema.metadataColumnList) FROM linear_tokens WHERE organization_id > $1 ORDER BY organization_id LIMIT 101"
    func bare(after: String, decode: Bool) async throws -> Int {
        var bindings = PostgresBindings()
        bindings.append(after)
        var rows = 0
        for try await row in try await store.client.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger) {
            if decode {
                _ = try row.decode(
                    (String, String, Date, String, String, String, Date?, String?, Int, Date, Date, Date, String?, String?, String?).self)
            }
            rows += 1
        }
        return rows
    }
    // Every path warmed, whatever the mode, so that the set-up is the same in every run.
    guard try await bare(after: "", decode: true) == 101, try await store.metadata(matching: .all, after: "", limit: 101).count == 101
    else { fatalError("the rows are missing") }
    // The background refresher's pages of due rows: all 2,000 rows are due, a page is 1,000.
    let deadline = expiresAt.addingTimeInterval(86_400)
    func dueBare(after cursor: DueCursor?, decode: Bool) async throws -> Int {
        var rows = 0
        for try await row in try await store.client.query(PostgresTokenStore.dueQuery(before: deadline, after: cursor, limit: 1000), logger: logger) {
            if decode {
                // Cell by cell, as the store decodes (a tuple decode is slower).
                var cells = row.makeIterator()
                _ = try cells.next()?.decode(Date.self)
                _ = try cells.next()?.decode(String.self)
            }
            rows += 1
        }
        return rows
    }
    guard try await dueBare(after: nil, decode: true) == 1000,
          try await store.dueForRefresh(before: deadline, after: nil, limit: 1000).count == 1000
    else { fatalError("the due rows are missing") }
    let dueCursor = DueCursor(expiresAt: expiresAt, organizationID: ids[499])
    var rows = 0
    for page in 0..<(mode == "none" ? 0 : pages) {
        let after = ids[(page * 100) % 1_800]
        switch mode {
        case "bare": rows += try await bare(after: after, decode: false)
        case "decoded": rows += try await bare(after: after, decode: true)
        // (Counted as 101 a page, as the listing's pages, for the check below.)
        case "due-bare": rows += try await dueBare(after: dueCursor, decode: false) - 899
        case "due-decoded": rows += try await dueBare(after: dueCursor, decode: true) - 899
        case "due-ours": rows += try await store.dueForRefresh(before: deadline, after: dueCursor, limit: 1000).count - 899
        default: rows += try await store.metadata(matching: .all, after: after, limit: 101).count
        }
    }
    precondition(mode == "none" || rows == pages * 101)
    try await store.close()
    try await server.dropDatabase(settings)
    print("\(mode): \(pages) pages")
}

runBlockingMain("PageCount", run)
