import Crypto
import Foundation
import LinearOAuth
import LinearOAuthTestSupport
import Testing

@Suite("Tokens encrypted at rest, and key rotation", .capturesLogs)
struct EncryptionAtRestTests {
    @Test("a dump of the database holds none of the plaintext tokens", arguments: StoreKind.allCases)
    func dumpHasNoPlaintext(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            let installations = (0..<5).map { Fixtures.installation("org-dump-\($0)") }
            try await vault.save(installations)
            let dump = try await test.dump()
            // The dump is real: it holds the organizations (so the search below is meaningful).
            #expect(dump.range(of: Data("org-dump-3".utf8)) != nil)
            for installation in installations {
                for token in [installation.accessToken.value, installation.refreshToken.value] {
                    #expect(dump.range(of: Data(token.utf8)) == nil)
                    let hex = token.utf8.map { String(format: "%02x", $0) }.joined()
                    #expect(dump.range(of: Data(hex.utf8)) == nil)
                }
            }
        }
    }

    @Test("a ciphertext copied into another row fails to open, naming that organization", arguments: StoreKind.allCases)
    func copiedToAnotherRow(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let vault = TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1"))
            try await vault.save([Fixtures.installation("org-a"), Fixtures.installation("org-b")])
            let a = try #require(try await test.store.load(organizationID: "org-a"))
            var b = try #require(try await test.store.load(organizationID: "org-b"))
            b.accessToken = a.accessToken
            try await test.store.save(b)
            await #expect(throws: TokenDecryptionError.authenticationFailed(organizationID: "org-b", column: .accessToken)) {
                _ = try await vault.load(organizationID: "org-b")
            }
            var swapped = a
            swapped.refreshToken = a.accessToken
            try await test.store.save(swapped)
            await #expect(throws: TokenDecryptionError.authenticationFailed(organizationID: "org-a", column: .refreshToken)) {
                _ = try await vault.load(organizationID: "org-a")
            }
        }
    }

    @Test("rotation re-encrypts every row under the active key, in batches", arguments: StoreKind.allCases)
    func rotation(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let k1 = TestSecrets.key(), k2 = TestSecrets.key()
            let before = TokenVault(store: test.store, keyRing: try KeyRing(keys: [("k1", k1)]))
            let installations = Fixtures.organizations(7, prefix: "rot").map { Fixtures.installation($0) }
            try await before.save(installations)
            let after = TokenVault(store: test.store, keyRing: try KeyRing(keys: [("k2", k2), ("k1", k1)]))
            #expect(try await after.rotateKeys(batchSize: 3) == 7)
            #expect(try await after.list().allSatisfy { $0.keyID == "k2" })
            #expect(try await after.rotateKeys(batchSize: 3) == 0)
            // The old key can go now: every row opens under k2 alone.
            let only = TokenVault(store: test.store, keyRing: try KeyRing(keys: [("k2", k2)]))
            for installation in installations {
                let loaded = try #require(try await only.load(organizationID: installation.organizationID))
                #expect(loaded.accessToken == installation.accessToken)
                #expect(loaded.refreshToken == installation.refreshToken)
            }
        }
    }

    @Test("rotation walks the table once, each batch after the last, and a final pass finds a row written behind it",
          arguments: StoreKind.allCases)
    func rotationCursor(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let k1 = TestSecrets.key(), k2 = TestSecrets.key()
            let old = TokenVault(store: test.store, keyRing: try KeyRing(keys: [("k1", k1)]))
            try await old.save((1...7).map { Fixtures.installation("cur-\($0)") })
            // A process still on the old key writes org "cur-0", behind the cursor, after the first batch.
            let late = Fixtures.installation("cur-0")
            let store = CountingStore(test.store) { number in
                if number == 1 { try await old.save(late) }
            }
            let vault = TokenVault(store: store, keyRing: try KeyRing(keys: [("k2", k2), ("k1", k1)]))
            #expect(try await vault.rotateKeys(batchSize: 3) == 8)
            // Pass 1: 3, 3, 1 rows, each batch after the last; pass 2 from the start: "cur-0";
            // pass 3: nothing left.
            #expect(store.cursorsOfResealBatches == [nil, "cur-3", "cur-6", nil, nil])
            #expect(try await vault.list().map(\.keyID) == Array(repeating: "k2", count: 8))
            let loaded = try #require(try await TokenVault(store: test.store, keyRing: try KeyRing(keys: [("k2", k2)]))
                .load(organizationID: "cur-0"))
            #expect(loaded.refreshToken == late.refreshToken)
        }
    }

    @Test("an interrupted rotation resumes where it stopped", arguments: StoreKind.allCases)
    func interruptedRotation(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let k1 = TestSecrets.key(), k2 = TestSecrets.key()
            try await TokenVault(store: test.store, keyRing: try KeyRing(keys: [("k1", k1)]))
                .save(Fixtures.organizations(5, prefix: "int").map { Fixtures.installation($0) })
            let after = TokenVault(store: test.store, keyRing: try KeyRing(keys: [("k2", k2), ("k1", k1)]))
            #expect(try await after.rotateKeys(batchSize: 2, maxBatches: 1) == 2)
            let keys = try await after.list().map(\.keyID)
            #expect(keys == ["k2", "k2", "k1", "k1", "k1"])
            // A second process resumes it.
            let other = TokenVault(store: try await test.openAnother(), keyRing: after.keyRing)
            #expect(try await other.rotateKeys(batchSize: 2) == 3)
            #expect(try await after.list().allSatisfy { $0.keyID == "k2" })
            try await other.store.close()
        }
    }

    @Test("rotation stops on a row under a key not in the ring, naming it, and rolls back that batch",
          arguments: StoreKind.allCases)
    func rotationUnknownKey(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            try await TokenVault(store: test.store, keyRing: try Fixtures.keyRing("k1")).save(Fixtures.installation("org-a"))
            try await TokenVault(store: test.store, keyRing: try Fixtures.keyRing("lost")).save(Fixtures.installation("org-b"))
            let ring = try KeyRing(parsing: "\(Fixtures.entry("k2"))")
            await #expect(throws: TokenDecryptionError.unknownKeyID(organizationID: "org-a", keyID: "k1")) {
                _ = try await TokenVault(store: test.store, keyRing: ring).rotateKeys(batchSize: 10)
            }
            #expect(try await test.store.listMetadata().map(\.keyID) == ["k1", "lost"])
        }
    }

    @Test("rotation waits for a refresh holding the lock and keeps what the refresh wrote", arguments: StoreKind.allCases)
    func rotationDuringRefresh(kind: StoreKind) async throws {
        try await withTestStore(kind) { test in
            let k1 = TestSecrets.key(), k2 = TestSecrets.key()
            let old = TokenVault(store: test.store, keyRing: try KeyRing(keys: [("k1", k1)]))
            try await old.save([Fixtures.installation("org-1"), Fixtures.installation("org-2")])
            let newRing = try KeyRing(keys: [("k2", k2), ("k1", k1)])
            let refresher = TokenVault(store: test.store, keyRing: newRing)
            let rotator = TokenVault(store: try await test.openAnother(lockTimeout: .seconds(30)), keyRing: newRing)
            let refreshed = Fixtures.installation("org-1")
            let gate = Gate()
            let refresh = Task {
                try await refresher.withRefreshLock(organizationID: "org-1") { _, writer in
                    gate.open("locked")
                    try await gate.wait("write")
                    try await writer.save(refreshed)
                }
            }
            try await gate.wait("locked")
            let rotation = Task { try await rotator.rotateKeys(batchSize: 10) }
            gate.open("write")
            try await refresh.value
            let rotated = try await rotation.value
            #expect(rotated == 1)  // org-2 only: org-1 was already under k2 when the lock came free
            let loaded = try #require(try await refresher.load(organizationID: "org-1"))
            #expect(loaded.refreshToken == refreshed.refreshToken)
            #expect(try await refresher.list().allSatisfy { $0.keyID == "k2" })
            try await rotator.store.close()
        }
    }
}
