import Crypto
import Foundation
import LinearOAuth

/// The console's sign-in: an operator gives one of the service's API keys and gets a session cookie,
/// HMAC-signed with a key derived from that API key (HKDF-SHA256), so every instance that shares the
/// API keys accepts it, no session is stored anywhere, and removing the key from
/// `LINEAR_OAUTH_API_KEYS` ends its sessions at once. The cookie names which key signed it by a
/// fingerprint derived the same way (never the key or a plain hash of it).
///
/// Cookie value: `v1.EXPIRES.FINGERPRINT.NONCE.MAC`, where MAC is HMAC-SHA256 over everything before
/// it. Each form that changes something carries a CSRF token, HMAC of the nonce under the same key.
struct ConsoleSessions: Sendable {
    /// The session cookie's name.
    static let cookieName = "linear_oauth_session"
    /// The sign-in form's double-submit cookie.
    static let signInCookieName = "linear_oauth_sign_in"

    /// A signed-in operator.
    struct Session: Sendable, Equatable {
        var nonce: String
        var expiresAt: Date
        /// Which API key (its index in the configuration) signed the session.
        var keyIndex: Int
    }

    private struct Key: Sendable {
        var mac: SymmetricKey
        var fingerprint: String
    }

    private let keys: [Key]
    private let apiKeys: [Secret]
    let lifetime: TimeInterval
    /// Whether cookies carry `Secure` (the service's public URL is https).
    let secure: Bool

    init(apiKeys: [Secret], lifetime: TimeInterval, secure: Bool) {
        self.apiKeys = apiKeys
        self.lifetime = lifetime
        self.secure = secure
        self.keys = apiKeys.map { apiKey in
            let derived = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: Data(apiKey.value.utf8)), salt: Data("linear-oauth console".utf8),
                info: Data("session v1".utf8), outputByteCount: 32)
            let fingerprint = Data(HMAC<SHA256>.authenticationCode(for: Data("fingerprint".utf8), using: derived)).prefix(6)
            return Key(mac: derived, fingerprint: PKCE.base64URL(fingerprint))
        }
    }

    /// The index of the API key `given` is; every key is compared, each in constant time.
    func keyIndex(forAPIKey given: String) -> Int? {
        let given = Array(given.utf8)
        var found: Int?
        for (index, key) in apiKeys.enumerated() where APIKeyMiddleware.constantTimeEqual(given, Array(key.value.utf8)) {
            if found == nil { found = index }
        }
        return found
    }

    /// A new session for the API key at `keyIndex`: the cookie's value.
    func issue(keyIndex: Int, now: Date) -> (session: Session, cookie: String) {
        let nonce = PKCE.base64URL(Data((0..<18).map { _ in UInt8.random(in: 0...255) }))
        let expires = Int(now.timeIntervalSince1970 + lifetime)
        let payload = "v1.\(expires).\(keys[keyIndex].fingerprint).\(nonce)"
        let mac = PKCE.base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data(payload.utf8), using: keys[keyIndex].mac)))
        return (Session(nonce: nonce, expiresAt: Date(timeIntervalSince1970: TimeInterval(expires)), keyIndex: keyIndex), payload + "." + mac)
    }

    /// The session a cookie value carries, if it is well formed, signed by a configured key and unexpired.
    func session(fromCookie value: String, now: Date) -> Session? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == "v1", let expires = Int(parts[1]),
            let keyIndex = keys.firstIndex(where: { $0.fingerprint == parts[2] }),
            let mac = PKCE.data(base64URL: parts[4])
        else { return nil }
        let payload = parts[0..<4].joined(separator: ".")
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(payload.utf8), using: keys[keyIndex].mac) else { return nil }
        let expiresAt = Date(timeIntervalSince1970: TimeInterval(expires))
        guard expiresAt > now else { return nil }
        return Session(nonce: parts[3], expiresAt: expiresAt, keyIndex: keyIndex)
    }

    /// The CSRF token of a session's forms.
    func csrfToken(_ session: Session) -> String {
        PKCE.base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data("csrf.\(session.nonce)".utf8), using: keys[session.keyIndex].mac)))
    }

    /// Whether a form's CSRF token is the session's.
    func isValid(csrfToken given: String?, for session: Session) -> Bool {
        guard let given, let mac = PKCE.data(base64URL: given) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data("csrf.\(session.nonce)".utf8), using: keys[session.keyIndex].mac)
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, path `/`, `Secure` over https.
    func setCookie(_ name: String, _ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// The value of cookie `name` in a `Cookie` header.
    static func cookie(_ name: String, in header: String?) -> String? {
        guard let header else { return nil }
        for pair in header.split(separator: ";") {
            let trimmed = pair.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix(name + "=") { return String(trimmed.dropFirst(name.count + 1)) }
        }
        return nil
    }
}
