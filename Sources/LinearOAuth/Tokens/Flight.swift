import Synchronization

/// One piece of work in progress (a load, a refresh, an app-token fetch) and the callers waiting for
/// its result: the single-flight mechanism of ``TokenManager``. The leader runs the work on its own
/// task and calls ``finish(_:)``; followers ``wait()``. Which flight is current is decided by
/// ``RefreshCoordinator`` under the manager's lock.
package final class Flight<Value: Sendable>: Sendable {
    /// Started by refresh ahead: nobody waits for it, and the process waits for it before exiting.
    package let isBackground: Bool

    private let state = Mutex<(result: Result<Value, any Error>?, waiters: [UnsafeContinuation<Result<Value, any Error>, Never>])>((nil, []))

    package init(isBackground: Bool = false) {
        self.isBackground = isBackground
    }

    /// The flight's result, once its leader has finished.
    /// Unchecked continuations (no box allocated per follower; a storm has thousands): each is
    /// resumed exactly once, here when the result is already in, else by ``finish(_:)``.
    package func wait() async -> Result<Value, any Error> {
        await withUnsafeContinuation { continuation in
            let done = state.withLock { state -> Result<Value, any Error>? in
                if let result = state.result { return result }
                state.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// The result, if the leader has finished.
    package var result: Result<Value, any Error>? { state.withLock { $0.result } }

    /// Hands the result to every follower (the leader calls it once, after the lock is released).
    package func finish(_ result: Result<Value, any Error>) {
        let waiters = state.withLock { state in
            state.result = result
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }
}
