import Foundation
import LinearOAuth
import LinearOAuthTestSupport
import Testing

/// Workspace names and URL keys: stored at install, searched by the console, and taken wherever an
/// organization id is (exactly, unambiguously). Run against both stores.
@Suite("Installations by name and URL key", .capturesLogs)
struct InstallationLookupTests {
    private static func installation(_ id: String, name: String?, urlKey: String?, expiresIn: TimeInterval = 3600) -> Installation {
        var installation = Fixtures.installation(id, expiresIn: expiresIn)
        installation.organizationName = name
        installation.urlKey = urlKey
        return installation
    }

    @Test("the name and URL key round-trip, and a row without them (from before) reads as nil", arguments: StoreKind.allCases)
    func roundTrip(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save([
                Self.installation("org-acme", name: "Acme & <Co>", urlKey: "acme"), Self.installation("org-old", name: nil, urlKey: nil),
            ])
            let acme = try #require(try await test.store.load(organizationID: "org-acme")).metadata
            #expect(acme.organizationName == "Acme & <Co>" && acme.urlKey == "acme")
            #expect(acme.displayName == "Acme & <Co> (acme)")
            let old = try #require(try await test.store.load(organizationID: "org-old")).metadata
            #expect(old.organizationName == nil && old.urlKey == nil && old.displayName == "org-old")
            // A refresh writes the row again: the name stays.
            var refreshed = try #require(try await vault.load(organizationID: "org-acme"))
            refreshed.accessToken = Secret("new-access")
            try await vault.save(refreshed)
            #expect(try await test.store.load(organizationID: "org-acme")?.metadata.urlKey == "acme")
            let json = String(decoding: try RFC3339.jsonEncoder().encode(acme), as: UTF8.self)
            #expect(json.contains("\"organization_name\":\"Acme & <Co>\"") && json.contains("\"url_key\":\"acme\""))
        }
    }

    @Test("migration 7 adds the name and URL key to a populated version-6 database: rows from before have none until re-installed",
          arguments: StoreKind.allCases)
    func migration(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            let installation = Self.installation("org-m7", name: "Acme", urlKey: "acme")
            try await vault.save(installation)
            try await TokenStoreTests.undoMigration7(test)
            try await test.store.migrate()
            let migrated = try #require(try await vault.load(organizationID: "org-m7"))
            #expect(migrated.organizationName == nil && migrated.urlKey == nil)
            #expect(migrated.accessToken == installation.accessToken)
            #expect(try await test.store.lookUp("acme") == .notFound(suggestions: []))
            try await vault.save(installation)
            #expect(try await test.store.lookUp("acme").organizationID == "org-m7")
        }
    }

    @Test("search: organization id, name or URL key, ASCII case ignored, % and _ plain; keyset pages; exact URL keys", arguments: StoreKind.allCases)
    func search(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save([
                Self.installation("org-1", name: "Acme Corp", urlKey: "acme"),
                Self.installation("org-2", name: "Globex", urlKey: "globex"),
                Self.installation("org-3", name: "100% Real_Name", urlKey: "real"),
                Self.installation("org-acmeish", name: nil, urlKey: nil),
                Self.installation("org-5", name: "Initech", urlKey: "acme-labs"),
                Self.installation("org-6", name: "ÉCOLE Ärzte", urlKey: nil),
            ])
            func ids(_ search: InstallationSearch, after: String? = nil, limit: Int = 100) async throws -> [String] {
                try await test.store.metadata(matching: search, after: after, limit: limit).map(\.organizationID)
            }
            #expect(try await ids(.containing("ACME")) == ["org-1", "org-5", "org-acmeish"])
            #expect(try await ids(.containing("glob")) == ["org-2"])
            #expect(try await ids(.containing("org-2")) == ["org-2"])
            #expect(try await ids(.containing("%")) == ["org-3"])
            #expect(try await ids(.containing("l_n")) == ["org-3"])
            #expect(try await ids(.containing("_")) == ["org-3"])
            #expect(try await ids(.containing("nothing")) == [])
            // ASCII letters fold, others do not (in both stores): É is not é.
            #expect(try await ids(.containing("COLE ä")) == [])
            #expect(try await ids(.containing("cole Ä")) == ["org-6"])
            #expect(try await ids(.containing("école")) == [])
            #expect(try await ids(.containing("ÉCOLE")) == ["org-6"])
            #expect(try await ids(.all, limit: 2) == ["org-1", "org-2"])
            #expect(try await ids(.all, after: "org-2", limit: 2) == ["org-3", "org-5"])
            #expect(try await ids(.containing("acme"), after: "org-1") == ["org-5", "org-acmeish"])
            #expect(try await ids(.urlKey("acme")) == ["org-1"])
            #expect(try await ids(.urlKey("ACME")) == [])
            // The store's answer and the in-memory rule agree.
            let all = try await test.store.listMetadata()
            for text in ["ACME", "glob", "%", "l_n", "org", "cole Ä", "école", "ÉCOLE"] {
                #expect(try await ids(.containing(text)) == all.filter { InstallationSearch.containing(text).matches($0) }.map(\.organizationID))
            }
        }
    }

    @Test("soonest expiring: active installations only, soonest first", arguments: StoreKind.allCases)
    func soonest(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            var marked = Self.installation("org-marked", name: nil, urlKey: nil, expiresIn: 10)
            marked.status = .reauthorizationRequired
            try await vault.save([
                Self.installation("org-late", name: nil, urlKey: nil, expiresIn: 7200), Self.installation("org-soon", name: nil, urlKey: nil, expiresIn: 60),
                Self.installation("org-mid", name: nil, urlKey: nil, expiresIn: 600), marked,
            ])
            #expect(try await test.store.soonestExpiring(limit: 2).map(\.organizationID) == ["org-soon", "org-mid"])
            #expect(try await test.store.soonestExpiring(limit: 10).map(\.organizationID) == ["org-soon", "org-mid", "org-late"])
        }
    }

    @Test("look-up: an organization id first, else exactly one URL key; several is ambiguous; a miss suggests the closest", arguments: StoreKind.allCases)
    func lookUp(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save([
                Self.installation("org-acme", name: "Acme", urlKey: "acme"),
                Self.installation("org-globex", name: "Globex", urlKey: "globex"),
                Self.installation("org-old-globex", name: "Globex (before the rename)", urlKey: "globex"),
                Self.installation("acme", name: "Has an id like a key", urlKey: "other"),
            ])
            #expect(try await test.store.lookUp("org-acme").organizationID == "org-acme")
            // An organization id wins over a URL key of the same spelling.
            #expect(try await test.store.lookUp("acme").organizationID == "acme")
            #expect(try await test.store.lookUp("other").organizationID == "acme")
            guard case .ambiguous(let matches) = try await test.store.lookUp("globex") else {
                Issue.record("globex is two installations' URL key")
                return
            }
            #expect(Set(matches.map(\.organizationID)) == ["org-globex", "org-old-globex"])
            #expect(try await test.store.lookUp("other", suggesting: false).organizationID == "acme")
            guard case .notFound(let suggestions) = try await test.store.lookUp("org-acm") else {
                Issue.record("org-acm is not installed")
                return
            }
            #expect(suggestions.first == "org-acme")
            guard case .notFound(let typo) = try await test.store.lookUp("globexx") else {
                Issue.record("globexx is not installed")
                return
            }
            #expect(typo.first == "globex")
            guard case .notFound(let none) = try await test.store.lookUp("zzzzzzzzzz") else {
                Issue.record("zzzzzzzzzz is not installed")
                return
            }
            #expect(none.isEmpty)
        }
    }
}
