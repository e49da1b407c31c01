import Foundation

/// An installation as the store keeps it: metadata in the clear, tokens sealed by a ``KeyRing``.
@dynamicMemberLookup
public struct SealedInstallation: Sendable, Equatable {
    /// The non-secret part; `keyID` names the key both tokens are sealed under.
    public var metadata: InstallationMetadata
    /// The sealed access token (see ``KeyRing`` for the format).
    public var accessToken: [UInt8]
    /// The sealed refresh token.
    public var refreshToken: [UInt8]

    /// Creates a sealed installation.
    public init(metadata: InstallationMetadata, accessToken: [UInt8], refreshToken: [UInt8]) {
        self.metadata = metadata
        self.accessToken = accessToken
        self.refreshToken = refreshToken
    }

    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<InstallationMetadata, Value>) -> Value {
        get { metadata[keyPath: keyPath] }
        set { metadata[keyPath: keyPath] = newValue }
    }
}
