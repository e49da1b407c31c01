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
        }
    }
}

/// A stored token that could not be opened. Names the organization, never the bytes.
public enum TokenDecryptionError: Error, Equatable, CustomStringConvertible {
    case unknownKeyID(organizationID: String, keyID: String)
    case authenticationFailed(organizationID: String, column: TokenColumn)
    case malformed(organizationID: String, column: TokenColumn)

    public var description: String {
        switch self {
        case .unknownKeyID(let organizationID, let keyID):
            "the tokens of organization \(organizationID) are encrypted under key \"\(keyID)\", which is not in the key ring"
        case .authenticationFailed(let organizationID, let column):
            "the \(column.rawValue) of organization \(organizationID) failed authentication (wrong key, or the value was altered or moved)"
        case .malformed(let organizationID, let column):
            "the \(column.rawValue) of organization \(organizationID) is not in a known encrypted format"
        }
    }
}

/// A storage failure. Messages carry no token and no database password.
public enum TokenStoreError: Error, Equatable, CustomStringConvertible {
    /// Another holder kept the organization's refresh lock past the lock timeout. Transient: try again.
    case lockTimeout(organizationID: String)
    /// `DATABASE_URL` (or `--database-url`) is not a supported database URL.
    case invalidDatabaseURL(String)
    /// The database has migrations this build does not know: it was migrated by a newer version.
    case schemaTooNew(databaseVersion: Int, supportedVersion: Int)
    /// The database reported an error.
    case database(String)

    public var description: String {
        switch self {
        case .lockTimeout(let organizationID):
            "timed out waiting for the refresh lock of organization \(organizationID)"
        case .invalidDatabaseURL(let reason):
            "invalid DATABASE_URL: \(reason)"
        case .schemaTooNew(let databaseVersion, let supportedVersion):
            "the database schema is at version \(databaseVersion), newer than this build supports (\(supportedVersion)); upgrade linear-oauth"
        case .database(let message):
            "database error: \(message)"
        }
    }
}
