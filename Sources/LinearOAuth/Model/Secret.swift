/// A token or key held in memory. Its `description`, `debugDescription` and reflection all print
/// `<redacted>`, so it cannot reach a log line, an error message or a test failure by accident;
/// read ``value`` only where the secret itself is needed.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret itself.
    public let value: String

    /// Wraps a secret value.
    public init(_ value: String) {
        self.value = value
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
