import LinearOAuth
import NIOCore
import NIOPosix
import Synchronization

/// The statements waiting for PostgreSQL's answer, each with its deadline, and one repeating timer
/// that fails those past it.
///
/// Cheaper than a timer per statement: setting an event-loop timer from a task's thread, and
/// cancelling it, each wrote to the event loop's eventfd and woke its thread, twice per statement
/// (on the cold path a statement is all there is; a listing page's profile had these wake-ups at a
/// few percent). Here a statement costs a lock and a dictionary entry. The price is precision: a
/// statement fails between its deadline and one sweep interval later (a tenth of the time-out).
final class StatementWatchdog: Sendable {
    private struct State {
        var nextID: UInt64 = 0
        var waiting: [UInt64: (deadline: NIODeadline, expire: @Sendable (_ closing: Bool) -> Void)] = [:]
        var sweeper: RepeatedTask?
        var stopped = false
    }

    private let state = Mutex(State())
    private let interval: TimeAmount

    /// - Parameter timeout: The time-out the statements are given; sweeps come ten times in it
    ///   (at least every 10 ms, at most every second).
    init(timeout: Duration) {
        let tenth = Int64(timeout.timeInterval * 1e8)
        interval = .nanoseconds(min(max(tenth, 10_000_000), 1_000_000_000))
    }

    /// Watches a statement: `expire` runs once if ``finish(_:)`` has not been called for it by
    /// `deadline` and a sweep comes (`closing` false), or when ``stop()`` is called first (`closing`
    /// true). Returns the id to pass to ``finish(_:)``.
    /// After ``stop()``, `expire` runs at once (`closing` true).
    func watch(until deadline: NIODeadline, expire: @escaping @Sendable (_ closing: Bool) -> Void) -> UInt64 {
        let (id, start, stopped) = state.withLock { state -> (UInt64, Bool, Bool) in
            state.nextID &+= 1
            if state.stopped { return (state.nextID, false, true) }
            state.waiting[state.nextID] = (deadline, expire)
            return (state.nextID, state.sweeper == nil, false)
        }
        if stopped { expire(true) }
        if start { startSweeping() }
        return id
    }

    /// The statement has its answer: it is no longer watched.
    func finish(_ id: UInt64) {
        _ = state.withLock { $0.waiting.removeValue(forKey: id) }
    }

    /// Stops the sweeps (the store is closing); statements still waiting expire now.
    func stop() {
        let (sweeper, waiting) = state.withLock { state in
            state.stopped = true
            defer {
                state.sweeper = nil
                state.waiting.removeAll()
            }
            return (state.sweeper, state.waiting.values.map(\.expire))
        }
        sweeper?.cancel()
        for expire in waiting { expire(true) }
    }

    /// How many statements are waiting for their answers.
    var watchedCount: Int { state.withLock { $0.waiting.count } }

    /// Started with the first statement, so a store that never reads sets no timer.
    private func startSweeping() {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let sweeper = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
            guard let self else { return task.cancel() }
            self.sweep()
        }
        let keep = state.withLock { state -> Bool in
            guard state.sweeper == nil, !state.stopped else { return false }
            state.sweeper = sweeper
            return true
        }
        if !keep { sweeper.cancel() }
    }

    private func sweep() {
        let now = NIODeadline.now()
        let expired = state.withLock { state -> [@Sendable (Bool) -> Void] in
            let due = state.waiting.filter { $0.value.deadline <= now }
            for id in due.keys { state.waiting.removeValue(forKey: id) }
            return due.values.map(\.expire)
        }
        for expire in expired { expire(false) }
    }
}
