import Crypto
import Foundation

/// PKCE (RFC 7636) with the S256 method.
public struct PKCE: Sendable {
    /// The secret kept by us until the code exchange (43 characters, base64url).
    public let verifier: String
    /// `base64url(SHA-256(verifier))`, sent with the authorize request.
    public let challenge: String

    /// A fresh random verifier and its challenge.
    public init() {
        self.init(verifier: Self.base64URL(Data((0..<32).map { _ in UInt8.random(in: 0...255) })))
    }

    /// The challenge for a known verifier.
    public init(verifier: String) {
        self.verifier = verifier
        self.challenge = Self.base64URL(Data(SHA256.hash(data: Data(verifier.utf8))))
    }

    /// Base64url without padding (RFC 4648, section 5).
    package static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes base64url with or without padding; `nil` if it is not base64url.
    package static func data(base64URL text: String) -> Data? {
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}
