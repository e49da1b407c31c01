import Foundation
import LinearOAuth
import Synchronization

/// A store that forwards every call to another and counts them by name: what a route asked of the
/// database, observed without mocking the database.
final class CountingStore: TokenStore {
    let inner: any TokenStore
    private let counts = Mutex<[String: Int]>([:])

    /// Holds loads while closed (a load in the middle of its query, as it were); a held load whose
    /// task is cancelled throws `CancellationError`.
    let heldLoads = Barrier()

    /// The cursor of each `resealBatch` call, in order.
    private let resealCursors = Mutex<[String?]>([])
    /// Runs after each `resealBatch` call, with its number (from 1): a writer acting mid-rotation.
    private let afterResealBatch: (@Sendable (Int) async throws -> Void)?

    init(_ inner: any TokenStore, afterResealBatch: (@Sendable (Int) async throws -> Void)? = nil) {
        self.inner = inner
        self.afterResealBatch = afterResealBatch
    }

    var cursorsOfResealBatches: [String?] { resealCursors.withLock { $0 } }

    func calls(_ name: String) -> Int { counts.withLock { $0[name, default: 0] } }
    private func count(_ name: String) { counts.withLock { $0[name, default: 0] += 1 } }

    func migrate() async throws { count("migrate"); try await inner.migrate() }
    func save(_ installations: [SealedInstallation]) async throws { count("save"); try await inner.save(installations) }
    func load(organizationID: String) async throws -> SealedInstallation? {
        count("load")
        try await heldLoads.pass()
        return try await inner.load(organizationID: organizationID)
    }
    func delete(organizationID: String) async throws -> Bool { count("delete"); return try await inner.delete(organizationID: organizationID) }
    func listMetadata() async throws -> [InstallationMetadata] { count("listMetadata"); return try await inner.listMetadata() }
    func installationCounts() async throws -> [InstallationStatus: Int] {
        count("installationCounts"); return try await inner.installationCounts()
    }
    func page(after organizationID: String?, limit: Int, matching filter: InstallationFilter) async throws -> [SealedInstallation] {
        count("page"); return try await inner.page(after: organizationID, limit: limit, matching: filter)
    }
    func withRefreshLock<Result: Sendable>(
        organizationID: String, _ body: (SealedInstallation?, any TokenStoreTransaction) async throws -> Result
    ) async throws -> Result {
        count("withRefreshLock"); return try await inner.withRefreshLock(organizationID: organizationID, body)
    }
    func resealBatch(
        notSealedUnder keyID: String, after cursor: String?, limit: Int, _ reseal: (SealedInstallation) throws -> SealedInstallation
    ) async throws -> (count: Int, last: String?) {
        count("resealBatch")
        let number = resealCursors.withLock { $0.append(cursor); return $0.count }
        let result = try await inner.resealBatch(notSealedUnder: keyID, after: cursor, limit: limit, reseal)
        try await afterResealBatch?(number)
        return result
    }
    func loadAppToken(clientID: String) async throws -> SealedAppToken? { count("loadAppToken"); return try await inner.loadAppToken(clientID: clientID) }
    func saveAppToken(_ token: SealedAppToken) async throws { count("saveAppToken"); try await inner.saveAppToken(token) }
    func resealAppTokens(notSealedUnder keyID: String, _ reseal: (SealedAppToken) throws -> SealedAppToken) async throws -> Int {
        count("resealAppTokens"); return try await inner.resealAppTokens(notSealedUnder: keyID, reseal)
    }
    func saveAuthorizationState(_ state: String, sealedVerifier: [UInt8], expiresAt: Date, maxPending: Int) async throws -> Bool {
        count("saveAuthorizationState")
        return try await inner.saveAuthorizationState(state, sealedVerifier: sealedVerifier, expiresAt: expiresAt, maxPending: maxPending)
    }
    func purgeExpiredAuthorizationStates(limit: Int) async throws -> Int {
        count("purgeExpiredAuthorizationStates"); return try await inner.purgeExpiredAuthorizationStates(limit: limit)
    }
    func takeAuthorizationState(_ state: String) async throws -> (sealedVerifier: [UInt8], expiresAt: Date)? {
        count("takeAuthorizationState"); return try await inner.takeAuthorizationState(state)
    }
    func close() async throws { try await inner.close() }
}

/// Open, callers pass; closed, they wait until it opens or their task is cancelled.
final class Barrier: Sendable {
    private struct State {
        var isOpen = true
        var waiting: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    /// How many callers wait now.
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    func close() { state.withLock { $0.isOpen = false } }

    func open() {
        let waiting = state.withLock { state in
            state.isOpen = true
            defer { state.waiting = [:] }
            return state.waiting.values
        }
        for continuation in waiting { continuation.resume() }
    }

    func pass() async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Entry { case passed, cancelled, waiting }
                // Under the lock with the cancellation handler's: either it finds the entry, or the
                // task's cancellation is seen here.
                let entry = self.state.withLock { state -> Entry in
                    if state.isOpen { return .passed }
                    if Task.isCancelled { return .cancelled }
                    state.waiting[id] = continuation
                    return .waiting
                }
                switch entry {
                case .passed: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .waiting: break
                }
            }
        } onCancel: {
            self.state.withLock { $0.waiting.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }
}
