import ArgumentParser
import AsyncHTTPClient
import Foundation
import LinearOAuth

/// How to reach Linear.
struct LinearOptions: ParsableArguments {
    @Option(name: .customLong("client-id"), help: ArgumentHelp("The OAuth application's client id. (env: LINEAR_CLIENT_ID)", valueName: "id"))
    var clientID: String?

    @Option(
        name: .customLong("client-secret"),
        help: ArgumentHelp("The OAuth application's client secret; prefer the environment. (env: LINEAR_CLIENT_SECRET)", valueName: "secret"))
    var clientSecret: String?

    @Option(name: .customLong("api-url"), help: ArgumentHelp("Linear's API base URL. (env: LINEAR_API_URL; default: https://api.linear.app)", valueName: "url"))
    var apiURL: String?

    @Option(name: .customLong("redirect-uri"), help: ArgumentHelp(
        "The redirect URI registered with the application, for installs. (env: LINEAR_REDIRECT_URI; serve's default: http://HOST:PORT/oauth/callback)", valueName: "url"))
    var redirectURI: String?

    @Option(name: .customLong("authorize-url"), help: ArgumentHelp(
        "Linear's consent page. (env: LINEAR_AUTHORIZE_URL; default: https://linear.app/oauth/authorize)", valueName: "url"))
    var authorizeURL: String?

    @Option(
        name: .customLong("refresh-margin"),
        help: ArgumentHelp("Refresh when the access token expires within this many seconds. (env: LINEAR_OAUTH_REFRESH_MARGIN; default: 600)", valueName: "seconds"))
    var refreshMargin: Double?

    func clientConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> LinearClientConfiguration {
        var environment = environment
        if let clientID { environment["LINEAR_CLIENT_ID"] = clientID }
        if let clientSecret { environment["LINEAR_CLIENT_SECRET"] = clientSecret }
        if let apiURL { environment["LINEAR_API_URL"] = apiURL }
        if let redirectURI { environment["LINEAR_REDIRECT_URI"] = redirectURI }
        if let authorizeURL { environment["LINEAR_AUTHORIZE_URL"] = authorizeURL }
        return try LinearClientConfiguration.fromEnvironment(environment)
    }

    /// Runs `body` with an HTTP client that gives up on a refused connection at once (the shared
    /// client retries until the call's deadline, which makes a command wait for nothing).
    static func withHTTPClient<Result>(_ body: (HTTPClient) async throws -> Result) async throws -> Result {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    func managerConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TokenManager.Configuration {
        var configuration = TokenManager.Configuration()
        var margin = refreshMargin
        if margin == nil, let text = environment["LINEAR_OAUTH_REFRESH_MARGIN"] {
            guard let seconds = Double(text) else { throw ValidationError("LINEAR_OAUTH_REFRESH_MARGIN must be a number of seconds") }
            margin = seconds
        }
        if let margin {
            guard margin >= 0 else { throw ValidationError("the refresh margin cannot be negative") }
            configuration.refreshMargin = .milliseconds(Int64(margin * 1000))
        }
        return configuration
    }
}

/// Everything a command that calls Linear for one organization needs.
struct ManagerOptions: ParsableArguments {
    @OptionGroup var store: StoreOptions
    @OptionGroup var keys: KeyOptions
    @OptionGroup var linear: LinearOptions

    @Argument(help: "The Linear organization id.")
    var organization: String

    /// Opens the store behind a token manager (keys and Linear settings are checked first).
    func withManager<Result>(_ body: (TokenManager, String) async throws -> Result) async throws -> Result {
        let clientConfiguration = try linear.clientConfiguration()
        let configuration = try linear.managerConfiguration()
        return try await store.withVault(keys) { vault in
            try await LinearOptions.withHTTPClient { http in
                let linear = LinearClient(configuration: clientConfiguration, httpClient: http)
                return try await body(TokenManager(vault: vault, linear: linear, configuration: configuration), organization)
            }
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a valid access token for an organization (refreshed first if due), for scripts.",
        discussion: """
            Like `gcloud auth print-access-token`: the token alone on standard output.
            Exit status: 0 ok, 2 usage or configuration error, 3 not installed, 4 re-authorization required,
            5 Linear unreachable or another temporary failure (the stored tokens are kept).
            """)

    @OptionGroup var options: ManagerOptions

    func run() async throws {
        let token = try await options.withManager { try await $0.accessToken(for: $1) }
        print(token.token.value)
    }
}

struct RefreshInstallationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refresh", abstract: "Refresh an organization's tokens now, whatever their expiry.")

    @OptionGroup var options: ManagerOptions

    func run() async throws {
        let token = try await options.withManager { try await $0.forceRefresh(for: $1) }
        print("refreshed organization \(options.organization); the access token expires at \(RFC3339.format(token.expiresAt))")
    }
}

struct RevokeInstallationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke an organization's tokens at Linear and delete them here.",
        discussion: "A failure to revoke at Linear is reported but does not keep the tokens: they are deleted here regardless.")

    @OptionGroup var options: ManagerOptions

    func run() async throws {
        let result = try await options.withManager { try await $0.revoke(for: $1) }
        guard result.wasInstalled else { throw CommandFailure.notInstalled(options.organization) }
        for failure in result.linearFailures {
            FileHandle.standardError.write(Data("linear-oauth: warning: Linear did not revoke the \(failure)\n".utf8))
        }
        print("revoked the tokens of organization \(options.organization) and deleted them")
    }
}
