import Crypto
import Foundation

extension KeyRing {
    /// The environment variable holding `ID:BASE64` entries, comma-separated; the first encrypts.
    public static let keysVariable = "LINEAR_OAUTH_ENCRYPTION_KEYS"
    /// The environment variable naming a file with the same format (mode 0600 or stricter).
    public static let keysFileVariable = "LINEAR_OAUTH_ENCRYPTION_KEYS_FILE"

    /// Parses `ID:BASE64[,ID:BASE64...]`; whitespace and newlines around entries are ignored.
    /// - Parameter source: Where the text came from, for error messages (a variable or file name).
    public init(parsing text: String, source: String = KeyRing.keysVariable) throws(KeyRingError) {
        let entries = text.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == "\r" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !entries.isEmpty else { throw .noKeysConfigured }
        var keys: [(id: String, key: SymmetricKey)] = []
        for (index, entry) in entries.enumerated() {
            guard let colon = entry.firstIndex(of: ":") else {
                throw .malformedEntry(position: index + 1, source: source)
            }
            let id = String(entry[..<colon])
            guard KeyRing.isValidKeyID(id) else { throw .invalidKeyID(position: index + 1) }
            guard let bytes = Data(base64Encoded: String(entry[entry.index(after: colon)...])) else {
                throw .invalidBase64(keyID: id)
            }
            guard bytes.count == 32 else { throw .wrongKeyLength(keyID: id, byteCount: bytes.count) }
            keys.append((id, SymmetricKey(data: bytes)))
        }
        try self.init(keys: keys)
    }

    /// Loads the ring the way every command does: an explicit value, else an explicit file,
    /// else `LINEAR_OAUTH_ENCRYPTION_KEYS`, else `LINEAR_OAUTH_ENCRYPTION_KEYS_FILE`.
    public static func load(
        keys: String? = nil, keysFile: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(KeyRingError) -> KeyRing {
        if let keys, !keys.isEmpty { return try KeyRing(parsing: keys, source: "--encryption-keys") }
        if let keysFile, !keysFile.isEmpty { return try KeyRing(contentsOfFile: keysFile) }
        if let keys = environment[keysVariable], !keys.isEmpty { return try KeyRing(parsing: keys) }
        if let path = environment[keysFileVariable], !path.isEmpty { return try KeyRing(contentsOfFile: path) }
        throw .noKeysConfigured
    }

    /// Reads a key file through its symlinks (secret mounts are symlinks), refusing a file that its
    /// group or others can read, or that another user owns.
    public init(contentsOfFile path: String) throws(KeyRingError) {
        let data: Data
        do {
            data = try SecretFile.read(path)
        } catch {
            switch error {
            case .unreadable: throw .keyFileUnreadable(path: path)
            case .tooOpen(let mode): throw .keyFileTooOpen(path: path, mode: mode)
            case .wrongOwner(let uid): throw .keyFileWrongOwner(path: path, owner: uid)
            }
        }
        guard let text = String(data: data, encoding: .utf8) else { throw .keyFileUnreadable(path: path) }
        try self.init(parsing: text, source: path)
    }

    /// A new random 256-bit key as an `ID:BASE64` entry.
    /// - Parameter id: The key id; by default `k` followed by the UTC date and 4 random hex digits.
    public static func generateEntry(id: String? = nil) -> String {
        let key = SymmetricKey(size: .bits256)
        let base64 = key.withUnsafeBytes { Data($0).base64EncodedString() }
        return "\(id ?? defaultKeyID()):\(base64)"
    }

    static func defaultKeyID(now: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: now)
        let suffix = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        return String(format: "k%04d%02d%02d-", parts.year!, parts.month!, parts.day!)
            + String(repeating: "0", count: 4 - suffix.count) + suffix
    }
}
