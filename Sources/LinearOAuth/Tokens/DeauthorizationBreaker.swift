import Foundation

/// Keeps one configuration mistake from de-authorizing every workspace. Linear answers
/// `invalid_grant` when a grant is dead (an uninstall, a revoked or expired refresh token) but also,
/// indistinguishably, when the refresh token belongs to another OAuth application (a wrong client
/// id, a development client pointed at real tokens). One workspace at a time is an uninstall; many
/// in a short while is almost certainly us. So the first `threshold` distinct installations refused
/// within `window` are marked `reauthorization_required` as usual; after that the breaker opens, and
/// further refusals are treated as a suspected configuration fault: the tokens are kept, nothing is
/// marked, and the service reports itself degraded, until a refresh succeeds or an operator resets it.
/// Pure: times come in as arguments.
package struct DeauthorizationBreaker: Sendable {
    /// What to do with an installation Linear refused.
    package enum Verdict: Equatable, Sendable {
        /// Mark it `reauthorization_required` (a workspace-level event, like an uninstall).
        case mark
        /// Do not mark it: too many were refused too quickly (`refusals` within the window, this one included).
        case suspectConfiguration(refusals: Int)
    }

    /// How many distinct installations may be marked within the window before the breaker opens;
    /// 0 turns the breaker off (every refusal marks).
    package let threshold: Int
    /// The window, in seconds.
    package let window: TimeInterval
    /// Installations marked within the window, and when.
    private var marked: [(organizationID: String, at: Date)] = []
    /// Refusals not acted on since the breaker opened.
    package private(set) var suspected = 0
    /// When the breaker opened, if it is open.
    package private(set) var openedAt: Date?

    package init(threshold: Int = 3, window: TimeInterval = 600) {
        self.threshold = threshold
        self.window = window
    }

    package var isOpen: Bool { openedAt != nil }

    /// Linear refused the organization's refresh token at `now`.
    package mutating func invalidGrant(_ organizationID: String, now: Date) -> Verdict {
        guard threshold > 0 else { return .mark }
        marked.removeAll { now.timeIntervalSince($0.at) > window }
        if isOpen {
            suspected += 1
            return .suspectConfiguration(refusals: marked.count + suspected)
        }
        // The same installation refused again (another process, a retry) is not a second workspace.
        if marked.contains(where: { $0.organizationID == organizationID }) { return .mark }
        guard marked.count < threshold else {
            openedAt = now
            suspected = 1
            return .suspectConfiguration(refusals: marked.count + 1)
        }
        marked.append((organizationID, now))
        return .mark
    }

    /// A refresh succeeded: the configuration works, so refusals are about their grants again.
    /// Also an operator's reset.
    package mutating func reset() {
        marked.removeAll()
        suspected = 0
        openedAt = nil
    }

    /// Why the service is degraded, while the breaker is open.
    package var reason: String? {
        guard let openedAt else { return nil }
        return "Linear refused the refresh tokens of \(marked.count + suspected) installations within \(Int(window)) s "
            + "(since \(RFC3339.format(openedAt))): suspected configuration fault (a wrong or changed client id or secret?); "
            + "\(suspected) installations were kept instead of being marked reauthorization_required. "
            + "Fix the configuration; the breaker closes at the next successful refresh, or reset it"
    }

}
