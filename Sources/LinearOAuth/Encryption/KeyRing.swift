import Crypto
import Foundation

/// The column a sealed token belongs to; part of the associated data, so a value moved to the
/// other column fails to open.
public enum TokenColumn: String, Sendable, CaseIterable {
    case accessToken = "access_token"
    case refreshToken = "refresh_token"
    /// The PKCE verifier of an install in progress.
    case codeVerifier = "code_verifier"
}

/// The encryption keys: the active key seals, every key opens.
///
/// Each value is sealed with AES-256-GCM under a fresh random 96-bit nonce. The stored form is
/// `version (1 byte, 0x01) | key id length (1 byte) | key id (UTF-8) | nonce (12) | ciphertext | tag (16)`,
/// so a value names the key that opens it and keys can change without guessing. The associated
/// data binds the value to its organization, its column and its key id.
public struct KeyRing: Sendable, CustomStringConvertible {
    /// The stored-format version this build writes and reads.
    package static let formatVersion: UInt8 = 1
    static let nonceLength = 12
    static let tagLength = 16

    /// The id of the key that seals new values.
    public let activeKeyID: String
    /// Every key id in the ring, the active one first.
    public let keyIDs: [String]
    /// The keys with their ids' bytes, the active one first. A sealed value's key is found by
    /// comparing bytes, without making a string of its id (rings hold a few keys: a scan is cheaper
    /// than hashing).
    private let keys: [(id: [UInt8], key: SymmetricKey)]

    /// Creates a ring from keys in order; the first one is active.
    /// - Parameter keys: `(id, 32-byte key)` pairs.
    public init(keys: [(id: String, key: SymmetricKey)]) throws(KeyRingError) {
        guard let first = keys.first else { throw .noKeysConfigured }
        var seen: Set<String> = []
        for (position, entry) in keys.enumerated() {
            guard KeyRing.isValidKeyID(entry.id) else { throw .invalidKeyID(position: position + 1) }
            guard entry.key.bitCount == 256 else {
                throw .wrongKeyLength(keyID: entry.id, byteCount: entry.key.bitCount / 8)
            }
            guard seen.insert(entry.id).inserted else { throw .duplicateKeyID(entry.id) }
        }
        self.activeKeyID = first.id
        self.keyIDs = keys.map(\.id)
        self.keys = keys.map { (Array($0.id.utf8), $0.key) }
    }

    public var description: String { "KeyRing(active: \(activeKeyID), keys: \(keyIDs.joined(separator: ",")))" }

