import Foundation

extension Duration {
    /// The duration in seconds, as Foundation counts time.
    package var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components  // one 128-bit division, not two
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }

    /// A duration of `seconds` as Foundation counts them, to the millisecond.
    package init(timeInterval seconds: TimeInterval) {
        self = .milliseconds(Int64((seconds * 1000).rounded()))
    }
}
