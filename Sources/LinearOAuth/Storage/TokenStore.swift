import Foundation

/// Which rows a ``TokenStore/page(after:limit:matching:)`` call returns.
public enum InstallationFilter: Sendable, Equatable {
    /// Every row.
    case all
    /// Rows whose tokens are not sealed under this key (what `keys rotate` re-encrypts).
    case notSealedUnder(keyID: String)
    /// Active rows whose access token expires before this time (what the background refresher renews).
    case activeExpiringBefore(Date)
    /// Rows with this status (what `installations reinstate --all` goes through).
    case status(InstallationStatus)
}

/// Which installations a ``TokenStore/metadata(matching:after:limit:)`` call returns.
public enum InstallationSearch: Sendable, Equatable {
    /// Every row.
    case all
    /// Rows whose organization id, workspace name or URL key contains this text (ASCII letters
    /// compared without case): what the console's search box finds.
    case containing(String)
    /// Rows with exactly this URL key: how `acme` is taken for `org-acme`.
    case urlKey(String)
}

/// A due installation, and the keyset cursor of the refresher's pages: by expiry, then organization id.
public struct DueCursor: Sendable, Hashable, Comparable {
    public var expiresAt: Date
    public var organizationID: String

    public init(expiresAt: Date, organizationID: String) {
        self.expiresAt = expiresAt
        self.organizationID = organizationID
    }

    public static func < (a: DueCursor, b: DueCursor) -> Bool {
        (a.expiresAt, a.organizationID) < (b.expiresAt, b.organizationID)
    }
}

/// The writes allowed while a refresh lock is held.
public protocol TokenStoreTransaction: Sendable {
    /// Writes the row (insert or replace by organization) inside the locked transaction.
    func save(_ installation: SealedInstallation) async throws
    /// Deletes the locked organization's row inside the transaction.
    func delete() async throws
}

/// Durable storage for sealed installations: PostgreSQL and SQLite implement it.
///
/// A store never sees a plaintext token; ``TokenVault`` seals and opens. Every operation is safe to
/// call from many tasks and many processes at once.
public protocol TokenStore: Sendable {
    /// Applies pending migrations; safe to run concurrently and repeatedly.
    func migrate() async throws

    /// Inserts or replaces each row by organization, all in one transaction. Keeps `created_at` of
    /// an existing row; sets `updated_at` to now.
    func save(_ installations: [SealedInstallation]) async throws

    /// The row of one organization, or `nil` if it is not installed.
    func load(organizationID: String) async throws -> SealedInstallation?

    /// Deletes one organization's row; `true` if there was one.
    func delete(organizationID: String) async throws -> Bool

    /// Metadata of every row, ordered by organization id. No token leaves the store.
    func listMetadata() async throws -> [InstallationMetadata]

    /// How many installations have each status: one aggregate query, never a listing (`/metrics`).
    func installationCounts() async throws -> [InstallationStatus: Int]

    /// Up to `limit` rows matching `filter` with organization id greater than `after`, ordered by
    /// organization id: a keyset page, stable while rows change.
    func page(after organizationID: String?, limit: Int, matching filter: InstallationFilter) async throws
        -> [SealedInstallation]

    /// Up to `limit` rows' metadata matching `search`, with organization id greater than `after`,
    /// ordered by organization id (a keyset page). No token leaves the store.
    func metadata(matching search: InstallationSearch, after organizationID: String?, limit: Int) async throws -> [InstallationMetadata]

    /// The `limit` active installations whose access tokens expire first, soonest first.
    func soonestExpiring(limit: Int) async throws -> [InstallationMetadata]

    /// Runs `body` inside a transaction that holds `organizationID`'s refresh lock across processes,
    /// handing it the row as it is once the lock is held. Writes made through the transaction commit
    /// when `body` returns and roll back when it throws.
    /// - Throws: ``TokenStoreError/lockTimeout(organizationID:)`` if the lock is not had in time.
    func withRefreshLock<Result: Sendable>(
        organizationID: String,
        _ body: (SealedInstallation?, any TokenStoreTransaction) async throws -> Result
    ) async throws -> Result

    /// Like ``withRefreshLock(organizationID:_:)``, but when another process holds the organization's
    /// lock it returns `nil` at once instead of waiting: how instances of the background refresher
    /// split the due work instead of queueing on each other's rows (`FOR UPDATE SKIP LOCKED`).
    func withRefreshLockIfFree<Result: Sendable>(
        organizationID: String,
        _ body: (SealedInstallation?, any TokenStoreTransaction) async throws -> Result
    ) async throws -> Result?

    /// Up to `limit` active installations whose access token expires before `deadline`, soonest
    /// first, after the cursor (the last row of the previous page, by expiry then organization id):
    /// what the background refresher renews, found through the (status, expires_at, organization_id) index.
    func dueForRefresh(before deadline: Date, after cursor: DueCursor?, limit: Int) async throws -> [DueCursor]

    /// Re-seals one batch of rows not sealed under `keyID`, the first `limit` by organization id after
    /// `cursor` (`nil`: from the start), in one transaction that locks those rows: each row is replaced
    /// by `reseal(row)` unless a concurrent writer already changed its key. The cursor keeps a pass
    /// over the table linear: a batch starts where the last one stopped instead of skipping every
    /// row already moved.
    /// - Returns: How many rows were re-sealed (fewer than `limit` only when the pass reached the
    ///   end), and the organization id of the last, the cursor for the next batch.
    func resealBatch(
        notSealedUnder keyID: String, after cursor: String?, limit: Int,
        _ reseal: (SealedInstallation) throws -> SealedInstallation
    ) async throws -> (count: Int, last: String?)

