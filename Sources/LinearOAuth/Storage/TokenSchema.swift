import Foundation
import Synchronization

/// What every ``TokenStore`` must agree on: table and column names, the upsert, the migrations'
/// ids and names, and how statuses, scopes and times are written. The SQLite and PostgreSQL stores
/// build their SQL from these, and a test checks that both databases end up with exactly these
/// tables, columns and migrations.
package enum TokenSchema {
    /// One installation per organization (`SealedInstallation`).
    package static let tokensTable = "linear_tokens"
    /// One app token per OAuth client (`SealedAppToken`).
    package static let appTokensTable = "linear_app_tokens"
    /// Installs in progress: `state` and the sealed PKCE verifier.
    package static let statesTable = "linear_oauth_states"
    /// The migrations applied: version, name, when.
    package static let migrationsTable = "linear_oauth_schema_migrations"

    /// The columns of an installation, in the order stores write and read them.
    package static let installationColumns = [
        "organization_id", "app_user_id", "access_token", "refresh_token", "expires_at", "scopes", "key_id", "status",
        "last_refresh_at", "last_error", "refresh_failures", "created_at", "updated_at", "installed_at", "client_id",
        "organization_name", "url_key",
    ]
    /// The same without the sealed tokens: what may be listed.
    package static let metadataColumns = installationColumns.filter { $0 != "access_token" && $0 != "refresh_token" }
    /// What a save replaces when the organization's row exists: everything but the organization and
    /// `created_at`, which an existing row keeps.
    package static let upsertReplacedColumns = installationColumns.filter { $0 != "organization_id" && $0 != "created_at" }
    /// The app token's columns (without its timestamps).
    package static let appTokenColumns = ["client_id", "access_token", "expires_at", "scopes", "key_id"]

    /// `installationColumns` as a select or insert list.
    package static let installationColumnList = installationColumns.joined(separator: ", ")
    /// `metadataColumns` as a select list.
    package static let metadataColumnList = metadataColumns.joined(separator: ", ")
    /// `appTokenColumns` as a select list.
    package static let appTokenColumnList = appTokenColumns.joined(separator: ", ")
    /// The `ON CONFLICT (organization_id) DO UPDATE SET ...` assignments of a save.
    package static let upsertAssignments = upsertReplacedColumns.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")

    /// A schema version: both stores have the same ones, with the same names and the same meaning.
    package struct Migration: Sendable, Equatable, CustomStringConvertible {
        package var version: Int
        package var name: String

        package var description: String { "\(version) \(name)" }
    }

    /// The schema versions, in order.
    package static let migrations = [
        Migration(version: 1, name: "create linear_tokens"),
        Migration(version: 2, name: "create linear_app_tokens"),
        Migration(version: 3, name: "create linear_oauth_states"),
        Migration(version: 4, name: "add linear_tokens.installed_at"),
        Migration(version: 5, name: "add linear_tokens.client_id"),
        Migration(version: 6, name: "index linear_oauth_states.expires_at"),
        Migration(version: 7, name: "add linear_tokens.organization_name and url_key"),
        Migration(version: 8, name: "index linear_tokens by (status, expires_at, organization_id)"),
    ]

    /// The latest schema version.
    package static var latestVersion: Int { migrations.last!.version }

    /// Every table and its columns once all migrations ran (in any order).
    package static let tables: [String: Set<String>] = [
        tokensTable: Set(["id"] + installationColumns),
        appTokensTable: Set(appTokenColumns + ["created_at", "updated_at"]),
        statesTable: ["state", "code_verifier", "expires_at", "created_at"],
        migrationsTable: ["version", "name", "applied_at"],
    ]

    /// Pairs each migration with a store's statements for it; a store that lacks one fails at once.
    package static func migrations(_ statements: [Int: [String]]) -> [(migration: Migration, statements: [String])] {
        precondition(Set(statements.keys) == Set(migrations.map(\.version)), "a store's migrations differ from TokenSchema.migrations")
        return migrations.map { ($0, statements[$0.version]!) }
    }

    /// A stored status.
    /// - Throws: ``TokenStoreError/database(_:)`` for a value no version of this package writes.
    package static func status(_ text: String) throws -> InstallationStatus {
        guard let status = InstallationStatus(rawValue: text) else {
            throw TokenStoreError.database("unknown installation status \"\(text)\"")
        }
        return status
    }

    /// Scopes as stored: space-separated, as Linear writes them.
    package static func scopesText(_ scopes: [String]) -> String { scopes.joined(separator: " ") }

    /// Stored scopes. Installations of one app mostly share their scopes, so the last text split is
    /// remembered and its list handed out again (about 1,000 instructions of every cold load).
    package static func scopes(_ text: String) -> [String] {
        if let scopes = lastScopes.withLock({ $0.text == text ? $0.scopes : nil }) { return scopes }
        let scopes = splitScopes(text)
        lastScopes.withLock { $0 = (text, scopes) }
        return scopes
    }

    private static let lastScopes = Mutex<(text: String, scopes: [String])>(("", []))

    /// Split on the space byte: splitting by `Character` walked grapheme clusters, about 3,000
    /// instructions of every cold load.
    private static func splitScopes(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes in
            var scopes: [String] = []
            var start = 0
            for end in 0...bytes.count where end == bytes.count || bytes[end] == UInt8(ascii: " ") {
                if end > start { scopes.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)) }
                start = end + 1
            }
            return scopes
        }
    }

    /// A time as a store without a time type keeps it (SQLite): microseconds since the Unix epoch,
    /// UTC, PostgreSQL's precision.
    package static func microseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The time `microseconds(_:)` wrote.
    package static func date(microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    /// A duration in whole milliseconds, at least 1 (lock and busy time-outs: 0 would mean "none").
    package static func milliseconds(_ duration: Duration) -> Int64 {
        max(1, duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
