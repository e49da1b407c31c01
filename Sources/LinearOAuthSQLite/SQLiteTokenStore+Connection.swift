import Foundation
import LinearOAuth
import Logging
import SQLiteNIO

extension SQLiteTokenStore {
    /// Opens one connection to the file with the pragmas every connection needs.
    static func opener(
        path: String, busyTimeout: Duration, threadPool: NIOThreadPool, logger: Logger
    ) -> @Sendable () async throws -> SQLiteConnection {
        let busyMilliseconds = TokenSchema.milliseconds(busyTimeout)
        return {
            let connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: threadPool, logger: logger,
                on: MultiThreadedEventLoopGroup.singleton.any())
            do {
                // busy_timeout replaces SQLiteNIO's default handler, which retries forever.
                _ = try await connection.query("PRAGMA busy_timeout = \(busyMilliseconds)")
                _ = try await connection.query("PRAGMA journal_mode = WAL")
                // FULL: a committed refresh token survives power loss, not just a crash.
                _ = try await connection.query("PRAGMA synchronous = FULL")
            } catch {
                try? await connection.close()
                throw Self.mapError(error, organizationID: nil)
            }
            return connection
        }
    }

    /// Runs `body` on a reader connection (WAL: readers never wait for the writer).
    nonisolated(nonsending) func read<Result>(
        _ body: nonisolated(nonsending) (SQLiteConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await readers.withConnection(
                timeout: lockTimeout, onTimeout: { TokenStoreError.database("timed out waiting for a free SQLite connection") }, body)
        } catch {
            throw Self.mapError(error, organizationID: nil)
        }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: it holds the database's write lock, commits
    /// when `body` returns and rolls back when it throws. Waiting for the lock past the lock timeout
    /// is ``TokenStoreError/lockTimeout(organizationID:)`` when the write is about one organization.
    func write<Result>(organizationID: String?, _ body: (SQLiteConnection) async throws -> Result) async throws -> Result {
        let lockError: @Sendable () -> any Error = {
            organizationID.map { TokenStoreError.lockTimeout(organizationID: $0) }
                ?? TokenStoreError.database("timed out waiting for the SQLite write lock")
        }
        do {
            return try await writers.withConnection(timeout: lockTimeout, onTimeout: lockError) { connection in
                do {
                    _ = try await connection.query("BEGIN IMMEDIATE")
                } catch let error as SQLiteError where Self.isBusy(error) {
                    throw lockError()
                }
                do {
                    let result = try await body(connection)
                    _ = try await connection.query("COMMIT")
                    return result
                } catch {
                    do {
                        _ = try await connection.query("ROLLBACK")
                    } catch {
                        // Still inside a transaction, holding the write lock: never hand it out again.
                        try? await connection.close()
                    }
                    throw error
                }
            }
        } catch {
            throw Self.mapError(error, organizationID: organizationID)
        }
    }

    private static func isBusy(_ error: SQLiteError) -> Bool {
        switch error.reason {
        case .busy, .busyTimeout, .busyInRecovery, .busyInSnapshot, .locked: true
        default: false
        }
    }

    /// Maps SQLite errors to ``TokenStoreError``; errors of the caller's own pass through.
    static func mapError(_ error: any Error, organizationID: String?) -> any Error {
        guard let error = error as? SQLiteError else { return error }
        if isBusy(error), let organizationID { return TokenStoreError.lockTimeout(organizationID: organizationID) }
        return TokenStoreError.database("SQLite: \(error.message)")
    }
}
