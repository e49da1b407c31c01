import Foundation

/// Tokens from Linear's token endpoint.
public struct LinearTokenResponse: Sendable, Equatable {
    public var accessToken: Secret
    /// Absent for `client_credentials`; a refresh may also leave it out (keep the old one then).
    public var refreshToken: Secret?
    /// Seconds the access token lives, as Linear announced.
    public var expiresIn: Int
    /// When the access token expires, from `expiresIn` and the time the answer arrived.
    public var expiresAt: Date
    public var scopes: [String]
    public var tokenType: String
}
