import Foundation

/// Why a call to Linear failed, sorted by what the caller must do about it. Messages carry
/// Linear's `error` and `error_description`, never a token.
public enum LinearOAuthError: Error, Equatable, CustomStringConvertible {
    /// The grant is dead (`invalid_grant`: refresh token revoked, expired or reused past its grace):
    /// a workspace admin must install the app again. Never retry.
    case reauthorizationRequired(Details)
    /// Our own setup is wrong (`invalid_client`, unsupported grant, bad redirect URI, an endpoint
    /// that does not exist). Installations are fine; fix the configuration.
    case configuration(Details)
    /// Linear could not answer now (5xx, 429, time-out, connection failure, unreadable answer):
    /// keep the tokens and try again later, after ``Details/retryAfter`` when given.
    case transient(Details)

    /// What is known about a failure.
    public struct Details: Sendable, Equatable {
        /// Linear's OAuth `error` code, when it sent one.
        public var code: String?
        /// Linear's `error_description`, or our own explanation.
        public var message: String
        /// The HTTP status, when there was an answer.
        public var status: Int?
        /// How long Linear asked us to wait (`Retry-After`).
        public var retryAfter: Duration?

        public init(code: String? = nil, message: String, status: Int? = nil, retryAfter: Duration? = nil) {
            self.code = code
            self.message = message
            self.status = status
            self.retryAfter = retryAfter
        }
    }

    public var details: Details {
        switch self {
        case .reauthorizationRequired(let details), .configuration(let details), .transient(let details): details
        }
    }

    public var description: String {
        let details = self.details
        let kind = switch self {
        case .reauthorizationRequired: "re-authorization required"
        case .configuration: "configuration error"
        case .transient: "temporary failure"
        }
        var parts = [kind]
        if let status = details.status { parts.append("HTTP \(status)") }
        if let code = details.code { parts.append(code) }
        var text = parts.joined(separator: ", ") + ": " + details.message
        if let retryAfter = details.retryAfter { text += " (retry after \(retryAfter.components.seconds) s)" }
        return text
    }
}
