import Crypto
import Foundation

/// An OAuth application registered with the emulator.
public struct EmulatedClient: Sendable, Codable, Equatable {
    public var id: String
    public var secret: String
    public var name: String
    /// Redirect URIs the client may use; the authorize and token endpoints require an exact match.
    public var redirectURIs: [String]
    /// Whether the `client_credentials` grant is enabled for this client.
    public var clientCredentialsEnabled: Bool
    /// Apps created before 2023-12-01 receive `scope` as a JSON array instead of a space-separated string.
    public var legacyScopeArray: Bool
    /// Where the `OAuthApp` webhooks go, and the secret that signs them.
    public var webhookURL: String?
    public var webhookSecret: String?

    public init(
        id: String, secret: String, name: String = "Test App", redirectURIs: [String], clientCredentialsEnabled: Bool = true,
        legacyScopeArray: Bool = false, webhookURL: String? = nil, webhookSecret: String? = nil
    ) {
        self.id = id
        self.secret = secret
        self.name = name
        self.redirectURIs = redirectURIs
        self.clientCredentialsEnabled = clientCredentialsEnabled
        self.legacyScopeArray = legacyScopeArray
        self.webhookURL = webhookURL
        self.webhookSecret = webhookSecret
    }

    enum CodingKeys: String, CodingKey {
        case id, secret, name
        case redirectURIs = "redirect_uris"
        case clientCredentialsEnabled = "client_credentials_enabled"
        case legacyScopeArray = "legacy_scope_array"
        case webhookURL = "webhook_url"
        case webhookSecret = "webhook_secret"
    }
}
