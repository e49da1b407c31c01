import ArgumentParser
import LinearOAuth

/// The exit statuses scripts rely on.
enum ExitStatus {
    static let failure: Int32 = 1
    static let usage: Int32 = 2
    static let notInstalled: Int32 = 3
    static let reauthorizationRequired: Int32 = 4
    static let temporary: Int32 = 5

    static func code(for error: any Error) -> Int32 {
        switch error {
        case is KeyRingError, is ValidationError: usage
        case TokenStoreError.invalidDatabaseURL: usage
        case let error as CommandFailure: error.status
        case TokenManagerError.notInstalled: notInstalled
        case TokenManagerError.reauthorizationRequired: reauthorizationRequired
        case TokenManagerError.temporarilyUnavailable, TokenStoreError.lockTimeout: temporary
        case TokenManagerError.configuration, TokenManagerError.clientMismatch, LinearOAuthError.configuration: usage
        default: failure
        }
    }

    static func message(for error: any Error) -> String {
        switch error {
        case KeyRingError.noKeysConfigured:
            KeyRingError.noKeysConfigured.description + CommandSettings.developmentHint()
        case let error as CustomStringConvertible where error is KeyRingError || error is TokenStoreError
            || error is TokenDecryptionError || error is CommandFailure || error is TokenManagerError
            || error is LinearOAuthError:
            error.description
        case let error as ValidationError: error.message
        default:
            // Foreign errors may describe themselves verbosely; keep their type and a short reason.
            "\(type(of: error)): \(String(describing: error).prefix(300))"
        }
    }
}

/// A failure a command reports itself, with its exit status.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    var status: Int32 = ExitStatus.failure

    static func notInstalled(_ organizationID: String, suggestions: [String] = []) -> CommandFailure {
        let closest = suggestions.isEmpty ? "" : "; did you mean \(suggestions.joined(separator: ", "))?"
        return CommandFailure(
            description: "organization \(organizationID) is not installed\(closest) (linear-oauth installations list shows every installation)",
            status: ExitStatus.notInstalled)
    }
}
