import ArgumentParser
import LinearOAuth

/// The encryption keys.
struct KeyOptions: ParsableArguments {
    @Option(
        name: .customLong("encryption-keys"),
        help: ArgumentHelp(
            "Comma-separated ID:BASE64 32-byte keys; the first encrypts, all decrypt. Prefer the environment or a file: flags show in the process list. (env: LINEAR_OAUTH_ENCRYPTION_KEYS)",
            valueName: "keys"))
    var encryptionKeys: String?

    @Option(
        name: .customLong("encryption-keys-file"),
        help: ArgumentHelp(
            "A file holding the keys in the same format, mode 0600. (env: LINEAR_OAUTH_ENCRYPTION_KEYS_FILE)",
            valueName: "path"))
    var encryptionKeysFile: String?

    func validate() throws {
        if encryptionKeys != nil { Settings.warnSecretFlag("--encryption-keys", KeyRing.keysVariable + " or " + KeyRing.keysFileVariable) }
    }

    /// Whether neither flag nor variable names any key.
    func isUnset(_ settings: Settings) -> Bool {
        settings.string(KeyRing.keysVariable, flag: encryptionKeys) == nil
            && settings.string(KeyRing.keysFileVariable, flag: encryptionKeysFile) == nil
    }

    func keyRing(_ settings: Settings = Settings()) throws -> KeyRing {
        try KeyRing.load(keys: encryptionKeys, keysFile: encryptionKeysFile, environment: settings.environment)
    }
}
