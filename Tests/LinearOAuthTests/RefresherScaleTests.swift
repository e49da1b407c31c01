import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthPostgres
import LinearOAuthSQLite
import LinearOAuthTestSupport
import Testing

/// The background refresher at scale: due rows soonest first through the (status, expires_at,
/// organization_id) index, and instances that skip a row another is refreshing instead of queueing on it.
@Suite("The background refresher's due rows and busy rows", .capturesLogs)
struct RefresherScaleTests {
    @Test("due rows: active, expiring before the deadline, soonest first, by a keyset cursor", arguments: StoreKind.allCases)
    func dueRows(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            let now = Date()
            var rows: [Installation] = []
            for index in 0..<30 {
                // Expiries out of organization-id order, some equal (the cursor breaks ties by id).
                var installation = Fixtures.installation(String(format: "org-%02d", index))
                installation.expiresAt = now.addingTimeInterval(Double((index * 7) % 10) * 60)
                rows.append(installation)
            }
            var marked = Fixtures.installation("org-marked")
            marked.expiresAt = now
            marked.status = .reauthorizationRequired
            var later = Fixtures.installation("org-later")
            later.expiresAt = now.addingTimeInterval(7200)
            try await vault.save(rows + [marked, later])
            let deadline = now.addingTimeInterval(3600)
            var seen: [DueCursor] = []
            var cursor: DueCursor?
            while true {
                let page = try await test.store.dueForRefresh(before: deadline, after: cursor, limit: 7)
                seen += page
                guard page.count == 7 else { break }
                cursor = page.last
            }
            let expected = rows.map { DueCursor(expiresAt: $0.expiresAt, organizationID: $0.organizationID) }.sorted()
            #expect(seen.map(\.organizationID) == expected.map(\.organizationID))
            #expect(zip(seen, expected).allSatisfy { sameInstant($0.expiresAt, $1.expiresAt) })
        }
    }

    @Test("a page of due rows, first or after a cursor, is a range of the due index: no sort, no filter", arguments: StoreKind.allCases)
    func dueRowsReadTheIndex(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let deadline = Date().addingTimeInterval(3600)
            for cursor in [nil, DueCursor(expiresAt: Date(), organizationID: "org-00")] {
                let plan: String
                switch kind {
                case .postgres:
                    plan = try await #require(test.store as? PostgresTokenStore).dueForRefreshPlan(before: deadline, after: cursor, limit: 1000)
                case .sqlite:
                    plan = try await #require(test.store as? SQLiteTokenStore).dueForRefreshPlan(before: deadline, after: cursor, limit: 1000)
                }
                #expect(plan.contains("linear_tokens_due"), "the page is read through the due index:\n\(plan)")
                // A sort (PostgreSQL's Sort or Incremental Sort, SQLite's temporary B-tree) would read
                // every due row to return a page; a filter would read the rows before the cursor.
                #expect(!plan.lowercased().contains("sort") && !plan.contains("TEMP B-TREE"), "no sort:\n\(plan)")
                // (PostgreSQL's word; SQLite names the range it searches, checked below for the cursor.)
                #expect(!plan.contains("Filter:"), "every condition is part of the index's range:\n\(plan)")
                if cursor != nil {
                    let cursorInRange = kind == .postgres
                        ? plan.contains("Index Cond") && plan.contains("ROW(expires_at, organization_id) >")
                        : plan.contains("(expires_at,organization_id)>(?,?)")
                    #expect(cursorInRange, "the cursor bounds the index range:\n\(plan)")
                }
            }
        }
    }

    @Test("migration 8 replaces the due index on a populated version-7 database; the rows are found as before", arguments: StoreKind.allCases)
    func dueIndexMigration(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            let now = Date()
            var rows: [Installation] = []
            for index in 0..<12 {
                var installation = Fixtures.installation(String(format: "org-%02d", index))
                installation.expiresAt = now.addingTimeInterval(Double(index % 4) * 60)
                rows.append(installation)
            }
            try await vault.save(rows)
            try await TokenStoreTests.undoMigration8(test)
            try await test.store.migrate()
            var seen: [String] = []
            var cursor: DueCursor?
            while true {
                let page = try await test.store.dueForRefresh(before: now.addingTimeInterval(3600), after: cursor, limit: 5)
                seen += page.map(\.organizationID)
                guard page.count == 5 else { break }
                cursor = page.last
            }
            let expected = rows.sorted { ($0.expiresAt, $0.organizationID) < ($1.expiresAt, $1.organizationID) }.map(\.organizationID)
            #expect(seen == expected)
            let plan: String
            switch kind {
            case .postgres: plan = try await #require(test.store as? PostgresTokenStore).dueForRefreshPlan(before: now, after: cursor, limit: 5)
            case .sqlite: plan = try await #require(test.store as? SQLiteTokenStore).dueForRefreshPlan(before: now, after: cursor, limit: 5)
            }
            #expect(plan.contains("linear_tokens_due") && !plan.contains("linear_tokens_status_expires_at"), "\(plan)")
        }
    }

    @Test("a row another process is refreshing is skipped, not waited for; the next pass refreshes it")
    func skipsBusyRows() async throws {
        try await withManagerFixture(.postgres) { fixture in
            for id in ["org-held", "org-free"] {
                await fixture.emulator.add(EmulatedOrganization(id: id, name: id, urlKey: id, appUserID: "app-user-\(id)"))
            }
            // Inside the refresher's hour, still valid.
            try await fixture.install("org-held", expiresIn: 1800)
            try await fixture.install("org-free", expiresIn: 1800)
            let other = try await fixture.test.openAnother(lockTimeout: .seconds(60))
            let (held, heldSignal) = AsyncStream<Void>.makeStream()
            let (release, releaseSignal) = AsyncStream<Void>.makeStream()
            let holder = Task {
                try await other.withRefreshLock(organizationID: "org-held") { _, _ in
                    heldSignal.yield()
                    for await _ in release {}
                }
            }
            var heldIterator = held.makeAsyncIterator()
            _ = await heldIterator.next()
            // The manager waits up to a minute for a lock: a pass that waited would not come back before
            // the release below, and would then find org-held refreshed by nobody.
            let refresher = TokenRefresher(manager: fixture.manager(), configuration: .openAtOnce)
            let first = await refresher.refreshDue()
            #expect(Set(first) == ["org-held", "org-free"], "org-held is left to the process that holds it")
            var calls = await fixture.refreshCalls()
            #expect(calls.filter { $0.organizationID == "org-free" }.count == 1)
            #expect(calls.filter { $0.organizationID == "org-held" }.isEmpty)
            releaseSignal.finish()
            try await holder.value
            try await other.close()
            _ = await refresher.refreshDue()
            calls = await fixture.refreshCalls()
            #expect(calls.filter { $0.organizationID == "org-held" }.count == 1)
            #expect(calls.filter { $0.organizationID == "org-free" }.count == 1, "org-free is no longer due")
        }
    }

    /// Pages smaller than the due rows, so each pass follows its cursor: 7 leaves a short last page,
    /// 8 divides the 40 rows (the pass ends on an empty page); the default reads them in one.
    @Test("two refreshers on one PostgreSQL, paging through the due rows: every due installation refreshed exactly once",
          arguments: [7, 8, TokenRefresher.Configuration().pageSize])
    func twoRefreshersSplit(pageSize: Int) async throws {
        try await withManagerFixture(.postgres) { fixture in
            let organizations = (0..<40).map { String(format: "org-%02d", $0) }
            for id in organizations {
                await fixture.emulator.add(EmulatedOrganization(id: id, name: id, urlKey: id, appUserID: "app-user-\(id)"))
            }
            try await installMinted(organizations, emulator: fixture.emulator, vault: fixture.vault, expiresIn: 1800)
            var configuration = TokenRefresher.Configuration.openAtOnce
            configuration.pageSize = pageSize
            let a = TokenRefresher(manager: fixture.manager(), configuration: configuration)
            let b = TokenRefresher(manager: fixture.manager(), configuration: configuration)
            async let first = a.refreshDue()
            async let second = b.refreshDue()
            let (doneA, doneB) = await (first, second)
            #expect(Set(doneA).union(doneB) == Set(organizations))
            let calls = await fixture.refreshCalls()
            #expect(calls.count == organizations.count && Set(calls.compactMap(\.organizationID)) == Set(organizations))
        }
    }

    @Test("a new refresher's window opens from zero at the growth rate, up to the window; .infinity opens it at once")
    func windowOpens() async throws {
        try await withTestStore(.sqlite) { test in
            let manager = TokenManager(
                vault: TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1")), linear: emulatorClient("http://127.0.0.1:9"))
            var settings = TokenRefresher.Configuration()
            settings.window = .seconds(3_600)
            settings.windowGrowth = 0.25
            let refresher = TokenRefresher(manager: manager, configuration: settings)
            let start = refresher.startedAt
            #expect(refresher.window(at: start) == .zero)
            #expect(refresher.window(at: start.addingTimeInterval(-60)) == .zero, "a clock that steps back does not open it")
            #expect(refresher.window(at: start.addingTimeInterval(400)) == .seconds(100))
            #expect(refresher.window(at: start.addingTimeInterval(4 * 3_600)) == .seconds(3_600))
            #expect(refresher.window(at: start.addingTimeInterval(30 * 3_600)) == .seconds(3_600), "never wider than the window")
            #expect(TokenRefresher(manager: manager, configuration: .openAtOnce).window(at: start) == TokenRefresher.Configuration().window)
        }
    }
}

extension TokenRefresher.Configuration {
    /// The whole window from the first pass (tests that make one pass at once).
    static var openAtOnce: Self {
        var configuration = Self()
        configuration.windowGrowth = .infinity
        return configuration
    }
}
