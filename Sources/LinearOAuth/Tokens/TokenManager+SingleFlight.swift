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
    func run(_ lead: RefreshCoordinator.Lead, _ organizationID: String, force: Force, window: Duration? = nil, skipIfBusy: Bool = false)
        async throws(TokenManagerError) -> AccessToken
    {
        let result: Result<RefreshCoordinator.Outcome, any Error>
        do {
            result = .success(try await loadOrRefresh(organizationID, force: force, window: window, skipIfBusy: skipIfBusy))
        } catch {
            result = .failure(error)
        }
        state.withLock { $0.finish(lead, of: organizationID, with: result) }
        let token = result.map(\.token)
        lead.flight.finish(token)
        return try Self.unwrap(token, organizationID)
    }

    /// Waits for a flight; joins again (and so may lead) when its result is not what this caller needs.
    func follow(_ flight: Flight, _ organizationID: String, force: Force, window: Duration? = nil)
        async throws(TokenManagerError) -> AccessToken
    {
        var flight = flight
        while true {
            let result = await flight.wait()
            switch RefreshCoordinator.followerStep(after: result, force: force, isCancelled: Task.isCancelled) {
            case .take:
                return try Self.unwrap(result, organizationID)
            case .joinAgain:
                switch state.withLock({ $0.join(organizationID) }) {
                case .lead(let lead): return try await run(lead, organizationID, force: force, window: window)
                case .follow(let next): flight = next
                }
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
