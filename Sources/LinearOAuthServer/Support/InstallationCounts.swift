import LinearOAuth
import Synchronization

/// Installations by status for `/metrics`: one aggregate query (never a listing), its answer kept
/// for a few seconds, and at most one query at a time however many scrapes come in. A scrape waits
/// only so long for it, then shows the last counts it has.
final class InstallationCounts: Sendable {
    private struct State {
        var counts: [InstallationStatus: Int]?
        var at: ContinuousClock.Instant?
        var flight: Task<[InstallationStatus: Int]?, Never>?
    }

    let store: any TokenStore
    /// How long an answer is reused.
    let maxAge: Duration
    private let state = Mutex(State())

    init(store: any TokenStore, maxAge: Duration = .seconds(5)) {
        self.store = store
        self.maxAge = maxAge
    }

    /// The counts: fresh ones, or the last known if the query takes longer than `wait`.
    func current(wait: Duration = .seconds(1)) async -> [InstallationStatus: Int]? {
        let now = ContinuousClock.now
        enum Next { case fresh([InstallationStatus: Int]?), await(Task<[InstallationStatus: Int]?, Never>, last: [InstallationStatus: Int]?) }
        let next: Next = state.withLock { state in
            if let at = state.at, now - at < maxAge { return .fresh(state.counts) }
            if let flight = state.flight { return .await(flight, last: state.counts) }
            let flight = Task { [store] in
                let counts = try? await store.installationCounts()
                self.state.withLock { state in
                    if let counts {
                        state.counts = counts
                        state.at = ContinuousClock.now
                    }
                    state.flight = nil
                }
                return counts
            }
            state.flight = flight
            return .await(flight, last: state.counts)
        }
        switch next {
        case .fresh(let counts):
            return counts
        case .await(let flight, let last):
            // Wait for the query, but not past `wait`; the query itself is bounded by the store.
            let answer = await withTaskGroup(of: [InstallationStatus: Int]??.self) { group in
                group.addTask { await flight.value }
                group.addTask {
                    try? await Task.sleep(for: wait)
                    return .some(nil)
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            switch answer {
            case .some(.some(let counts)): return counts
            default: return last
            }
        }
    }
}
