import Crypto
import Foundation

/// For the project's secrets check: with `LINEAR_OAUTH_SECRET_AUDIT=DIR` set, every token, code and
/// client secret the emulator hands out is appended to `DIR/secrets/`, so that the check can search
/// logs and answers for them. Unset (always, outside that check), it does nothing.
enum SecretLedger {
    private static let file: FileHandle? = {
        guard let directory = ProcessInfo.processInfo.environment["LINEAR_OAUTH_SECRET_AUDIT"], !directory.isEmpty else { return nil }
        let path = "\(directory)/secrets/emulator-\(getpid()).txt"
        try? FileManager.default.createDirectory(atPath: "\(directory)/secrets", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        return FileHandle(forWritingAtPath: path)
    }()
    private static let lock = NSLock()

    static func record(_ value: String, kind: String) {
        guard let file else { return }
        lock.lock()
        defer { lock.unlock() }
        file.seekToEndOfFile()
        file.write(Data("emulator-\(kind)\t\(value)\n".utf8))
    }

    static func record(_ client: EmulatedClient) {
        record(client.secret, kind: "client-secret")
        if let secret = client.webhookSecret { record(secret, kind: "webhook-secret") }
    }
}
