import Crypto
import Foundation

/// A Linear workspace in the emulator.
public struct EmulatedOrganization: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var urlKey: String
    /// The app's user id in this workspace (what `viewer.id` returns for an `actor=app` token).
    public var appUserID: String

    public init(id: String, name: String, urlKey: String, appUserID: String) {
        self.id = id
        self.name = name
        self.urlKey = urlKey
        self.appUserID = appUserID
    }

    enum CodingKeys: String, CodingKey {
        case id, name
        case urlKey = "url_key"
        case appUserID = "app_user_id"
    }
}

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

/// Run-time settings a test can change under `/_emulator/config`.
public struct EmulatorSettings: Sendable, Codable, Equatable {
    /// Seconds an access token lives (Linear: 86 399, announced as `expires_in`).
    public var accessTokenLifetime: Int = 86_399
    /// Seconds during which a rotated refresh token replays the same answer (Linear: 30 minutes).
    public var gracePeriod: Int = 1_800
    /// Seconds an authorization code stays usable.
    public var authorizationCodeLifetime: Int = 600
    /// Seconds a client_credentials token lives (Linear: 30 days, `expires_in: 2591999`).
    public var appTokenLifetime: Int = 2_591_999
    /// Redirect at once from `/oauth/authorize` instead of showing the consent page.
    public var autoApprove: Bool = false
    /// The workspace an approval installs into (default: the first organization).
    public var defaultOrganizationID: String?
    /// Added to every OAuth and GraphQL call, in milliseconds.
    public var latencyMilliseconds: Int = 0
    /// GraphQL requests allowed per access token per window; `nil`: no limit.
    public var rateLimitRequests: Int?
    /// The rate-limit window in seconds.
    public var rateLimitWindow: Int = 3_600
    /// The HTTP status of a `RATELIMITED` answer (Linear sends 400 or 429).
    public var rateLimitStatus: Int = 400

    public init() {}

    enum CodingKeys: String, CodingKey {
        case accessTokenLifetime = "access_token_lifetime"
        case gracePeriod = "grace_period"
        case authorizationCodeLifetime = "authorization_code_lifetime"
        case appTokenLifetime = "app_token_lifetime"
        case autoApprove = "auto_approve"
        case defaultOrganizationID = "default_organization_id"
        case latencyMilliseconds = "latency_ms"
        case rateLimitRequests = "rate_limit_requests"
        case rateLimitWindow = "rate_limit_window"
        case rateLimitStatus = "rate_limit_status"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = EmulatorSettings.defaults
        accessTokenLifetime = try c.decodeIfPresent(Int.self, forKey: .accessTokenLifetime) ?? d.accessTokenLifetime
        gracePeriod = try c.decodeIfPresent(Int.self, forKey: .gracePeriod) ?? d.gracePeriod
        authorizationCodeLifetime = try c.decodeIfPresent(Int.self, forKey: .authorizationCodeLifetime) ?? d.authorizationCodeLifetime
        appTokenLifetime = try c.decodeIfPresent(Int.self, forKey: .appTokenLifetime) ?? d.appTokenLifetime
        autoApprove = try c.decodeIfPresent(Bool.self, forKey: .autoApprove) ?? d.autoApprove
        defaultOrganizationID = try c.decodeIfPresent(String.self, forKey: .defaultOrganizationID)
        latencyMilliseconds = try c.decodeIfPresent(Int.self, forKey: .latencyMilliseconds) ?? d.latencyMilliseconds
        rateLimitRequests = try c.decodeIfPresent(Int.self, forKey: .rateLimitRequests)
        rateLimitWindow = try c.decodeIfPresent(Int.self, forKey: .rateLimitWindow) ?? d.rateLimitWindow
        rateLimitStatus = try c.decodeIfPresent(Int.self, forKey: .rateLimitStatus) ?? d.rateLimitStatus
    }

    static let defaults = EmulatorSettings()
}

/// One logged call to the token, revoke or GraphQL endpoint.
public struct EmulatorRequestRecord: Sendable, Codable, Equatable {
    /// `token`, `revoke` or `graphql`.
    public var endpoint: String
    /// The grant type of a token call.
    public var grantType: String?
    public var clientID: String?
    public var organizationID: String?
    /// The first 12 hex digits of SHA-256 of the refresh token used (never the token itself).
    public var refreshTokenFingerprint: String?
    /// `ok`, `replayed`, an OAuth error code, `injected_<status>`, `dropped`, `rate_limited`, `unauthenticated`.
    public var outcome: String
    public var status: Int
    public var at: Date

    enum CodingKeys: String, CodingKey {
        case endpoint
        case grantType = "grant_type"
        case clientID = "client_id"
        case organizationID = "organization_id"
        case refreshTokenFingerprint = "refresh_token_fingerprint"
        case outcome, status, at
    }
}

/// A fingerprint safe to log and compare: the first 12 hex digits of the SHA-256 of `token`.
public func tokenFingerprint(_ token: String) -> String {
    SHA256.hash(data: Data(token.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
}

/// The scopes Linear knows (`read` is always granted).
let knownScopes: Set<String> = [
    "read", "write", "issues:create", "comments:create", "timeSchedule:write", "admin", "app:assignable",
    "app:mentionable", "customer:read", "customer:write", "initiative:read", "initiative:write",
]

/// The token endpoint's answer, as the emulator issued it.
public struct EmulatedTokenResponse: Sendable, Equatable {
    public var accessToken: String
    public var refreshToken: String?
    public var expiresIn: Int
    public var scopes: [String]
    /// Send `scope` as a JSON array (apps created before 2023-12-01) instead of a space-separated string.
    var legacyScopeArray: Bool

    /// The JSON object Linear sends.
    var json: [String: Any] {
        var object: [String: Any] = [
            "access_token": accessToken, "token_type": "Bearer", "expires_in": expiresIn,
            "scope": legacyScopeArray ? scopes as Any : scopes.joined(separator: " ") as Any,
        ]
        if let refreshToken { object["refresh_token"] = refreshToken }
        return object
    }
}

/// What the emulator would do with an access token now.
public enum AccessTokenCheck: String, Sendable, Codable, Equatable {
    /// Accepted.
    case live
    /// Issued, and expired.
    case expired
    /// Revoked (by an uninstall, a revocation, or a rotated client secret).
    case revoked
    /// Never issued.
    case unknown
}

/// What the emulator would do with a refresh token now.
public enum RefreshTokenCheck: String, Sendable, Codable, Equatable {
    /// The grant's current refresh token: a refresh works.
    case current
    /// Rotated, but within the grace period: a refresh replays the answer that was lost.
    case replayable
    /// Rotated and past the grace period: the grant is lost to whoever holds only this token.
    case rotatedPastGrace = "rotated_past_grace"
    /// Revoked (by an uninstall, or a revocation call).
    case revoked
    /// Never issued.
    case unknown
}
