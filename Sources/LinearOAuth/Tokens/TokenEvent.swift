import Foundation

/// What happened to an installation, for the embedding app to observe.
public enum TokenEvent: Sendable, Equatable {
    /// New tokens were stored.
    case refreshed(organizationID: String, expiresAt: Date)
    /// Linear refused the refresh token; the installation is now `reauthorization_required`.
    case reauthorizationRequired(organizationID: String, reason: String)
    /// A refresh failed for a reason that may pass (the tokens are kept).
    case refreshFailed(organizationID: String, reason: String)
    /// The installation was revoked and its tokens deleted.
    case revoked(organizationID: String)
}
