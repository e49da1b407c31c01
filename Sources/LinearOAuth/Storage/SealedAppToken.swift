import Foundation

/// The app's own token (`client_credentials` grant), one per OAuth client, sealed like installation tokens.
public struct SealedAppToken: Sendable, Equatable {
    public var clientID: String
    public var accessToken: [UInt8]
    public var expiresAt: Date
    public var scopes: [String]
    public var keyID: String

    public init(clientID: String, accessToken: [UInt8], expiresAt: Date, scopes: [String], keyID: String) {
        self.clientID = clientID
        self.accessToken = accessToken
        self.expiresAt = expiresAt
        self.scopes = scopes
        self.keyID = keyID
    }

    /// The associated-data name its ciphertext is bound to (no Linear organization id looks like it).
    static func sealingName(clientID: String) -> String { "app-token:\(clientID)" }
}
