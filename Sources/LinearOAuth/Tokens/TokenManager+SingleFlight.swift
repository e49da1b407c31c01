/// Acting on ``RefreshCoordinator``'s single-flight decisions: a leader works inline, on its own
/// task (no task is spawned on the cold path), and hands its result to the followers; a follower
/// waits, then takes the result or joins again.
extension TokenManager {
    typealias Force = RefreshCoordinator.Force

    /// Follows the organization's load or refresh in flight, or leads one.
    func singleFlight(_ organizationID: String, force: Force, window: Duration? = nil, skipIfBusy: Bool = false) async throws(TokenManagerError) -> AccessToken {
        switch state.withLock({ $0.join(organizationID) }) {
        case .lead(let lead): try await run(lead, organizationID, force: force, window: window, skipIfBusy: skipIfBusy)
        case .follow(let flight): try await follow(flight, organizationID, force: force, window: window)
        }
    }

    /// Leads a flight: loads (and refreshes when due), records the outcome, wakes the followers.
    /// Out of line, like ``loadOrRefresh(_:force:window:skipIfBusy:)``: an async function's frame
    /// holds what the functions inlined into it need, and the callers that may lead (a follower
    /// joining again among them) must stay small (see ``follow(_:_:force:window:)``).
    @inline(never)
    nonisolated(nonsending) func run(_ lead: RefreshCoordinator.Lead, _ organizationID: String, force: Force, window: Duration? = nil, skipIfBusy: Bool = false)
        async throws(TokenManagerError) -> AccessToken
    {
        let result: Result<RefreshCoordinator.Outcome, any Error>
        do {
            result = .success(try await loadOrRefresh(organizationID, force: force, window: window, skipIfBusy: skipIfBusy))
        } catch {
            result = .failure(error)
        }
        // The background refresher (the one caller that skips busy rows) refreshes what is cached but
        // does not fill the cache with every row it visits, unless callers joined its flight: then the
        // token is in use. (Read only on the refresher's path: the cold path pays nothing for it.)
        let addingToCache = !skipIfBusy || lead.flight.waiting > 0
        state.withLock { $0.finish(lead, of: organizationID, with: result, addingToCache: addingToCache) }
        let token = result.map(\.token)
        // A cancelled leader fails with a CancellationError (``loadOrRefresh(_:force:window:skipIfBusy:)``
        // turns what a cancellation interrupted into one), and its followers then join again.
        lead.flight.finish(token)
        return try Self.unwrap(token, organizationID)
    }

    /// Waits for a flight; joins again (and so may lead) when its result is not what this caller needs.
    ///
    /// Small on purpose. A storm has thousands of followers, and a task's async frames live in a
    /// slab of about 1 KB it allocates when it starts: a follower whose frames do not fit
    /// allocates a second slab (a malloc, a free, and fresh memory to touch). So a follower awaits
    /// only the news that the flight is done (an awaited result takes room in the caller's frame),
    /// reads the result synchronously, and joins again out of line. The loop this replaced kept
    /// every value of its body in its frame (576 bytes). ``accessToken(for:)``'s followers, the
    /// storm's, wait in its own frame and take the result in a small one.
    @inline(never)
    func follow(_ flight: Flight, _ organizationID: String, force: Force, window: Duration? = nil)
        async throws(TokenManagerError) -> AccessToken
    {
        await flight.finished()
        if let token = try Self.taken(flight, organizationID, force: force) { return token }
        return try await rejoin(organizationID, force: force, window: window)
    }

    /// A finished flight's token, if it succeeded: what a follower that did not force a refresh
    /// takes (``RefreshCoordinator/followerStep(after:force:isCancelled:)`` with `.never`). Copied
    /// out under the flight's lock, and nothing else.
    @inline(never)
    static func token(from flight: Flight) -> AccessToken? {
        flight.withState { state in
            guard case .success(let token) = state.result else { return nil }
            return token
        }
    }

    /// What a follower makes of its finished flight: the token, the error to throw, or `nil` to join
    /// again (``RefreshCoordinator/followerStep(after:force:isCancelled:)``).
    @inline(never)
    static func taken(_ flight: Flight, _ organizationID: String, force: Force) throws(TokenManagerError) -> AccessToken? {
        guard let result = flight.result else { preconditionFailure("a follower woke before its flight finished") }
        switch RefreshCoordinator.followerStep(after: result, force: force, isCancelled: Task.isCancelled) {
        case .take: return try unwrap(result, organizationID)
        case .joinAgain: return nil
        }
    }

    /// A follower whose flight did not give it what it needs joins again: it follows the flight now
    /// in progress, or leads one. A loop (frames of constant size, however many flights it follows);
    /// rare, so its frame need not be small.
    @inline(never)
    func rejoin(_ organizationID: String, force: Force, window: Duration?) async throws(TokenManagerError) -> AccessToken {
        while true {
            switch state.withLock({ $0.join(organizationID) }) {
            case .lead(let lead):
                return try await run(lead, organizationID, force: force, window: window)
            case .follow(let flight):
                await flight.finished()
                if let token = try Self.taken(flight, organizationID, force: force) { return token }
            }
        }
    }

    /// A flight's result as the caller sees it: any failure is a ``TokenManagerError``.
    static func unwrap(_ result: Result<AccessToken, any Error>, _ organizationID: String) throws(TokenManagerError) -> AccessToken {
        switch result {
        case .success(let token): return token
        case .failure(let error as TokenManagerError): throw error
        case .failure(let error): throw .temporarilyUnavailable(organizationID: organizationID, reason: "\(error)", retryAfter: nil)
        }
    }
}
