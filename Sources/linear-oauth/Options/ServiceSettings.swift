import ArgumentParser
import Configuration
import Foundation
import SystemPackage

/// `serve`'s settings from the process environment, then a secrets directory, then a `.env` file
/// (swift-configuration), flattened into one environment that ``Settings`` reads as usual. Flags still
/// win over all three.
struct ServiceSettings: ParsableArguments {
    @Option(name: .customLong("env-file"), help: ArgumentHelp(
        "A .env file (KEY=value lines) read after the environment. (env: LINEAR_OAUTH_ENV_FILE; default: ./.env when it exists)", valueName: "path"))
    var envFile: String?

    @Option(name: .customLong("secrets-dir"), help: ArgumentHelp(
        "A directory with one file per secret, named like linear-client-secret for LINEAR_CLIENT_SECRET (as Kubernetes and Docker mount them). (env: LINEAR_OAUTH_SECRETS_DIR)",
        valueName: "path"))
    var secretsDirectory: String?

    /// Every variable the service reads.
    static let variables = [
        "DATABASE_URL", "LINEAR_OAUTH_ENCRYPTION_KEYS", "LINEAR_OAUTH_ENCRYPTION_KEYS_FILE", "LINEAR_OAUTH_LOCK_TIMEOUT",
        "LINEAR_CLIENT_ID", "LINEAR_CLIENT_SECRET", "LINEAR_API_URL", "LINEAR_AUTHORIZE_URL", "LINEAR_REDIRECT_URI",
        "LINEAR_OAUTH_REFRESH_MARGIN", "LINEAR_OAUTH_API_KEYS", "LINEAR_WEBHOOK_SECRET", "LINEAR_OAUTH_INSTALL_URL",
        "LINEAR_OAUTH_SCOPES", "LINEAR_OAUTH_SUCCESS_URL", "LINEAR_OAUTH_DEAUTHORIZATION_THRESHOLD", "LINEAR_OAUTH_DEAUTHORIZATION_WINDOW",
        "LINEAR_OAUTH_INSTALL_RATE_LIMIT", "LINEAR_OAUTH_TRUST_PROXY", "LINEAR_OAUTH_MAX_PENDING_INSTALLS", "LINEAR_OAUTH_IDLE_TIMEOUT",
        "LINEAR_OAUTH_HEADER_TIMEOUT", "LINEAR_OAUTH_MAX_CONNECTIONS", "LINEAR_OAUTH_UNINSTALL_WEBHOOK_TOLERANCE",
        "LINEAR_OAUTH_PROMPT_CONSENT", "LINEAR_OAUTH_PUBLIC_URL", "LINEAR_OAUTH_MAX_CLOCK_SKEW", "LINEAR_OAUTH_TOKEN_CACHE_SIZE",
    ]

    /// The process environment with the secrets directory and the `.env` file filled in underneath it.
    func settings(_ process: [String: String] = ProcessInfo.processInfo.environment) async throws -> Settings {
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: process, secretsSpecifier: .all)]
        if let directory = secretsDirectory ?? process["LINEAR_OAUTH_SECRETS_DIR"] {
            do {
                providers.append(try await DirectoryFilesProvider(directoryPath: FilePath(directory)))
            } catch {
                throw ValidationError("cannot read the secrets directory \(directory)")
            }
        }
        let explicit = envFile ?? process["LINEAR_OAUTH_ENV_FILE"]
        let path = explicit ?? ".env"
        if explicit != nil || FileManager.default.fileExists(atPath: path) {
            do {
                providers.append(try await EnvironmentVariablesProvider(environmentFilePath: FilePath(path), secretsSpecifier: .all))
            } catch {
                throw ValidationError("cannot read the .env file \(path) (KEY=value lines)")
            }
        }
        let reader = ConfigReader(providers: providers)
        var environment = process
        for name in Self.variables {
            let key = ConfigKey(name.lowercased().split(separator: "_").map(String.init))
            if let value = reader.string(forKey: key, isSecret: true) { environment[name] = value }
        }
        return Settings(environment: environment)
    }
}
