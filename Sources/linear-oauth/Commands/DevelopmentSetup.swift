import Foundation
import LinearEmulator
import LinearOAuth

/// `serve --emulator`: the emulator on a free port, a generated client, and development key files.
struct DevelopmentSetup {
    let emulator: LinearEmulator
    let environment: [String: String]

    static func start(host: String, port: Int, settings: Settings, keys: KeyOptions, store: StoreOptions) async throws -> DevelopmentSetup {
        var result: [String: String] = [:]
        let directory: String
        switch try store.url(settings) {
        case .sqlite(let path): directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        case .postgres: directory = FileManager.default.currentDirectoryPath
        }
        func warn(_ text: String) { FileHandle.standardError.write(Data("linear-oauth: warning: \(text)\n".utf8)) }
        if keys.isUnset(settings) {
            let path = directory + "/linear-oauth.dev-keys"
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(
                    atPath: path, contents: Data((KeyRing.generateEntry(id: "dev") + "\n").utf8), attributes: [.posixPermissions: 0o600])
            }
            warn("using the DEVELOPMENT encryption key file \(path): never use it for real tokens")
            result[KeyRing.keysFileVariable] = path
        }
        if settings.string("LINEAR_OAUTH_API_KEYS", flag: nil) == nil {
            let path = directory + "/linear-oauth.dev-api-key"
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(
                    atPath: path, contents: Data(PKCE().verifier.utf8), attributes: [.posixPermissions: 0o600])
            }
            result["LINEAR_OAUTH_API_KEYS"] = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            warn("the /v1 API key is in the DEVELOPMENT file \(path)")
        }
        let webhookSecret = settings.string("LINEAR_WEBHOOK_SECRET", flag: nil) ?? PKCE().verifier
        let client = EmulatedClient(
            id: "dev-client-\(UUID().uuidString.prefix(8).lowercased())", secret: PKCE().verifier, name: "Your app (development)",
            redirectURIs: ["http://\(host):\(port)/oauth/callback"],
            webhookURL: "http://\(host):\(port)/webhooks/linear", webhookSecret: webhookSecret)
        let emulator = LinearEmulator(clients: [client])
        let url = try await emulator.start()
        FileHandle.standardOutput.write(Data("Linear emulator listening on \(url) (not the real Linear)\n".utf8))
        result["LINEAR_CLIENT_ID"] = client.id
        result["LINEAR_CLIENT_SECRET"] = client.secret
        result["LINEAR_API_URL"] = url
        result["LINEAR_AUTHORIZE_URL"] = url + "/oauth/authorize"
        result["LINEAR_REDIRECT_URI"] = "http://\(host):\(port)/oauth/callback"
        result["LINEAR_WEBHOOK_SECRET"] = webhookSecret
        return DevelopmentSetup(emulator: emulator, environment: result)
    }
}
