/// A stored token that could not be opened. Names the organization, never the bytes.
public enum TokenDecryptionError: Error, Equatable, CustomStringConvertible {
    case unknownKeyID(organizationID: String, keyID: String)
    case authenticationFailed(organizationID: String, column: TokenColumn)
    case malformed(organizationID: String, column: TokenColumn)

    public var description: String {
        switch self {
        case .unknownKeyID(let organizationID, let keyID):
            "the tokens of organization \(organizationID) are encrypted under key \"\(keyID)\", which is not in the key ring"
        case .authenticationFailed(let organizationID, let column):
            "the \(column.rawValue) of organization \(organizationID) failed authentication (wrong key, or the value was altered or moved)"
        case .malformed(let organizationID, let column):
            "the \(column.rawValue) of organization \(organizationID) is not in a known encrypted format"
        }
    }
}
