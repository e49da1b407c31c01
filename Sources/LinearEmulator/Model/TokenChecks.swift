import Crypto
import Foundation

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
