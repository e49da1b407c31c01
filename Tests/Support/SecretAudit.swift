import Crypto
import Foundation
import LinearOAuth
import Logging
import Synchronization

/// The secrets check (`Scripts/secret-audit.sh`): with `LINEAR_OAUTH_SECRET_AUDIT=DIR` set, the
/// tests write every secret they make to `DIR/secrets/`, every log record (all levels) to
/// `DIR/logs/`, and the HTTP answers, error messages and child-process output they see to
/// `DIR/captured/`; the script then searches everything captured, and the test run's own output,
/// for every secret. Without the variable nothing is written.
public enum SecretAudit {
    public static let directory: String? = {
        guard let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty else { return nil }
        for sub in ["secrets", "logs", "captured"] {
            try? FileManager.default.createDirectory(atPath: "\(path)/\(sub)", withIntermediateDirectories: true)
        }
        return path
    }()

    public static let variable = "LINEAR_OAUTH_SECRET_AUDIT"

    /// Routes every log record of this process, at every level, to `DIR/logs/` as well as to the
    /// test's own log (``TestLog/bootstrap()``; the first test helper to run calls it).
    public static func start() { TestLog.bootstrap() }

    /// Records a secret the tests made or used (a token, a key, a client secret, an API key).
    public static func secret(_ value: String, kind: String) {
        guard let directory, value.count >= 8 else { return }
        files.file("\(directory)/secrets/tests-\(getpid()).txt").append("\(kind)\t\(value)\n")
    }

    /// Records text the tests saw and that must not hold a secret (an error message, an HTTP answer).
    public static func capture(_ category: String, _ text: String) {
        guard let directory else { return }
        files.file("\(directory)/captured/\(category)-\(getpid()).txt").append(text + "\n")
    }

    private static let files = Files()

    private final class Files: Sendable {
        private let open = Mutex<[String: AppendingFile]>([:])
        func file(_ path: String) -> AppendingFile {
            open.withLock { open in
                if let file = open[path] { return file }
                let file = AppendingFile(path)
                open[path] = file
                return file
            }
        }
    }
}

/// Secrets for tests, recorded for the secrets check as they are made.
public enum TestSecrets {
    /// A key-ring entry `ID:BASE64` with a fresh key.
    public static func keyEntry(id: String) -> String {
        SecretAudit.start()
        let entry = KeyRing.generateEntry(id: id)
        SecretAudit.secret(String(entry.dropFirst(id.count + 1)), kind: "encryption-key")
        return entry
    }

    /// A fresh AES-256 key.
    public static func key() -> SymmetricKey {
        let key = SymmetricKey(size: .bits256)
        SecretAudit.secret(key.withUnsafeBytes { Data($0).base64EncodedString() }, kind: "encryption-key")
        return key
    }

    /// `value`, recorded as a secret of `kind` (an API key, a webhook secret, a fake token).
    @discardableResult
    public static func record(_ value: String, kind: String) -> String {
        SecretAudit.secret(value, kind: kind)
        return value
    }
}

/// A file that many tasks append whole lines to.
final class AppendingFile: Sendable {
    /// The open file (append-only), for a child process's standard error.
    let descriptor: Int32
    private let lock = Mutex(())

    init(_ path: String) {
        descriptor = Foundation.open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    }

    func append(_ text: String) {
        guard descriptor >= 0 else { return }
        let bytes = Array(text.utf8)
        lock.withLock { _ in
            var written = 0
            while written < bytes.count {
                let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                if count <= 0 { return }
                written += count
            }
        }
    }
}
