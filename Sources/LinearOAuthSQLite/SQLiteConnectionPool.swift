import LinearOAuth
import Logging
import SQLiteNIO
import Synchronization

/// A small pool of SQLite connections to one file. A transaction needs a connection to itself, so
/// concurrent callers each lease one; when all are leased, callers wait (up to a deadline).
final class SQLiteConnectionPool: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<SQLiteConnection, any Error>
    }

    private struct State {
        var idle: [SQLiteConnection] = []
        var opened = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    private enum Acquire {
        case ready(SQLiteConnection)
        case open
        case wait(UInt64)
    }

    private let state = Mutex(State())
    private let capacity: Int
    private let makeConnection: @Sendable () async throws -> SQLiteConnection

    init(capacity: Int, makeConnection: @escaping @Sendable () async throws -> SQLiteConnection) {
        self.capacity = capacity
        self.makeConnection = makeConnection
    }

    /// Leases a connection for `body`'s duration.
    /// - Parameter timeout: How long to wait for a free connection; `onTimeout` is thrown after it.
    nonisolated(nonsending) func withConnection<Result>(
        timeout: Duration,
        onTimeout: @escaping @Sendable () -> any Error,
        _ body: nonisolated(nonsending) (SQLiteConnection) async throws -> Result
    ) async throws -> Result {
        // The common case, an idle connection, without another async frame.
        let connection: SQLiteConnection
        if let idle = state.withLock({ state in state.closed ? nil : state.idle.popLast() }) {
            connection = idle
        } else {
            connection = try await acquire(timeout: timeout, onTimeout: onTimeout)
        }
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    /// Waits for a connection (``withConnection(timeout:onTimeout:_:)`` took an idle one if there was one).
    private func acquire(timeout: Duration, onTimeout: @escaping @Sendable () -> any Error) async throws -> SQLiteConnection {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SQLiteConnection, any Error>) in
            let action: Acquire? = state.withLock { state in
                if state.closed { return nil }
                if let connection = state.idle.popLast() { return .ready(connection) }
                if state.opened < capacity {
                    state.opened += 1
                    return .open
                }
                state.nextWaiterID += 1
                state.waiters.append(Waiter(id: state.nextWaiterID, continuation: continuation))
                return .wait(state.nextWaiterID)
            }
            switch action {
            case nil:
                continuation.resume(throwing: TokenStoreError.database("the SQLite store is closed"))
            case .ready(let connection):
                continuation.resume(returning: connection)
            case .open:
                Task {
                    do {
                        continuation.resume(returning: try await makeConnection())
                    } catch {
                        // The slot is free again: a queued caller would otherwise wait out its whole
                        // timeout. Hand it the same failure (opening would most likely fail again).
                        let waiter: Waiter? = state.withLock { state in
                            state.opened -= 1
                            return state.waiters.isEmpty ? nil : state.waiters.removeFirst()
                        }
                        continuation.resume(throwing: error)
                        waiter?.continuation.resume(throwing: error)
                    }
                }
            case .wait(let id):
                Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    self?.expire(waiter: id, error: onTimeout())
                }
            }
        }
    }

    private func expire(waiter id: UInt64, error: any Error) {
        let waiter: Waiter? = state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }

    private func release(_ connection: SQLiteConnection) {
        enum Next { case idle, handOver(Waiter), close, openFor(Waiter) }
        let next: Next = state.withLock { state in
            if state.closed { return .close }
            if connection.isClosed {
                // Dropped by its user (a transaction it could not roll back): open a fresh one for
                // the next waiter, if any.
                if state.waiters.isEmpty {
                    state.opened -= 1
                    return .idle
                }
                return .openFor(state.waiters.removeFirst())
            }
            if state.waiters.isEmpty {
                state.idle.append(connection)
                return .idle
            }
            return .handOver(state.waiters.removeFirst())
        }
        switch next {
        case .idle: break
        case .handOver(let waiter): waiter.continuation.resume(returning: connection)
        case .close: Task { try? await connection.close() }
        case .openFor(let waiter):
            Task {
                do {
                    waiter.continuation.resume(returning: try await makeConnection())
                } catch {
                    state.withLock { $0.opened -= 1 }
                    waiter.continuation.resume(throwing: error)
                }
            }
        }
    }

    /// A pool dropped without ``close()`` still closes its idle connections (SQLite handles would
    /// leak otherwise); the futures keep each connection alive until it is closed.
    deinit {
        let idle = state.withLock { state in
            defer { state.idle.removeAll() }
            return state.idle
        }
        for connection in idle { _ = connection.close() }
    }

    /// Closes idle connections and refuses new leases.
    func close() async throws {
        let (idle, waiters): ([SQLiteConnection], [Waiter]) = state.withLock { state in
            state.closed = true
            defer {
                state.idle.removeAll()
                state.waiters.removeAll()
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: TokenStoreError.database("the SQLite store is closed"))
        }
        for connection in idle { try await connection.close() }
    }
}
