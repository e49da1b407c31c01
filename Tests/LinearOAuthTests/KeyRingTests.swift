import Crypto
import Foundation
import LinearOAuth
import LinearOAuthTestSupport
import Testing

@Suite("Key ring and token encryption", .capturesLogs)
struct KeyRingTests {
    @Test("a sealed token opens to the same text, under a fresh nonce each time")
    func roundTrip() throws {
        let ring = try Fixtures.keyRing("k1")
        let a = try ring.seal("lin_oauth_secret", organizationID: "org-1", column: .accessToken)
        let b = try ring.seal("lin_oauth_secret", organizationID: "org-1", column: .accessToken)
        #expect(a != b)
        #expect(try ring.open(a, organizationID: "org-1", column: .accessToken) == "lin_oauth_secret")
        #expect(try KeyRing.keyID(of: a, organizationID: "org-1", column: .accessToken) == "k1")
        #expect(a[0] == KeyRing.formatVersion)
        // version + id length + "k1" + nonce 12 + 16 bytes of text + tag 16
        #expect(a.count == 1 + 1 + 2 + 12 + 16 + 16)
    }

    /// Values sealed by Python's `cryptography` (AES-256-GCM) in the documented stored form, with the
    /// associated data built as documented: any change to the format or the associated data fails here,
    /// before rows already at rest stop opening.
    @Test("values sealed outside Swift, in the documented format, open (the stored form is pinned)")
    func knownAnswer() throws {
        let ring = try KeyRing(keys: [("k2026", SymmetricKey(data: Array(0..<32) as [UInt8]))])
        func bytes(_ hex: String) -> [UInt8] {
            var out: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex {
                let next = hex.index(index, offsetBy: 2)
                out.append(UInt8(hex[index..<next], radix: 16)!)
                index = next
            }
            return out
        }
        let access = bytes(
            "01056b323032366465666768696a6b6c6d6e6f2472b039168823ea563d3486b51204a223ac757dee1efc5e3abb12e859b0dfa75e3c3a96380b")
        let refresh = bytes(
            "01056b323032366465666768696a6b6c6d6e6f2472b0390b8c30ec5b1137b719cc8861d10ce4326085cd9ad8a0021a6d83d69f1b")
        #expect(try ring.open(access, organizationID: "org-known", column: .accessToken) == "lin_oauth_known_answer")
        #expect(try ring.open(refresh, organizationID: "org-known", column: .refreshToken) == "lin_refresh_é✓")
        #expect(throws: TokenDecryptionError.authenticationFailed(organizationID: "org-known", column: .accessToken)) {
            try ring.open(refresh, organizationID: "org-known", column: .accessToken)
        }
        let otherName = try KeyRing(keys: [("k2027", SymmetricKey(data: Array(0..<32) as [UInt8]))])
        #expect(throws: TokenDecryptionError.unknownKeyID(organizationID: "org-known", keyID: "k2026")) {
            try otherName.open(access, organizationID: "org-known", column: .accessToken)
        }
    }

    @Test("a value moved to another organization or column fails authentication")
    func boundToOrganizationAndColumn() throws {
        let ring = try Fixtures.keyRing("k1")
        let sealed = try ring.seal("token", organizationID: "org-1", column: .accessToken)
        #expect(throws: TokenDecryptionError.authenticationFailed(organizationID: "org-2", column: .accessToken)) {
            try ring.open(sealed, organizationID: "org-2", column: .accessToken)
        }
        #expect(throws: TokenDecryptionError.authenticationFailed(organizationID: "org-1", column: .refreshToken)) {
            try ring.open(sealed, organizationID: "org-1", column: .refreshToken)
        }
    }

    @Test("flipping any byte after the header makes the value fail to open")
    func flippedBytes() throws {
        let ring = try Fixtures.keyRing("k1")
        let sealed = try ring.seal("lin_refresh_abc", organizationID: "org-1", column: .refreshToken)
        for index in 4..<sealed.count {
            var tampered = sealed
            tampered[index] ^= 0x01
            #expect(throws: TokenDecryptionError.authenticationFailed(organizationID: "org-1", column: .refreshToken)) {
                try ring.open(tampered, organizationID: "org-1", column: .refreshToken)
            }
        }
        var badVersion = sealed
        badVersion[0] = 9
        #expect(throws: TokenDecryptionError.malformed(organizationID: "org-1", column: .refreshToken)) {
            try ring.open(badVersion, organizationID: "org-1", column: .refreshToken)
        }
        #expect(throws: TokenDecryptionError.malformed(organizationID: "org-1", column: .refreshToken)) {
            try ring.open(Array(sealed.prefix(20)), organizationID: "org-1", column: .refreshToken)
        }
    }

    @Test("the key id is authenticated too: renaming it to another key in the ring fails")
    func keyIDIsBound() throws {
        let ring = try KeyRing(keys: [("k1", TestSecrets.key()), ("k2", TestSecrets.key())])
        var sealed = try ring.seal("token", organizationID: "org-1", column: .accessToken)
        sealed[3] = UInt8(ascii: "2")  // "k1" -> "k2"
        #expect(throws: TokenDecryptionError.authenticationFailed(organizationID: "org-1", column: .accessToken)) {
            try ring.open(sealed, organizationID: "org-1", column: .accessToken)
        }
    }

    @Test("a value sealed under a key that is not in the ring names the organization and the key id")
    func unknownKeyID() throws {
        let old = try Fixtures.keyRing("old")
        let sealed = try old.seal("token", organizationID: "org-9", column: .accessToken)
        let ring = try Fixtures.keyRing("new")
        #expect(throws: TokenDecryptionError.unknownKeyID(organizationID: "org-9", keyID: "old")) {
            try ring.open(sealed, organizationID: "org-9", column: .accessToken)
        }
        let message = TokenDecryptionError.unknownKeyID(organizationID: "org-9", keyID: "old").description
        #expect(message.contains("org-9") && message.contains("\"old\""))
    }

    @Test("the first key seals and every key opens")
    func rotationOrder() throws {
        let k1 = TestSecrets.key(), k2 = TestSecrets.key()
        let before = try KeyRing(keys: [("k1", k1)])
        let after = try KeyRing(keys: [("k2", k2), ("k1", k1)])
        let old = try before.seal("token", organizationID: "o", column: .accessToken)
        #expect(try after.open(old, organizationID: "o", column: .accessToken) == "token")
        let new = try after.seal("token", organizationID: "o", column: .accessToken)
        #expect(try KeyRing.keyID(of: new, organizationID: "o", column: .accessToken) == "k2")
    }

    @Test("parsing keys: each bad input is its own clear error without key bytes")
    func parsingErrors() throws {
        let good = Fixtures.entry("k1")
        let base64 = String(good.split(separator: ":")[1])
        #expect(try KeyRing(parsing: good).activeKeyID == "k1")
        #expect(try KeyRing(parsing: " \(Fixtures.entry("a")) ,\n\(Fixtures.entry("b"))\n").keyIDs == ["a", "b"])
        #expect(throws: KeyRingError.noKeysConfigured) { try KeyRing(parsing: " , ") }
        #expect(throws: KeyRingError.malformedEntry(position: 1, source: KeyRing.keysVariable)) {
            try KeyRing(parsing: base64)
        }
        #expect(throws: KeyRingError.invalidBase64(keyID: "k1")) { try KeyRing(parsing: "k1:not*base64!") }
        let short = Data(repeating: 7, count: 16).base64EncodedString()
        #expect(throws: KeyRingError.wrongKeyLength(keyID: "k1", byteCount: 16)) { try KeyRing(parsing: "k1:\(short)") }
        #expect(throws: KeyRingError.duplicateKeyID("k1")) { try KeyRing(parsing: "\(good),\(Fixtures.entry("k1"))") }
        #expect(throws: KeyRingError.invalidKeyID(position: 2)) { try KeyRing(parsing: "\(good),bad id:\(base64)") }
        let messages = [
            KeyRingError.noKeysConfigured, .malformedEntry(position: 1, source: "x"), .invalidBase64(keyID: "k1"),
            .wrongKeyLength(keyID: "k1", byteCount: 16), .duplicateKeyID("k1"),
        ].map(\.description)
        #expect(messages[0].contains("LINEAR_OAUTH_ENCRYPTION_KEYS"))
        for message in messages { #expect(!message.contains(base64) && !message.contains(short)) }
    }

    @Test("a key file readable by group or others is refused; a 0600 file is used")
    func keyFilePermissions() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/keys"
        FileManager.default.createFile(atPath: path, contents: Data((Fixtures.entry("file-key") + "\n").utf8))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: KeyRingError.keyFileTooOpen(path: path, mode: 0o644)) {
            try KeyRing.load(environment: [KeyRing.keysFileVariable: path])
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(try KeyRing.load(environment: [KeyRing.keysFileVariable: path]).activeKeyID == "file-key")
        #expect(throws: KeyRingError.keyFileUnreadable(path: directory.path + "/missing")) {
            try KeyRing.load(environment: [KeyRing.keysFileVariable: directory.path + "/missing"])
        }
        #expect(throws: KeyRingError.noKeysConfigured) { try KeyRing.load(environment: [:]) }
    }

    @Test("a key file mounted as a symlink (Kubernetes, Docker) is read; the file it points to is judged, mode and owner")
    func keyFileThroughSymlinks() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // As a Kubernetes secret volume lays it out: keys -> ..data/keys -> ..2026_11_30/keys.
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory.path + "/..2026_11_30", withIntermediateDirectories: true)
        let real = directory.path + "/..2026_11_30/keys"
        #expect(fm.createFile(atPath: real, contents: Data((Fixtures.entry("mounted") + "\n").utf8), attributes: [.posixPermissions: 0o400]))
        try fm.createSymbolicLink(atPath: directory.path + "/..data", withDestinationPath: "..2026_11_30")
        try fm.createSymbolicLink(atPath: directory.path + "/keys", withDestinationPath: "..data/keys")
        let mounted = directory.path + "/keys"
        #expect(try KeyRing.load(environment: [KeyRing.keysFileVariable: mounted]).activeKeyID == "mounted")
        // The link's own mode (0777) does not matter; the file's does.
        try fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: real)
        #expect(throws: KeyRingError.keyFileTooOpen(path: mounted, mode: 0o644)) {
            try KeyRing.load(environment: [KeyRing.keysFileVariable: mounted])
        }
        try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: real)
        // Another user's file is refused (only root can give a file away, so only as root).
        if geteuid() == 0 {
            #expect(chown(real, 65_534, 65_534) == 0)
            #expect(throws: KeyRingError.keyFileWrongOwner(path: mounted, owner: 65_534)) {
                try KeyRing.load(environment: [KeyRing.keysFileVariable: mounted])
            }
        }
        // A dangling link, a directory: unreadable.
        try fm.createSymbolicLink(atPath: directory.path + "/dangling", withDestinationPath: "nowhere")
        #expect(throws: KeyRingError.keyFileUnreadable(path: directory.path + "/dangling")) {
            try KeyRing.load(environment: [KeyRing.keysFileVariable: directory.path + "/dangling"])
        }
        #expect(throws: KeyRingError.keyFileUnreadable(path: directory.path)) {
            try KeyRing.load(environment: [KeyRing.keysFileVariable: directory.path])
        }
    }

    @Test("secrets and key rings describe themselves without secret bytes")
    func redaction() throws {
        let secret = Secret(TestSecrets.record("lin_oauth_very_secret", kind: "access-token"))
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        let installation = Fixtures.installation("org-r")
        var dumped = ""
        dump(installation, to: &dumped)
        #expect(!dumped.contains(installation.accessToken.value))
        #expect(!"\(installation)".contains(installation.refreshToken.value))
        let ring = try KeyRing(parsing: Fixtures.entry("k1"))
        #expect("\(ring)" == "KeyRing(active: k1, keys: k1)")
    }

    @Test("generated entries parse back to a 32-byte key with the requested id")
    func generate() throws {
        let entry = TestSecrets.keyEntry(id: "prod-2026")
        #expect(entry.hasPrefix("prod-2026:"))
        #expect(Data(base64Encoded: String(entry.dropFirst("prod-2026:".count)))?.count == 32)
        let generated = KeyRing.generateEntry()
        #expect(try KeyRing(parsing: generated).keyIDs.count == 1)
        #expect(generated != KeyRing.generateEntry())
    }
}
