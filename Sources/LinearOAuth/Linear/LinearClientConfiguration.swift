import Foundation

/// How to reach Linear and who we are to it.
public struct LinearClientConfiguration: Sendable {
    /// How the client proves its identity at the token endpoint (Linear accepts both).
    public enum ClientAuthentication: Sendable {
        /// `client_id` and `client_secret` as form fields (what Linear's docs show for every grant).
        case formFields
        /// `Authorization: Basic base64(client_id:client_secret)`.
        case basic
    }

    /// The OAuth application's client id (`LINEAR_CLIENT_ID`).
    public var clientID: String
    /// The OAuth application's client secret (`LINEAR_CLIENT_SECRET`).
    public var clientSecret: Secret
    /// The redirect URI registered with the application (`LINEAR_REDIRECT_URI`), for the install flow.
    public var redirectURI: String?
    /// Base URL of Linear's API (`LINEAR_API_URL`): the token, revoke and GraphQL endpoints hang off it.
    public var apiURL: String
    /// Linear's authorize page (`LINEAR_AUTHORIZE_URL`).
    public var authorizeURL: String
    /// Time allowed for each call, connection and answer included.
    public var timeout: Duration
    /// How the client authenticates at the token endpoint.
    public var clientAuthentication: ClientAuthentication

    public static let defaultAPIURL = "https://api.linear.app"
    public static let defaultAuthorizeURL = "https://linear.app/oauth/authorize"

    public init(
        clientID: String, clientSecret: Secret, redirectURI: String? = nil, apiURL: String = defaultAPIURL,
        authorizeURL: String = defaultAuthorizeURL, timeout: Duration = .seconds(15),
        clientAuthentication: ClientAuthentication = .formFields
    ) {
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURI = redirectURI
        self.apiURL = apiURL.hasSuffix("/") ? String(apiURL.dropLast()) : apiURL
        self.authorizeURL = authorizeURL
        self.timeout = timeout
        self.clientAuthentication = clientAuthentication
    }

    /// Reads `LINEAR_CLIENT_ID`, `LINEAR_CLIENT_SECRET` (both required), `LINEAR_REDIRECT_URI`,
    /// `LINEAR_API_URL` and `LINEAR_AUTHORIZE_URL`.
    /// - Throws: ``LinearOAuthError/configuration(_:)`` naming the missing or malformed variable.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> LinearClientConfiguration
    {
        func value(_ name: String) -> String? {
            environment[name].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        }
        guard let clientID = value("LINEAR_CLIENT_ID") else {
            throw LinearOAuthError.configuration(.init(message: "LINEAR_CLIENT_ID is not set"))
        }
        guard let clientSecret = value("LINEAR_CLIENT_SECRET") else {
            throw LinearOAuthError.configuration(.init(message: "LINEAR_CLIENT_SECRET is not set"))
        }
        let configuration = LinearClientConfiguration(
            clientID: clientID, clientSecret: Secret(clientSecret), redirectURI: value("LINEAR_REDIRECT_URI"),
            apiURL: value("LINEAR_API_URL") ?? defaultAPIURL, authorizeURL: value("LINEAR_AUTHORIZE_URL") ?? defaultAuthorizeURL)
        for (name, url) in [("LINEAR_API_URL", configuration.apiURL), ("LINEAR_AUTHORIZE_URL", configuration.authorizeURL)] {
            guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil
            else {
                throw LinearOAuthError.configuration(.init(message: "\(name) is not an http(s) URL"))
            }
        }
        return configuration
    }
}