    /// The app token of an OAuth client, or `nil`.
    func loadAppToken(clientID: String) async throws -> SealedAppToken?

    /// Inserts or replaces the app token of an OAuth client.
    func saveAppToken(_ token: SealedAppToken) async throws

    /// Re-seals every app token not sealed under `keyID`, in one transaction.
    /// - Returns: How many were re-sealed.
    func resealAppTokens(notSealedUnder keyID: String, _ reseal: (SealedAppToken) throws -> SealedAppToken) async throws -> Int

    /// Remembers an install in progress: its `state` and sealed PKCE verifier, until `expiresAt`,
    /// unless `maxPending` unexpired states are already waiting (an anonymous flood must not grow the
    /// table without bound). Nothing is purged here: see ``purgeExpiredAuthorizationStates(limit:)``.
    /// - Returns: `false` when the cap was reached and nothing was stored.
    func saveAuthorizationState(_ state: String, sealedVerifier: [UInt8], expiresAt: Date, maxPending: Int) async throws -> Bool

    /// Deletes up to `limit` expired install states, in one short transaction (a background task
    /// calls it in a loop, off every request's path).
    /// - Returns: How many were deleted.
    func purgeExpiredAuthorizationStates(limit: Int) async throws -> Int

    /// Takes (deletes and returns) an install's state: each state can be taken once, by any instance.
    func takeAuthorizationState(_ state: String) async throws -> (sealedVerifier: [UInt8], expiresAt: Date)?

    /// Calls `onChange` with the organization id whenever any process changes or deletes an
    /// organization's tokens, until the task is cancelled: how instances evict each other's caches.
    /// Stores without a notification channel return at once (SQLite: one machine, one process
    /// serving, and caches end at the refresh margin).
    func watchChanges(_ onChange: @escaping @Sendable (String) -> Void) async throws

    /// The same, calling `whenListening` once the subscription is active and before the first
    /// change is delivered: changes made before that moment were not seen (a reconnect's gap), so
    /// the caller forgets what it cached then. Stores without a channel return at once.
    func watchChanges(whenListening: @escaping @Sendable () -> Void, _ onChange: @escaping @Sendable (String) -> Void) async throws

    /// Releases connections. The store cannot be used afterwards.
    func close() async throws
}

extension TokenStore {
    /// For stores without a way to skip a held lock (SQLite: one writer at a time on one machine):
    /// waits, as ``withRefreshLock(organizationID:_:)`` does.
    public func withRefreshLockIfFree<Result: Sendable>(
        organizationID: String,
        _ body: (SealedInstallation?, any TokenStoreTransaction) async throws -> Result
    ) async throws -> Result? {
        try await withRefreshLock(organizationID: organizationID, body)
    }

    /// For stores written before it: pages with ``page(after:limit:matching:)`` and sorts each page.
    public func dueForRefresh(before deadline: Date, after cursor: DueCursor?, limit: Int) async throws -> [DueCursor] {
        var rows: [DueCursor] = []
        var after: String?
        while true {
            let page = try await self.page(after: after, limit: 1000, matching: .activeExpiringBefore(deadline))
            rows += page.map { DueCursor(expiresAt: $0.metadata.expiresAt, organizationID: $0.organizationID) }
            guard page.count == 1000, let last = page.last else { break }
            after = last.organizationID
        }
        return Array(rows.sorted().filter { cursor == nil || $0 > cursor! }.prefix(limit))
    }

    /// For stores written before it: filters ``listMetadata()`` (fine for small tables).
    public func metadata(matching search: InstallationSearch, after organizationID: String?, limit: Int) async throws -> [InstallationMetadata] {
        try await listMetadata().lazy.filter { $0.organizationID > (organizationID ?? "") && search.matches($0) }.prefix(limit).map { $0 }
    }

    /// For stores written before it: sorts ``listMetadata()`` (fine for small tables).
    public func soonestExpiring(limit: Int) async throws -> [InstallationMetadata] {
        Array(try await listMetadata().filter { $0.status == .active }.sorted { $0.expiresAt < $1.expiresAt }.prefix(limit))
    }

    /// Remembers an install in progress, without a cap.
    public func saveAuthorizationState(_ state: String, sealedVerifier: [UInt8], expiresAt: Date) async throws {
        _ = try await saveAuthorizationState(state, sealedVerifier: sealedVerifier, expiresAt: expiresAt, maxPending: Int.max)
    }

    public func watchChanges(_ onChange: @escaping @Sendable (String) -> Void) async throws {}

    /// For stores written before `whenListening`: it is called just before their subscription starts.
    public func watchChanges(whenListening: @escaping @Sendable () -> Void, _ onChange: @escaping @Sendable (String) -> Void) async throws {
        whenListening()
        try await watchChanges(onChange)
    }

    /// Inserts or replaces one row by organization.
    public func save(_ installation: SealedInstallation) async throws {
        try await save([installation])
    }
}

extension InstallationSearch {
    /// Whether a row matches, as the stores' SQL decides it.
    public func matches(_ metadata: InstallationMetadata) -> Bool {
        switch self {
        case .all: return true
        case .urlKey(let key): return metadata.urlKey == key
        case .containing(let text):
            let needle = Self.lowercasedASCII(text)
            return [metadata.organizationID, metadata.organizationName, metadata.urlKey].contains {
                $0.map { Self.lowercasedASCII($0).contains(needle) } ?? false
            }
        }
    }

    /// Lower-cases A-Z only, as SQLite's `lower()` does.
    package static func lowercasedASCII(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { ("A"..."Z").contains($0) ? Unicode.Scalar($0.value + 32)! : $0 }))
    }
}
