import Crypto
import Foundation

/// The token endpoint's answer, as the emulator issued it.
public struct EmulatedTokenResponse: Sendable, Equatable, Codable {
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