    /// Whether `id` can name a key: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    public static func isValidKeyID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64
            && id.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2E || byte == 0x5F || byte == 0x2D
            }
    }

    /// Seals `plaintext` under the active key for one organization's column.
    public func seal(_ plaintext: String, organizationID: String, column: TokenColumn) throws -> [UInt8] {
        let (idBytes, key) = keys[0]
        let aad = idBytes.withUnsafeBufferPointer { Self.associatedData(organizationID: organizationID, column: column, keyID: $0) }
        let box = try AES.GCM.seal(Array(plaintext.utf8), using: key, nonce: AES.GCM.Nonce(), authenticating: aad)
        var out: [UInt8] = []
        out.reserveCapacity(2 + idBytes.count + Self.nonceLength + box.ciphertext.count + Self.tagLength)
        out.append(Self.formatVersion)
        out.append(UInt8(idBytes.count))
        out.append(contentsOf: idBytes)
        box.nonce.withUnsafeBytes { out.append(contentsOf: $0) }
        out.append(contentsOf: box.ciphertext)
        out.append(contentsOf: box.tag)
        return out
    }

    /// Opens a value sealed for `organizationID`'s `column`.
    /// - Throws: ``TokenDecryptionError`` naming the organization (and key id or column), never the bytes.
    public func open(_ sealed: [UInt8], organizationID: String, column: TokenColumn) throws(TokenDecryptionError) -> String {
        let parts = try Self.parse(sealed, organizationID: organizationID, column: column)
        let keyID = sealed[parts.keyID]
        guard let key = keys.first(where: { $0.id.elementsEqual(keyID) })?.key else {
            guard let name = String(validating: keyID, as: UTF8.self) else { throw .malformed(organizationID: organizationID, column: column) }
            throw .unknownKeyID(organizationID: organizationID, keyID: name)
        }
        let plaintext: Data
        do {
            // Nonce, ciphertext and tag lie in that order at the end: the box's combined form, taken
            // in one piece (three pieces were three appends to a `Data`).
            let box = try AES.GCM.SealedBox(combined: sealed[parts.nonce.lowerBound..<parts.tag.upperBound])
            // The associated data on the stack: it lives only for this call.
            plaintext = try keyID.withUnsafeBufferPointer { keyID in
                try Self.withAssociatedData(organizationID: organizationID, column: column, keyID: keyID) { aad in
                    try AES.GCM.open(box, using: key, authenticating: aad)
                }
            }
        } catch {
            throw .authenticationFailed(organizationID: organizationID, column: column)
        }
        // Authenticated, so these are the bytes `seal` was given: a Swift string's UTF-8, valid as it
        // is (decoding repairs nothing; validating again cost about 1,500 instructions a token).
        return plaintext.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// The key id a sealed value names, without opening it.
    package static func keyID(of sealed: [UInt8], organizationID: String, column: TokenColumn) throws(TokenDecryptionError) -> String {
        let parts = try parse(sealed, organizationID: organizationID, column: column)
        guard let keyID = String(validating: sealed[parts.keyID], as: UTF8.self) else {
            throw .malformed(organizationID: organizationID, column: column)
        }
        return keyID
    }

    /// Whether the ring holds a key with this id.
    package func contains(keyID: String) -> Bool { keys.contains { $0.id.elementsEqual(keyID.utf8) } }

    /// Where a sealed value's parts lie.
    private struct Parts {
        var keyID: Range<Int>
        var nonce: Range<Int>
        var tag: Range<Int>
    }

    private static func parse(_ sealed: [UInt8], organizationID: String, column: TokenColumn) throws(TokenDecryptionError) -> Parts {
        guard sealed.count >= 2, sealed[0] == formatVersion else {
            throw .malformed(organizationID: organizationID, column: column)
        }
        let idLength = Int(sealed[1])
        let nonceStart = 2 + idLength
        let tagStart = sealed.count - tagLength
        guard idLength > 0, tagStart >= nonceStart + nonceLength else {
            throw .malformed(organizationID: organizationID, column: column)
        }
        return Parts(keyID: 2..<nonceStart, nonce: nonceStart..<(nonceStart + nonceLength), tag: tagStart..<sealed.count)
    }

    /// Length-prefixed fields, so no organization id can be crafted to collide with another's:
    /// each field is its length (4 bytes, big-endian) and its bytes.
    static func associatedData(organizationID: String, column: TokenColumn, keyID: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        withAssociatedData(organizationID: organizationID, column: column, keyID: keyID) { Array($0) }
    }

    /// Runs `body` with the associated data (see ``associatedData(organizationID:column:keyID:)``),
    /// written into temporary memory of its exact size, a copy per field (appending byte by byte
    /// to an array cost about 1,000 instructions a token, and the array an allocation).
    static func withAssociatedData<Result>(
        organizationID: String, column: TokenColumn, keyID: UnsafeBufferPointer<UInt8>,
        _ body: (UnsafeRawBufferPointer) throws -> Result
    ) rethrows -> Result {
        var organizationID = organizationID, columnName = column.rawValue
        return try organizationID.withUTF8 { organization in
            try columnName.withUTF8 { columnName in
                try associatedDataDomain.withUnsafeBufferPointer { domain in
                    let count = 16 + domain.count + organization.count + columnName.count + keyID.count
                    return try withUnsafeTemporaryAllocation(byteCount: count, alignment: 1) { buffer in
                        // A loop, not a local function: one capturing the position cost an
                        // exclusivity check per access.
                        var at = buffer.baseAddress!
                        for field in [domain, organization, columnName, keyID] {
                            at.storeBytes(of: UInt32(field.count).bigEndian, as: UInt32.self)
                            at += 4
                            if let source = field.baseAddress { at.copyMemory(from: source, byteCount: field.count) }
                            at += field.count
                        }
                        return try body(UnsafeRawBufferPointer(buffer))
                    }
                }
            }
        }
    }

    /// The associated data's first field: what the value is (and the format's version).
    private static let associatedDataDomain: [UInt8] = Array("linear-oauth/v1".utf8)
}

extension KeyRing {
    /// Seals both tokens of an installation under the active key.
    public func seal(_ installation: Installation) throws -> SealedInstallation {
        var metadata = installation.metadata
        metadata.keyID = activeKeyID
        return SealedInstallation(
            metadata: metadata,
            accessToken: try seal(installation.accessToken.value, organizationID: metadata.organizationID, column: .accessToken),
            refreshToken: try seal(installation.refreshToken.value, organizationID: metadata.organizationID, column: .refreshToken))
    }

    /// Opens both tokens of a stored installation.
    public func open(_ sealed: SealedInstallation) throws(TokenDecryptionError) -> Installation {
        let organizationID = sealed.metadata.organizationID
        return Installation(
            metadata: sealed.metadata,
            accessToken: Secret(try open(sealed.accessToken, organizationID: organizationID, column: .accessToken)),
            refreshToken: Secret(try open(sealed.refreshToken, organizationID: organizationID, column: .refreshToken)))
    }
}

extension KeyRing {
    /// Seals an app token under the active key.
    package func sealAppToken(clientID: String, accessToken: Secret, expiresAt: Date, scopes: [String]) throws -> SealedAppToken {
        SealedAppToken(
            clientID: clientID,
            accessToken: try seal(accessToken.value, organizationID: SealedAppToken.sealingName(clientID: clientID), column: .accessToken),
            expiresAt: expiresAt, scopes: scopes, keyID: activeKeyID)
    }

    /// Opens an app token.
    package func openAppToken(_ token: SealedAppToken) throws(TokenDecryptionError) -> Secret {
        Secret(try open(token.accessToken, organizationID: SealedAppToken.sealingName(clientID: token.clientID), column: .accessToken))
    }
}
