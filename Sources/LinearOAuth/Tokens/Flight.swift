import Synchronization

/// One piece of work in progress (a load, a refresh, an app-token fetch) and the callers waiting for
/// its result: the single-flight mechanism of ``TokenManager``. The leader runs the work on its own
/// task and calls ``finish(_:)``; followers await ``finished()`` and then read ``result`` (or
/// ``wait()`` for both at once). Which flight is current is decided by
/// ``RefreshCoordinator`` under the manager's lock.
///
/// Two concrete classes share this: ``Flight`` (an organization's access token) and
/// ``AppTokenFlight``. Not one generic class: a generic class's `deinit` is never specialized, and
/// destroying its state looked up five generic metadata at run time, about 2,000 instructions of
/// every cold load.
package protocol SingleFlight: AnyObject, Sendable {
    associatedtype Value: Sendable
    /// Runs `body` on the flight's state under its lock.
    func withState<R: Sendable>(_ body: (inout FlightState<Value>) -> R) -> R
}

/// A flight's result, once in, and the callers waiting for it.
package struct FlightState<Value: Sendable>: Sendable {
    var result: Result<Value, any Error>?
    var waiters: [UnsafeContinuation<Void, Never>] = []

    package init() {}
}

extension SingleFlight {
    /// Returns once the leader has finished; the result is then ``result``.
    ///
    /// Followers wait for the news, not the value: an awaited call's result takes room in its
    /// caller's frame, and a storm's thousands of followers each have frames that must fit in the
    /// memory their task starts with (about 1 KB), or each allocates a slab of its own.
    /// Unchecked continuations (no box allocated per follower): each is resumed exactly once, here
    /// when the result is already in, else by ``finish(_:)``.
    @inline(never)
    nonisolated(nonsending) package func finished() async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let done = withState { state -> Bool in
                if state.result != nil { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// The flight's result, once its leader has finished.
    package func wait() async -> Result<Value, any Error> {
        await finished()
        return result!
    }

    /// The result, if the leader has finished.
    package var result: Result<Value, any Error>? { withState { $0.result } }

    /// How many callers are waiting for the result.
    package var waiting: Int { withState { $0.waiters.count } }

    /// Hands the result to every follower (the leader calls it once, after the lock is released).
    package func finish(_ result: Result<Value, any Error>) {
        let waiters = withState { state in
            state.result = result
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// The load or refresh of one organization's access token.
package final class Flight: SingleFlight {
    package typealias Value = TokenManager.AccessToken

    /// Started by refresh ahead: nobody waits for it, and the process waits for it before exiting.
    package let isBackground: Bool

    private let state = Mutex(FlightState<Value>())

    package init(isBackground: Bool = false) {
        self.isBackground = isBackground
    }

    package func withState<R: Sendable>(_ body: (inout FlightState<Value>) -> R) -> R { state.withLock { body(&$0) } }
}

/// The fetch of the app's own (client credentials) token.
package final class AppTokenFlight: SingleFlight {
    package typealias Value = TokenManager.AppToken

    private let state = Mutex(FlightState<Value>())

    package init() {}

    package func withState<R: Sendable>(_ body: (inout FlightState<Value>) -> R) -> R { state.withLock { body(&$0) } }
}
