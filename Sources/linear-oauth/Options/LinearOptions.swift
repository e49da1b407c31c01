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
        name: .customLong("refresh-margin"), parsing: .unconditional,
        help: ArgumentHelp("Refresh when the access token expires within this many seconds. (env: LINEAR_OAUTH_REFRESH_MARGIN; default: 600)", valueName: "seconds"))
    var refreshMargin: Double?

    func validate() throws {
        if clientSecret != nil { Settings.warnSecretFlag("--client-secret", "LINEAR_CLIENT_SECRET") }
    }

    /// The client's settings: flags over `LINEAR_CLIENT_ID`, `LINEAR_CLIENT_SECRET`, `LINEAR_API_URL`,
    /// `LINEAR_REDIRECT_URI` and `LINEAR_AUTHORIZE_URL`.
    func clientConfiguration(_ settings: Settings = Settings()) throws -> LinearClientConfiguration {
        try LinearClientConfiguration.fromEnvironment(settings.overlaid([
            "LINEAR_CLIENT_ID": clientID, "LINEAR_CLIENT_SECRET": clientSecret, "LINEAR_API_URL": apiURL,
            "LINEAR_REDIRECT_URI": redirectURI, "LINEAR_AUTHORIZE_URL": authorizeURL,
        ]))
    }

    func managerConfiguration(_ settings: Settings = Settings()) throws -> TokenManager.Configuration {
        var configuration = TokenManager.Configuration()
        configuration.refreshMargin = try settings.seconds(
            "LINEAR_OAUTH_REFRESH_MARGIN", flag: refreshMargin, default: configuration.refreshMargin.timeInterval,
            name: "the refresh margin", mayBeZero: true)
        return configuration
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
}
