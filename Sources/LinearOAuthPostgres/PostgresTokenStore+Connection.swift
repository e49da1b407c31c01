import Foundation
import LinearOAuth
import NIOPosix
import PostgresNIO
import Synchronization

private final class LeasePhase: Sendable {
    let value = Atomic<Int>(0)
}

/// A value handed to a child task that is known to finish before the value's owner returns.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

extension PostgresTokenStore {
    // MARK: - Plumbing

    func run<Result>(organizationID: String?, _ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch {
            throw Self.mapError(error, organizationID: organizationID)
        }
    }

    /// Runs one statement (outside a transaction: reads, and single-statement writes that take no
    /// row lock) on a pooled connection and collects its rows. If no answer has come within
    /// ``connectionTimeout`` (the server is down, or a connection hangs around its restart), the
    /// caller gets "unavailable" and the statement is left to finish or fail on its own; the caller's
    /// task is not cancelled. This is the cold path of every token lookup, so the statement runs in a
    /// task started on the caller's thread (`Task.immediate`: a plain `Task` first waited for a
    /// thread of the global executor), and its deadline is kept by the store's ``StatementWatchdog``
    /// rather than by a timer of its own.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await rows(query) { $0 }
    }

    /// ``rows(_:)``, each row decoded by `decode` as it arrives: a page of 10,000 due rows is not held
    /// as 10,000 `PostgresRow`s next to the array of their values (the memory of one array, not two;
    /// at a million rows the refresher's pass was no faster for it: 1.30x a bare query decoding the
    /// same cells, against 1.32x collecting first).
    func rows<Value: Sendable>(_ query: PostgresQuery, _ decode: @escaping @Sendable (PostgresRow) throws -> Value) async throws -> [Value] {
        let client = self.client, logger = self.logger, limit = connectionTimeout, watchdog = self.watchdog
        return try await withCheckedThrowingContinuation { continuation in
            let answer = ResumeOnce(continuation)
            let watched = watchdog.watch(until: .now() + .nanoseconds(Int64(limit.timeInterval * 1e9))) { closing in
                answer.resume(throwing: TokenStoreError.database(closing
                    ? "the PostgreSQL store was closed before PostgreSQL answered"
                    : "PostgreSQL did not answer within \(TokenSchema.milliseconds(limit)) ms; is the server up?"))
            }
            let work: @Sendable () async -> Void = {
                let result: Result<[Value], any Error>
                do {
                    result = .success(try await client.withConnection { connection in
                        var values: [Value] = []
                        for try await row in try await connection.query(query, logger: logger) { values.append(try decode(row)) }
                        return values
                    })
                } catch {
                    result = .failure(error)
                }
                watchdog.finish(watched)
                answer.resume(with: result)
            }
            if #available(macOS 26, *) { Task.immediate(operation: work) } else { Task(operation: work) }
        }
    }

    /// A pooled connection, waited for at most ``connectionTimeout``: while the server is down the
    /// pool would wait for it forever, and callers should hear "unavailable" instead. Once the body
    /// runs, it is not timed (a refresh holds its lock while it calls Linear).
    func withConnection<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let timeout = connectionTimeout
        let client = self.client
        return try await withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            // 0: waiting for a connection, 1: running the body, 2: timed out (the body must not run).
            let phase = LeasePhase()
            let timedOut = TokenStoreError.database("no connection to PostgreSQL within \(TokenSchema.milliseconds(timeout)) ms; is the server up?")
            return try await withThrowingTaskGroup(of: Result?.self) { group in
                group.addTask {
                    try await client.withConnection { connection in
                        guard phase.value.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged else {
                            throw timedOut
                        }
                        return try await work.value(connection)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                while let next = try await group.next() {
                    if let result = next {
                        group.cancelAll()
                        return result
                    }
                    if phase.value.compareExchange(expected: 0, desired: 2, ordering: .acquiringAndReleasing).exchanged {
                        group.cancelAll()
                        throw timedOut
                    }
                }
                throw CancellationError()
            }
        }
    }

    /// Runs `body` in a transaction with the lock timeout set: commits when it returns, rolls back
    /// when it throws.
    func transaction<Result: Sendable>(
        organizationID: String?, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await run(organizationID: organizationID) {
            try await withConnection { connection in
                try await connection.query("BEGIN", logger: self.logger)
                do {
                    try await connection.query(
                        "SET LOCAL lock_timeout = '\(unescaped: String(TokenSchema.milliseconds(self.lockTimeout)))ms'",
                        logger: self.logger)
                    let result = try await body(connection)
                    try await connection.query("COMMIT", logger: self.logger)
                    return result
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: self.logger)
                    throw error
                }
            }
        }
    }

    /// Maps PostgresNIO errors to ``TokenStoreError``; the caller's own errors pass through.
    static func mapError(_ error: any Error, organizationID: String?) -> any Error {
        guard let error = error as? PSQLError else { return error }
        if let state = error.serverInfo?[.sqlState] {
            if state == PostgresError.Code.lockNotAvailable.raw {
                if let organizationID { return TokenStoreError.lockTimeout(organizationID: organizationID) }
                return TokenStoreError.database("timed out waiting for rows locked by another transaction; try again")
            }
            return TokenStoreError.database("PostgreSQL \(state): \(error.serverInfo?[.message] ?? "error")")
        }
        let underlying = error.underlying.map { ": \($0)" } ?? ""
        return TokenStoreError.database("PostgreSQL \(error.code)\(underlying)")
    }
}
