import Foundation
import LinearEmulator
import LinearOAuth

/// `serve --emulator`: a development world of its own that cannot touch real installations. Its
/// database, encryption key, API key and the emulator's state (workspaces, clients, grants, tokens)
/// live in `.linear-oauth-dev/` in the working directory (mode 0700; every file 0600, created
/// atomically, its mode checked when it is used again), so an install survives a restart. The
/// environment's `DATABASE_URL` and encryption keys are not used: only the flags choose others.
/// `commands.env` records what the operator commands need, so that `linear-oauth token org-acme`
/// works in the same folder with no configuration (``CommandSettings``).
struct DevelopmentSetup {
    /// The development folder, in the working directory (`.gitignore` lists it).
    static let directoryName = ".linear-oauth-dev"
    /// The emulated OAuth client the service uses.
    static let clientID = "dev-client"

    let emulator: LinearEmulator
    /// Settings to lay over the environment.
    let environment: [String: String]

    static func start(host: String, port: Int, settings: Settings, keys: KeyOptions, store: StoreOptions) async throws -> DevelopmentSetup {
        let directory = FileManager.default.currentDirectoryPath + "/" + directoryName
        try makeDirectory(directory)
        func note(_ text: String) { FileHandle.standardError.write(Data("linear-oauth: development: \(text)\n".utf8)) }
        var result: [String: String] = [:]

        if store.databaseURL == nil {
            result[DatabaseURL.variable] = "sqlite:\(directory)/linear-oauth.sqlite"
            let ignored = settings.string(DatabaseURL.variable, flag: nil) != nil ? " (DATABASE_URL is not used; --database-url chooses another)" : ""
            note("database \(directoryName)/linear-oauth.sqlite\(ignored)")
        }
        if keys.encryptionKeys == nil, keys.encryptionKeysFile == nil {
            let path = directory + "/keys"
            _ = try create(path, KeyRing.generateEntry(id: "dev") + "\n")
            result[KeyRing.keysFileVariable] = path
            result[KeyRing.keysVariable] = ""   // blank: the environment's keys are not used
            note("encryption key \(directoryName)/keys: for development only, never for real tokens")
        }
        if settings.string("LINEAR_OAUTH_API_KEYS", flag: nil) == nil {
            let path = directory + "/api-key"
            _ = try create(path, PKCE().verifier + "\n")
            result["LINEAR_OAUTH_API_KEYS"] = try read(path).trimmingCharacters(in: .whitespacesAndNewlines)
            note("the /v1 API key is in \(directoryName)/api-key")
        }

        // The emulator keeps its world in a file of its own: the client, its grants and tokens survive a restart.
        let emulator = try await LinearEmulator(stateFile: directory + "/emulator.json")
        let existing = await emulator.client(clientID)
        let webhookSecret = settings.string("LINEAR_WEBHOOK_SECRET", flag: nil) ?? existing?.webhookSecret ?? PKCE().verifier
        let client = EmulatedClient(
            id: clientID, secret: existing?.secret ?? PKCE().verifier, name: "Your app (development)",
            redirectURIs: ["http://\(host):\(port)/oauth/callback"],
            webhookURL: "http://\(host):\(port)/webhooks/linear", webhookSecret: webhookSecret)
        await emulator.add(client)
        try await emulator.persist()
        let url = try await emulator.start()
        FileHandle.standardOutput.write(Data("Linear emulator listening on \(url) (not the real Linear)\n".utf8))
        result["LINEAR_CLIENT_ID"] = client.id
        result["LINEAR_CLIENT_SECRET"] = client.secret
        result["LINEAR_API_URL"] = url
        result["LINEAR_AUTHORIZE_URL"] = url + "/oauth/authorize"
        result["LINEAR_REDIRECT_URI"] = "http://\(host):\(port)/oauth/callback"
        result["LINEAR_WEBHOOK_SECRET"] = webhookSecret
        // What `linear-oauth token` and `installations ...` need in this folder (CommandSettings).
        var recorded = result
        if let databaseURL = store.databaseURL { recorded[DatabaseURL.variable] = databaseURL }
        if let keysFile = keys.encryptionKeysFile { recorded[KeyRing.keysFileVariable] = keysFile }
        try CommandSettings.record(recorded, directory: directory)
        return DevelopmentSetup(emulator: emulator, environment: result)
    }

    /// The folder, mode 0700, refused if others may write to it.
    private static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw CommandFailure(description: "cannot create the development folder \(path)")
        }
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw CommandFailure(description: "\(path) is not a folder")
        }
        guard info.st_mode & 0o022 == 0 else {
            throw CommandFailure(description: "the development folder \(path) may be written by others; run chmod 700 \(path)")
        }
    }

    /// Creates a development secret file (mode 0600, atomically) unless it exists.
    private static func create(_ path: String, _ contents: String) throws -> Bool {
        do {
            return try SecretFile.create(path, contents: Data(contents.utf8))
        } catch {
            throw CommandFailure(description: "cannot create the development file \(path)")
        }
    }

    /// Reads a development secret file, refusing one that others can read.
    private static func read(_ path: String) throws -> String {
        do {
            return String(decoding: try SecretFile.read(path), as: UTF8.self)
        } catch .tooOpen(let mode) {
            throw CommandFailure(
                description: "the development file \(path) is readable by others (mode \(String(mode, radix: 8))); run chmod 600 \(path)",
                status: ExitStatus.usage)
        } catch {
            throw CommandFailure(description: "cannot read the development file \(path)", status: ExitStatus.usage)
        }
    }
}
