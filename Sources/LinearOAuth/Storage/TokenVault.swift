/// A ``TokenStore`` seen through a ``KeyRing``: installations go in and come out decrypted, and
/// are sealed under the active key on every write.
public struct TokenVault: Sendable {
    /// The storage backend.
    public let store: any TokenStore
    /// The keys that seal and open tokens.
    public let keyRing: KeyRing

    /// Creates a vault over a store.
    public init(store: any TokenStore, keyRing: KeyRing) {
        self.store = store
        self.keyRing = keyRing
    }

    /// Writes an installation (insert or replace by organization), sealed under the active key.
    public func save(_ installation: Installation) async throws {
        try await store.save([keyRing.seal(installation)])
    }

    /// Writes several installations in one transaction: all of them or none.
    public func save(_ installations: [Installation]) async throws {
        try await store.save(installations.map(keyRing.seal))
    }

    /// Loads and decrypts one organization's installation, or `nil` if it is not installed.
    public func load(organizationID: String) async throws -> Installation? {
        guard let sealed = try await store.load(organizationID: organizationID) else { return nil }
        return try keyRing.open(sealed)
    }

    /// Deletes one organization's tokens locally; `true` if there were any.
    @discardableResult
    public func delete(organizationID: String) async throws -> Bool {
        try await store.delete(organizationID: organizationID)
    }

    /// Metadata of every installation, ordered by organization id; never a token.
    public func list() async throws -> [InstallationMetadata] {
        try await store.listMetadata()
    }

    /// Writes made while holding a refresh lock; they commit when the locked body returns.
    public struct LockedWriter: Sendable {
        let transaction: any TokenStoreTransaction
        let keyRing: KeyRing

        /// Replaces the locked organization's row, sealed under the active key.
        public func save(_ installation: Installation) async throws {
            try await transaction.save(keyRing.seal(installation))
        }

        /// Deletes the locked organization's row.
        public func delete() async throws {
            try await transaction.delete()
        }
    }

    /// Runs `body` holding `organizationID`'s refresh lock across processes, with the installation
    /// as it is once the lock is held (decrypted), or `nil` if it is not installed.
    public func withRefreshLock<Result: Sendable>(
        organizationID: String,
        _ body: (Installation?, LockedWriter) async throws -> Result
    ) async throws -> Result {
        let keyRing = self.keyRing
        return try await store.withRefreshLock(organizationID: organizationID) { sealed, transaction in
            try await body(try sealed.map { sealed throws(TokenDecryptionError) in try keyRing.open(sealed) },
                LockedWriter(transaction: transaction, keyRing: keyRing))
        }
    }

    /// The same, but `nil` at once when another process holds the lock
    /// (``TokenStore/withRefreshLockIfFree(organizationID:_:)``).
    public func withRefreshLockIfFree<Result: Sendable>(
        organizationID: String,
        _ body: (Installation?, LockedWriter) async throws -> Result
    ) async throws -> Result? {
        let keyRing = self.keyRing
        return try await store.withRefreshLockIfFree(organizationID: organizationID) { sealed, transaction in
            try await body(try sealed.map { sealed throws(TokenDecryptionError) in try keyRing.open(sealed) },
                LockedWriter(transaction: transaction, keyRing: keyRing))
        }
    }

    /// Re-encrypts every row not sealed under the active key, one batch per transaction. Safe while
    /// other processes use the store, and resumable: rows already moved are not selected again.
    ///
    /// Each pass walks the table once by organization id, a batch starting where the last stopped.
    /// A pass that moved rows is followed by another from the start, which finds a row a process still
    /// running with the old key wrote behind the cursor; the run ends with a pass that moved nothing.
    /// - Parameters:
    ///   - batchSize: Rows per transaction.
    ///   - maxBatches: Stop after this many batches (`nil`: until done).
    /// - Returns: How many rows were re-encrypted.
    /// - Throws: ``TokenDecryptionError`` naming the organization when a row's key is not in the ring;
    ///   the batch holding it is rolled back, earlier batches stay done.
    public func rotateKeys(batchSize: Int = 1_000, maxBatches: Int? = nil) async throws -> Int {
        precondition(batchSize > 0, "batchSize must be positive")
        let keyRing = self.keyRing
        var total = 0
        var batches = 0
        var cursor: String?
        var movedThisPass = 0
        while maxBatches.map({ batches < $0 }) ?? true {
            let (count, last) = try await store.resealBatch(notSealedUnder: keyRing.activeKeyID, after: cursor, limit: batchSize) { row in
                try keyRing.seal(keyRing.open(row))
            }
            total += count
            batches += 1
            movedThisPass += count
            cursor = last ?? cursor
            if count < batchSize {  // the end of this pass
                if movedThisPass == 0 { break }
                cursor = nil
                movedThisPass = 0
            }
        }
        if maxBatches.map({ batches < $0 }) ?? true {
            total += try await store.resealAppTokens(notSealedUnder: keyRing.activeKeyID) { token in
                try keyRing.sealAppToken(
                    clientID: token.clientID, accessToken: keyRing.openAppToken(token), expiresAt: token.expiresAt, scopes: token.scopes)
            }
        }
        return total
    }
}
