import Foundation

/// A failed GraphQL call.
public enum LinearAPIError: Error, Equatable, CustomStringConvertible {
    /// HTTP 401 `AUTHENTICATION_ERROR`: the access token is missing, expired or revoked.
    case authenticationFailed(message: String)
    /// `RATELIMITED`, whatever the HTTP status (400, 429 or 200), or a bare 429: wait until `resetAt`
    /// when Linear said (``LinearRateLimit/retryAt``: `Retry-After` and the resets of the exhausted budgets).
    case rateLimited(resetAt: Date?, message: String)
    /// Other GraphQL errors, with their messages and codes.
    case graphQL(messages: [String], codes: [String], status: Int)
    /// The call did not reach Linear or got no usable answer.
    case transport(LinearOAuthError)

    public var description: String {
        switch self {
        case .authenticationFailed(let message): "Linear refused the access token: \(message)"
        case .rateLimited(let resetAt, let message):
            "rate limited by Linear: \(message)" + (resetAt.map { " (resets at \(RFC3339.format($0)))" } ?? "")
        case .graphQL(let messages, let codes, let status):
            "GraphQL error (HTTP \(status)\(codes.isEmpty ? "" : ", " + codes.joined(separator: ","))): \(messages.joined(separator: "; "))"
        case .transport(let error): error.description
        }
    }
}
