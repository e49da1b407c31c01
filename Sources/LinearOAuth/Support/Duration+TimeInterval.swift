import Foundation

extension Duration {
    /// The duration in seconds, as Foundation counts time.
    package var timeInterval: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }

    /// A duration of `seconds` as Foundation counts them, to the millisecond.
    package init(timeInterval seconds: TimeInterval) {
        self = .milliseconds(Int64((seconds * 1000).rounded()))
    }
}
