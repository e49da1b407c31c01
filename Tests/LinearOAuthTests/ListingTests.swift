import Foundation
import LinearOAuth
import LinearOAuthTestSupport
import NIOHTTP1
import Testing

/// One page of `GET /v1/installations` with the test server's API key.
private func listingPage(_ url: String, _ query: String) async throws -> HTTPAnswer {
    try await RawHTTP.request(.GET, url + "/v1/installations" + query, headers: [("Authorization", "Bearer \(serverAPIKey)")])
}

/// The organization ids of a listing page, in order.
private func rows(_ answer: HTTPAnswer) -> [String] {
    (answer.json["installations"] as? [[String: Any]] ?? []).compactMap { $0["organization_id"] as? String }
}

/// Listing installations a page at a time: the API by a cursor, the command line streaming.
@Suite("Listing installations at any size", .capturesLogs)
struct ListingTests {
    @Test("GET /v1/installations pages by a cursor: 100 by default, at most 1000, next until the last page; bad limits are 400", arguments: StoreKind.allCases)
    func apiPages(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let ids = (0..<250).map { String(format: "org-%04d", $0) }
            try await fixture.vault.save(ids.map { Fixtures.installation($0, expiresIn: 3600) })
            try await withServer(fixture) { url, _ async throws in
                let page = { (query: String) in try await listingPage(url, query) }
                let first = try await page("")
                #expect(first.status == 200 && rows(first) == Array(ids.prefix(100)))
                let next = try #require(first.json["next"] as? String)
                #expect(next == ids[99])
                var seen = rows(first)
                var cursor: String? = next
                while let after = cursor {
                    let answer = try await page("?limit=70&after=\(RawHTTP.encode(after))")
                    #expect(answer.status == 200)
                    seen += rows(answer)
                    cursor = answer.json["next"] as? String
                }
                #expect(seen == ids, "every installation once, in order")
                let all = try await page("?limit=1000")
                #expect(rows(all).count == 250 && all.json["next"] == nil)
                let exact = try await page("?limit=250")
                #expect(rows(exact).count == 250 && exact.json["next"] == nil, "no next when nothing follows")
                for bad in ["?limit=0", "?limit=1001", "?limit=ten", "?limit=-1", "?after=%00"] {
                    let answer = try await page(bad)
                    #expect(answer.status == 400 && answer.json["error"] as? String == "bad_request", "\(bad)")
                }
                #expect(!first.text.contains("lin_oauth_"))
            }
        }
    }

    @Test("paging while installations come and go: each one there throughout is listed once, in order; a cursor past the end is an empty last page",
          arguments: StoreKind.allCases)
    func apiPagesWhileRowsChange(kind: StoreKind) async throws {
        try await withManagerFixture(kind) { fixture in
            let ids = (0..<60).map { String(format: "org-%04d", $0 * 10) }
            try await fixture.vault.save(ids.map { Fixtures.installation($0, expiresIn: 3600) })
            try await withServer(fixture) { url, _ async throws in
                let page = { (query: String) in try await listingPage(url, query) }
                var seen: [String] = []
                var deleted: Set<String> = []
                var cursor: String?
                var round = 0
                repeat {
                    let answer = try await page("?limit=7" + (cursor.map { "&after=\(RawHTTP.encode($0))" } ?? ""))
                    #expect(answer.status == 200)
                    seen += rows(answer)
                    cursor = answer.json["next"] as? String
                    // Between pages: one installed behind the cursor, one ahead of it, and one ahead removed.
                    round += 1
                    let behind = String(format: "org-%04d-new-%02d", 0, round), ahead = String(format: "org-%04d-new", 590 - round)
                    try await fixture.vault.save([Fixtures.installation(behind, expiresIn: 3600), Fixtures.installation(ahead, expiresIn: 3600)])
                    if let last = seen.last, let victim = ids.last(where: { $0 > last && !deleted.contains($0) }), round % 2 == 0 {
                        _ = try await fixture.vault.store.delete(organizationID: victim)
                        deleted.insert(victim)
                    }
                } while cursor != nil
                #expect(seen == seen.sorted() && Set(seen).count == seen.count, "in order, none twice")
                let throughout = ids.filter { !deleted.contains($0) }
                #expect(throughout.allSatisfy(seen.contains), "every installation there throughout was listed")
                #expect(!deleted.isEmpty && deleted.allSatisfy { !seen.contains($0) })
                // A cursor past every id: an empty page without next.
                let past = try await page("?after=\(RawHTTP.encode("zzzz"))")
                #expect(past.status == 200 && rows(past).isEmpty && past.json["next"] == nil)
            }
        }
    }

    @Test("installations list streams a thousand rows at a time, as a table or one JSON array, every row once", arguments: StoreKind.allCases)
    func cliStreams(kind: StoreKind) async throws {
        try await withCLI(kind) { cli, test, key in
            let vault = TokenVault(store: test.store, keyRing: try KeyRing(parsing: key))
            let ids = (0..<2_345).map { String(format: "org-%05d", $0) }
            for batch in stride(from: 0, to: ids.count, by: 500) {
                try await vault.save(ids[batch..<min(batch + 500, ids.count)].map { Fixtures.installation($0, expiresIn: 3600) })
            }
            let table = try await cli.run("installations", "list")
            #expect(table.status == 0)
            let lines = table.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("ORGANIZATION") == true && lines.count == ids.count + 1)
            #expect(lines.dropFirst().map { String($0.prefix(while: { $0 != " " })) } == ids)
            let json = try await cli.run("installations", "list", "--json")
            let array = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
            #expect(array.compactMap { $0["organization_id"] as? String } == ids)
        }
    }

    @Test("an empty store: a line saying so, or an empty JSON array")
    func empty() async throws {
        try await withCLI(.sqlite) { cli, _, _ in
            #expect(try await cli.run("installations", "list").stdout == "no installations\n")
            let json = try await cli.run("installations", "list", "--json")
            #expect(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [Any] != nil)
            #expect(json.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
        }
    }
}
