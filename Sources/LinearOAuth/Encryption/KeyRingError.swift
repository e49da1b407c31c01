/// A problem with the configured encryption keys. Messages name the problem, never key bytes.
public enum KeyRingError: Error, Equatable, CustomStringConvertible {
    case noKeysConfigured
    case malformedEntry(position: Int, source: String)
    case invalidKeyID(position: Int)
    case invalidBase64(keyID: String)
    case wrongKeyLength(keyID: String, byteCount: Int)
    case duplicateKeyID(String)
    case keyFileUnreadable(path: String)
    case keyFileTooOpen(path: String, mode: Int)
    case keyFileWrongOwner(path: String, owner: Int)

    public var description: String {
        switch self {
        case .noKeysConfigured:
            "no encryption keys configured: set \(KeyRing.keysVariable) or \(KeyRing.keysFileVariable) (create one with `linear-oauth keys generate`)"
        case .malformedEntry(let position, let source):
            "encryption key entry \(position) in \(source) is not of the form ID:BASE64"
        case .invalidKeyID(let position):
            "encryption key entry \(position) has an invalid id: use 1 to 64 of A-Z a-z 0-9 . _ -"
        case .invalidBase64(let keyID):
            "encryption key \"\(keyID)\" is not valid base64"
        case .wrongKeyLength(let keyID, let byteCount):
            "encryption key \"\(keyID)\" is \(byteCount) bytes long; AES-256 needs exactly 32"
        case .duplicateKeyID(let id):
            "encryption key id \"\(id)\" appears more than once"
        case .keyFileUnreadable(let path):
            "cannot read the encryption key file \(path)"
        case .keyFileTooOpen(let path, let mode):
            "the encryption key file \(path) is readable by group or others (mode \(String(mode & 0o777, radix: 8))); run chmod 600 \(path)"
        case .keyFileWrongOwner(let path, let owner):
            "the encryption key file \(path) belongs to another user (uid \(owner)); it must belong to this process's user or to root"
        }
    }
}
