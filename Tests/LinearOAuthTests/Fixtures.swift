import Crypto
import Foundation
import LinearOAuth
import LinearOAuthTestSupport

/// Builders for test data: distinctive fake tokens that are easy to search for in dumps and output.
enum Fixtures {
    static func keyRing(_ ids: String...) throws -> KeyRing {
        try KeyRing(keys: ids.map { (id: $0, key: TestSecrets.key()) })
    }

    static func entry(_ id: String) -> String { TestSecrets.keyEntry(id: id) }

    static func installation(
        _ organizationID: String = "org-\(UUID().uuidString.prefix(8))", expiresIn seconds: TimeInterval = 86_400
    ) -> Installation {
        let nonce = UUID().uuidString.replacingOccurrences(of: "-", with: "")
        return Installation(
            organizationID: organizationID,
            appUserID: "app-user-\(organizationID)",
            accessToken: Secret(TestSecrets.record("lin_oauth_access_\(nonce)", kind: "access-token")),
            refreshToken: Secret(TestSecrets.record("lin_refresh_\(nonce)", kind: "refresh-token")),
            expiresAt: Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + seconds).rounded()),
            scopes: ["read", "write"])
    }

    /// The organizations' ids in a fixed order.
    static func organizations(_ count: Int, prefix: String = "org") -> [String] {
        (0..<count).map { String(format: "\(prefix)-%03d", $0) }
    }
}

/// `a` and `b` within a millisecond (stores keep microseconds; `Date` is a Double).
func sameInstant(_ a: Date?, _ b: Date?) -> Bool {
    guard let a, let b else { return a == nil && b == nil }
    return abs(a.timeIntervalSince1970 - b.timeIntervalSince1970) < 0.001
}
