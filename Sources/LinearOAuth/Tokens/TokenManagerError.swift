import Foundation

/// Why ``TokenManager`` could not hand out a token. "Re-authorize" and "try again" are different
/// cases, handled differently.
public enum TokenManagerError: Error, Equatable, CustomStringConvertible {
    /// No tokens are stored for the organization (never installed, uninstalled or revoked).
    case notInstalled(organizationID: String)
    /// Linear refused the refresh token: a workspace admin must install the app again. `reason` is
    /// the stored short code (`invalid_grant`); the ``TokenEvent`` carries Linear's description.
    case reauthorizationRequired(organizationID: String, reason: String)
    /// Linear or the store could not answer now; the stored tokens are kept. Try again after `retryAfter`.
    case temporarilyUnavailable(organizationID: String, reason: String, retryAfter: Duration?)
    /// Our own setup is wrong (client id or secret, URLs): nothing was changed.
    case configuration(reason: String)
    /// The installation was granted to another OAuth application than the one configured: this
    /// client cannot refresh or revoke it (Linear would answer `invalid_grant`), so nothing was asked
    /// of Linear and nothing was changed. A configuration error: use the client that installed it.
    case clientMismatch(organizationID: String, installedBy: String, configured: String)
    /// The stored tokens cannot be opened with the configured keys (a key missing from the ring, a
    /// wrong key, altered bytes): nothing was changed, and trying again will not help until the key
    /// ring is fixed.
    case undecryptable(TokenDecryptionError)

    public var description: String {
        switch self {
        case .notInstalled(let organizationID):
            "organization \(organizationID) is not installed"
        case .reauthorizationRequired(let organizationID, let reason):
            "organization \(organizationID) must install the app again: \(reason)"
        case .temporarilyUnavailable(let organizationID, let reason, let retryAfter):
            "no fresh token for organization \(organizationID) now: \(reason)"
                + (retryAfter.map { " (try again in \($0.components.seconds) s)" } ?? "")
        case .configuration(let reason):
            "configuration error: \(reason)"
        case .clientMismatch(let organizationID, let installedBy, let configured):
            "organization \(organizationID) was installed by OAuth client \"\(installedBy)\", but this process is configured as client "
                + "\"\(configured)\" (LINEAR_CLIENT_ID): nothing was changed; configure the client that installed it"
        case .undecryptable(let error):
            switch error {
            case .unknownKeyID:
                "\(error.description): add that key to the ring (LINEAR_OAUTH_ENCRYPTION_KEYS or the file LINEAR_OAUTH_ENCRYPTION_KEYS_FILE names, ID:BASE64 entries)"
            default:
                "\(error.description): check the key ring (LINEAR_OAUTH_ENCRYPTION_KEYS or LINEAR_OAUTH_ENCRYPTION_KEYS_FILE)"
            }
        }
    }
}
