import Crypto
import Foundation

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
