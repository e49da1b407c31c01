import Foundation
import LinearOAuth

/// The settings an operator command (`token`, `installations ...`, `keys ...`) reads: the environment,
/// and in a folder where `serve --emulator` ran, that development world's settings, so that
/// `linear-oauth token org-acme` works there with no configuration.
///
/// The development settings (`.linear-oauth-dev/commands.env`, mode 0600, written by each
/// `serve --emulator`) are used only when neither `--database-url` nor `DATABASE_URL` chooses a
/// database: a deployment, which names its database, is never affected. Flags still win.
enum CommandSettings {
    /// The development world's settings file, relative to the working directory.
    static let fileName = DevelopmentSetup.directoryName + "/commands.env"
    /// The variables recorded there.
    static let variables = [
        "DATABASE_URL", "LINEAR_OAUTH_ENCRYPTION_KEYS_FILE", "LINEAR_CLIENT_ID", "LINEAR_CLIENT_SECRET", "LINEAR_API_URL",
        "LINEAR_AUTHORIZE_URL", "LINEAR_REDIRECT_URI",
    ]

    /// The environment, with the development world's settings laid over it when they apply.
    static func current(databaseURLFlag: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) -> Settings {
        var settings = Settings(environment: environment)
        guard databaseURLFlag == nil, settings.string("DATABASE_URL", flag: nil) == nil,
            let recorded = try? read(FileManager.default.currentDirectoryPath + "/" + fileName)
        else { return settings }
        for (name, value) in recorded where variables.contains(name) { settings.environment[name] = value }
        // The development key file, not keys given in the environment for some other database.
        if recorded["LINEAR_OAUTH_ENCRYPTION_KEYS_FILE"] != nil { settings.environment["LINEAR_OAUTH_ENCRYPTION_KEYS"] = "" }
        noteOnce()
        return settings
    }

    /// Records the development world's settings (`serve --emulator`).
    static func record(_ values: [String: String], directory: String) throws {
        let text = variables.compactMap { name in values[name].map { "\(name)=\($0)\n" } }.joined()
        let path = directory + "/commands.env"
        // Replaced whole each start (the emulator's port changes): written aside, then renamed.
        let temporary = path + ".new"
        unlink(temporary)
        guard try SecretFile.create(temporary, contents: Data(text.utf8)), rename(temporary, path) == 0 else {
            throw CommandFailure(description: "cannot write the development file \(path)")
        }
    }

    private static func read(_ path: String) throws -> [String: String] {
        let text = String(decoding: try SecretFile.read(path), as: UTF8.self)
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    /// Where to look when settings are missing: `serve --emulator`'s world, if this folder has one that
    /// was not used (a database is named), else nothing.
    static func developmentHint() -> String {
        let directory = FileManager.default.currentDirectoryPath + "/" + DevelopmentSetup.directoryName
        guard FileManager.default.fileExists(atPath: directory + "/commands.env") || FileManager.default.fileExists(atPath: directory + "/keys")
        else { return "" }
        return " (serve --emulator's development world is in \(DevelopmentSetup.directoryName)/, its key in \(DevelopmentSetup.directoryName)/keys; "
            + "commands here use it when DATABASE_URL and --database-url are unset)"
    }

    nonisolated(unsafe) private static var noted = false

    /// Says once, on standard error, that the development world is used.
    private static func noteOnce() {
        guard !noted else { return }
        noted = true
        FileHandle.standardError.write(Data(
            "linear-oauth: development: using \(DevelopmentSetup.directoryName)/ (serve --emulator's database, key and emulator); set DATABASE_URL to use another\n".utf8))
    }
}
