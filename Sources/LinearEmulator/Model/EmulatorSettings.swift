import Crypto
import Foundation

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
    /// The HTTP status of a `RATELIMITED` answer: 400 (seen from Linear, with `extensions.statusCode`
    /// 429), 429, or 200 (one copy of Linear's docs).
    public var rateLimitStatus: Int = 400
    /// The budget that runs out at `rateLimitRequests`; the others are reported with plenty left.
    public var rateLimitBudget: RateLimitBudget = .requests

    /// Linear's three rate-limit budgets.
    public enum RateLimitBudget: String, Sendable, Codable, CaseIterable {
        case requests, complexity
        case endpointRequests = "endpoint_requests"
    }

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
        case rateLimitBudget = "rate_limit_budget"
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
        rateLimitBudget = try c.decodeIfPresent(RateLimitBudget.self, forKey: .rateLimitBudget) ?? d.rateLimitBudget
    }

    static let defaults = EmulatorSettings()
}
