import Foundation
import LinearOAuth
import LinearOAuthTestSupport
import Synchronization
import Testing

/// One conformance suite, run against both stores.
@Suite("Token store conformance", .capturesLogs)
struct TokenStoreTests {
    @Test("a saved installation loads back with its tokens and metadata", arguments: StoreKind.allCases)
    func saveAndLoad(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            var installation = Fixtures.installation("org-a")
            installation.lastRefreshAt = Date(timeIntervalSince1970: 1_800_000_000.123)
            installation.lastError = "server_error"
            installation.refreshFailures = 2
            try await vault.save(installation)
            let loaded = try #require(try await vault.load(organizationID: "org-a"))
            #expect(loaded.accessToken == installation.accessToken)
            #expect(loaded.refreshToken == installation.refreshToken)
            #expect(loaded.appUserID == installation.appUserID)
            #expect(loaded.scopes == ["read", "write"])
            #expect(loaded.status == .active)
            #expect(loaded.keyID == "k1")
            #expect(loaded.lastError == "server_error")
            #expect(loaded.refreshFailures == 2)
            #expect(sameInstant(loaded.expiresAt, installation.expiresAt))
            #expect(sameInstant(loaded.lastRefreshAt, installation.lastRefreshAt))
            #expect(try await vault.load(organizationID: "org-missing") == nil)
        }
    }

    @Test("save replaces by organization and keeps created_at", arguments: StoreKind.allCases)
    func upsert(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            var first = Fixtures.installation("org-u")
            first.status = .reauthorizationRequired
            try await vault.save(first)
            let created = try #require(try await test.store.load(organizationID: "org-u")).createdAt
            let second = Fixtures.installation("org-u")
            try await vault.save(second)
            let loaded = try #require(try await vault.load(organizationID: "org-u"))
            #expect(loaded.accessToken == second.accessToken)
            #expect(loaded.status == .active)
            #expect(sameInstant(loaded.createdAt, created))
            #expect(loaded.updatedAt >= created)
            #expect(try await vault.list().count == 1)
        }
    }

    @Test("delete removes one organization and says whether it existed", arguments: StoreKind.allCases)
    func delete(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save([Fixtures.installation("org-1"), Fixtures.installation("org-2")])
            #expect(try await vault.delete(organizationID: "org-1"))
            #expect(try await vault.delete(organizationID: "org-1") == false)
            #expect(try await vault.list().map(\.organizationID) == ["org-2"])
        }
    }

    @Test("list returns metadata ordered by organization", arguments: StoreKind.allCases)
    func list(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save(["org-c", "org-a", "org-b"].map { Fixtures.installation($0) })
            let listed = try await vault.list()
            #expect(listed.map(\.organizationID) == ["org-a", "org-b", "org-c"])
            #expect(listed.allSatisfy { $0.keyID == "k1" && $0.status == .active })
        }
    }

    @Test("paging walks every row once, and filters by key and by expiry", arguments: StoreKind.allCases)
    func paging(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let k1 = try Fixtures.keyRing("k1")
            let vault = TokenVault(store: test.store, keyRing: k1)
            let organizations = Fixtures.organizations(7)
            try await vault.save(organizations.enumerated().map { index, id in
                Fixtures.installation(id, expiresIn: TimeInterval(index) * 3600)
            })
            var seen: [String] = []
            var after: String? = nil
            while true {
                let page = try await test.store.page(after: after, limit: 3, matching: .all)
                if page.isEmpty { break }
                seen += page.map(\.organizationID)
                after = page.last?.organizationID
            }
            #expect(seen == organizations)

            var stale = try #require(try await vault.load(organizationID: "org-003"))
            stale.status = .reauthorizationRequired
            try await vault.save(stale)
            let expiring = try await test.store.page(after: nil, limit: 100, matching: .activeExpiringBefore(Date().addingTimeInterval(4.5 * 3600)))
            #expect(expiring.map(\.organizationID) == ["org-000", "org-001", "org-002", "org-004"])

            try await TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k2")).save(Fixtures.installation("org-005"))
            let notK2 = try await test.store.page(after: "org-001", limit: 100, matching: .notSealedUnder(keyID: "k2"))
            #expect(notK2.map(\.organizationID) == ["org-002", "org-003", "org-004", "org-006"])
        }
    }

    /// Back to version 7, as a database written by that release: the due rows indexed by (status, expires_at).
    static func undoMigration8(_ test: TestStore) async throws {
        try await test.execute("CREATE INDEX linear_tokens_status_expires_at ON linear_tokens (status, expires_at)")
        try await test.execute("DROP INDEX linear_tokens_due")
        try await test.execute("DELETE FROM linear_oauth_schema_migrations WHERE version >= 8")
    }

    /// Back to version 6, as a database written by that release.
    static func undoMigration7(_ test: TestStore) async throws {
        try await undoMigration8(test)
        try await test.execute("DROP INDEX linear_tokens_url_key")
        try await test.execute("ALTER TABLE linear_tokens DROP COLUMN url_key")
        try await test.execute("ALTER TABLE linear_tokens DROP COLUMN organization_name")
        try await test.execute("DELETE FROM linear_oauth_schema_migrations WHERE version >= 7")
    }

    @Test("migrate is idempotent, also when two stores run it at once", arguments: StoreKind.allCases)
    func migrateTwice(kind: StoreKind) async throws {
        try await withTestStore(kind, migrate: false) { test in
            let other = try await test.openAnother()
            async let a: Void = test.store.migrate()
            async let b: Void = other.migrate()
            _ = try await (a, b)
            try await test.store.migrate()
            try await other.close()
            try await TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1")).save(Fixtures.installation())
            #expect(try await test.store.listMetadata().count == 1)
        }
    }

    @Test("migration 4 adds installed_at to a populated version-3 database; a refresh keeps it, a re-install resets it",
          arguments: StoreKind.allCases)
    func installedAtMigration(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save(Fixtures.installation("org-m"))
            // Back to version 3, as a database written by that release.
            try await Self.undoMigration7(test)
            try await test.execute("DROP INDEX linear_oauth_states_expires_at")
            try await test.execute("ALTER TABLE linear_tokens DROP COLUMN client_id")
            try await test.execute("ALTER TABLE linear_tokens DROP COLUMN installed_at")
            try await test.execute("DELETE FROM linear_oauth_schema_migrations WHERE version >= 4")
            try await test.store.migrate()
            let migrated = try #require(try await vault.load(organizationID: "org-m"))
            #expect(sameInstant(migrated.installedAt, migrated.createdAt))
            // A refresh (a write under the lock) keeps it.
            try await vault.withRefreshLock(organizationID: "org-m") { current, writer in
                var refreshed = try #require(current)
                refreshed.accessToken = Secret(TestSecrets.record("lin_oauth_refreshed_\(UUID().uuidString)", kind: "access-token"))
                try await writer.save(refreshed)
            }
            #expect(sameInstant(try await vault.load(organizationID: "org-m")?.installedAt, migrated.installedAt))
            // A new install of the same workspace sets it anew (and keeps created_at).
            let reinstall = Fixtures.installation("org-m")
            try await vault.save(reinstall)
            let reinstalled = try #require(try await vault.load(organizationID: "org-m"))
            #expect(sameInstant(reinstalled.installedAt, reinstall.installedAt))
            #expect(reinstalled.installedAt > migrated.installedAt)
            #expect(sameInstant(reinstalled.createdAt, migrated.createdAt))
        }
    }

    @Test("migration 5 adds client_id to a populated version-4 database: rows from before have none; a save keeps what it is given",
          arguments: StoreKind.allCases)
    func clientIDMigration(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            var installation = Fixtures.installation("org-c")
            installation.clientID = "client-a"
            try await vault.save(installation)
            #expect(try await vault.load(organizationID: "org-c")?.clientID == "client-a")
            try await Self.undoMigration7(test)
            try await test.execute("DROP INDEX linear_oauth_states_expires_at")
            try await test.execute("ALTER TABLE linear_tokens DROP COLUMN client_id")
            try await test.execute("DELETE FROM linear_oauth_schema_migrations WHERE version >= 5")
            try await test.store.migrate()
            let migrated = try #require(try await vault.load(organizationID: "org-c"))
            #expect(migrated.clientID == nil)
            #expect(migrated.accessToken == installation.accessToken)
            try await vault.save(installation)
            #expect(try await vault.load(organizationID: "org-c")?.clientID == "client-a")
        }
    }

    @Test("installation counts by status come from one aggregate query; reauthorization_required rows page by status", arguments: StoreKind.allCases)
    func countsAndStatusPages(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            #expect(try await test.store.installationCounts().isEmpty)
            var installations = Fixtures.organizations(5).map { Fixtures.installation($0) }
            installations[1].status = .reauthorizationRequired
            installations[3].status = .reauthorizationRequired
            try await vault.save(installations)
            #expect(try await test.store.installationCounts() == [.active: 3, .reauthorizationRequired: 2])
            let marked = try await test.store.page(after: nil, limit: 10, matching: .status(.reauthorizationRequired))
            #expect(marked.map(\.organizationID) == [installations[1].organizationID, installations[3].organizationID])
        }
    }

    @Test("a database migrated by a newer version is refused", arguments: StoreKind.allCases)
    func schemaTooNew(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            try await test.execute("INSERT INTO linear_oauth_schema_migrations (version, name, applied_at) VALUES (999, 'future', \(kind == .sqlite ? "0" : "now()"))")
            await #expect(throws: TokenStoreError.schemaTooNew(databaseVersion: 999, supportedVersion: TokenSchema.latestVersion)) {
                try await test.store.migrate()
            }
        }
    }

    @Test("the refresh lock hands over the current row; writes commit, a throw rolls back", arguments: StoreKind.allCases)
    func refreshLockCommitAndRollback(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            let original = Fixtures.installation("org-l")
            try await vault.save(original)
            let renewed = Fixtures.installation("org-l")
            try await vault.withRefreshLock(organizationID: "org-l") { current, writer in
                #expect(current?.refreshToken == original.refreshToken)
                try await writer.save(renewed)
            }
            #expect(try await vault.load(organizationID: "org-l")?.refreshToken == renewed.refreshToken)

            struct Abort: Error {}
            await #expect(throws: Abort.self) {
                try await vault.withRefreshLock(organizationID: "org-l") { _, writer in
                    try await writer.save(Fixtures.installation("org-l"))
                    throw Abort()
                }
            }
            #expect(try await vault.load(organizationID: "org-l")?.refreshToken == renewed.refreshToken)
            let missing = try await vault.withRefreshLock(organizationID: "org-none") { current, _ in current == nil }
            #expect(missing)
        }
    }

    @Test("the refresh lock excludes a holder on another connection; its timeout is its own error",
          arguments: StoreKind.allCases)
    func refreshLockExcludesAnotherConnection(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let keyRing = try Fixtures.keyRing("k1")
            let vault = TokenVault(store: test.store, keyRing: keyRing)
            try await vault.save(Fixtures.installation("org-x"))
            let impatient = TokenVault(store: try await test.openAnother(lockTimeout: .milliseconds(300)), keyRing: keyRing)
            let patient = TokenVault(store: try await test.openAnother(lockTimeout: .seconds(30)), keyRing: keyRing)
            let renewed = Fixtures.installation("org-x")
            let gate = Gate()
            let holder = Task {
                try await vault.withRefreshLock(organizationID: "org-x") { _, writer in
                    gate.open("locked")
                    try await gate.wait("release")
                    try await writer.save(renewed)
                }
            }
            try await gate.wait("locked")
            await #expect(throws: TokenStoreError.lockTimeout(organizationID: "org-x")) {
                try await impatient.withRefreshLock(organizationID: "org-x") { _, _ in }
            }
            // A waiter that outlasts the holder gets the lock and sees the holder's write.
            let waiter = Task {
                try await patient.withRefreshLock(organizationID: "org-x") { current, _ in current?.refreshToken }
            }
            gate.open("release")
            try await holder.value
            #expect(try await waiter.value == renewed.refreshToken)
            try await impatient.store.close()
            try await patient.store.close()
        }
    }

    @Test("the refresh lock excludes a holder in another process", arguments: StoreKind.allCases)
    func refreshLockExcludesAnotherProcess(kind: StoreKind) async throws {
        try await withTestStore(kind, lockTimeout: .milliseconds(300)) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save(Fixtures.installation("org-p"))
            let helper = try ChildProcess(
                BuiltProducts.url("linear-oauth-test-helper"), ["hold-lock", test.databaseURL, "org-p"],
                environment: childEnvironment([:]))
            defer { helper.kill() }
            try await helper.waitForLine("locked")
            await #expect(throws: TokenStoreError.lockTimeout(organizationID: "org-p")) {
                try await vault.withRefreshLock(organizationID: "org-p") { _, _ in }
            }
            try helper.send("release")
            #expect(try await helper.waitForExit() == 0)
            #expect(helper.output.contains("released"))
            let got = try await vault.withRefreshLock(organizationID: "org-p") { current, _ in current?.organizationID }
            #expect(got == "org-p")
        }
    }

    @Test("both stores migrate to exactly TokenSchema: its migrations, tables and columns", arguments: StoreKind.allCases)
    func schemaMatchesTheSharedDeclaration(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let applied = try await test.appliedMigrations()
            #expect(applied == TokenSchema.migrations.map(\.description))
            let tables = try await test.tables()
            #expect(tables == Set(TokenSchema.tables.keys))
            for (table, columns) in TokenSchema.tables {
                let found = try await test.columns(of: table)
                #expect(found == columns, "\(table)")
            }
            // Everything the stores select and write is a column of linear_tokens.
            #expect(Set(TokenSchema.installationColumns).isSubset(of: TokenSchema.tables[TokenSchema.tokensTable]!))
            #expect(Set(TokenSchema.upsertReplacedColumns).isSubset(of: Set(TokenSchema.installationColumns)))
        }
    }

    @Test("delete waits for a refresh in another process, and gives up with a lock time-out, as every locked write does",
          arguments: StoreKind.allCases)
    func deleteWaitsForTheRefreshLock(kind: StoreKind) async throws {
        try await withTestStore(kind, lockTimeout: .milliseconds(300)) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save(Fixtures.installation("org-d"))
            let helper = try ChildProcess(
                BuiltProducts.url("linear-oauth-test-helper"), ["hold-lock", test.databaseURL, "org-d"],
                environment: childEnvironment([:]))
            defer { helper.kill() }
            try await helper.waitForLine("locked")
            await #expect(throws: TokenStoreError.lockTimeout(organizationID: "org-d")) {
                _ = try await test.store.delete(organizationID: "org-d")
            }
            try helper.send("release")
            #expect(try await helper.waitForExit() == 0)
            #expect(try await test.store.delete(organizationID: "org-d"))
            #expect(try await test.store.load(organizationID: "org-d") == nil)
        }
    }

    @Test("on PostgreSQL the lock is per organization: another organization is not blocked")
    func postgresLockIsPerRow() async throws {
        try await withTestStore(.postgres, lockTimeout: .milliseconds(300)) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save([Fixtures.installation("org-1"), Fixtures.installation("org-2")])
            let gate = Gate()
            let holder = Task {
                try await vault.withRefreshLock(organizationID: "org-1") { _, _ in
                    gate.open("locked")
                    try await gate.wait("release")
                }
            }
            try await gate.wait("locked")
            let other = try await vault.withRefreshLock(organizationID: "org-2") { current, _ in current?.organizationID }
            #expect(other == "org-2")
            gate.open("release")
            try await holder.value
        }
    }
}

/// Named one-shot signals between a test and the tasks it starts.
final class Gate: Sendable {
    private let opened = Mutex<Set<String>>([])

    func open(_ name: String) { _ = opened.withLock { $0.insert(name) } }

    func wait(_ name: String, timeout: Duration = .seconds(30)) async throws {
        try await waitUntil(timeout: timeout, "gate \(name)") { self.opened.withLock { $0.contains(name) } }
    }
}

@Suite("Stored scopes")
struct StoredScopesTests {
    @Test("scopes are split on spaces, empty pieces dropped, and joined back the way Linear writes them")
    func scopesRoundTrip() {
        #expect(TokenSchema.scopes("read write app:assignable") == ["read", "write", "app:assignable"])
        #expect(TokenSchema.scopes("") == [])
        #expect(TokenSchema.scopes("  read   write ") == ["read", "write"])
        #expect(TokenSchema.scopes("read") == ["read"])
        #expect(TokenSchema.scopes("lecture écriture") == ["lecture", "écriture"])
        #expect(TokenSchema.scopesText(["read", "write"]) == "read write")
        #expect(TokenSchema.scopes(TokenSchema.scopesText(["a", "bb", "ccc"])) == ["a", "bb", "ccc"])
    }
}
