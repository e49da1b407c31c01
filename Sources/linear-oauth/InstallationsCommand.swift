import ArgumentParser
import Foundation
import LinearOAuth

struct InstallationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "installations",
        abstract: "List, inspect, import, refresh, revoke and delete installations. Never prints a token.",
        subcommands: [Import.self, List.self, Show.self, Delete.self, RefreshInstallationCommand.self, RevokeInstallationCommand.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import installations from JSON lines on standard input, all or nothing.",
            discussion: """
                One JSON object per line with organization_id, app_user_id, access_token, refresh_token,
                expires_at (RFC 3339) and optional scopes (an array, or a space- or comma-separated string).
                A bad line is reported with its line number and nothing is imported. An organization that is
                already installed is replaced.
                """)

        @OptionGroup var store: StoreOptions
        @OptionGroup var keys: KeyOptions

        func run() async throws {
            let keyRing = try keys.keyRing()
            let installations = try InstallationImport.parse(FileHandle.standardInput.readDataToEndOfFile())
            try await store.withStore { store in
                try await TokenVault(store: store, keyRing: keyRing).save(installations)
            }
            print("imported \(installations.count) installation\(installations.count == 1 ? "" : "s")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List installations: organization, app user, status, expiry, key id, last refresh, last error.")

        @OptionGroup var store: StoreOptions

        @Flag(help: "Print a JSON array instead of a table.")
        var json = false

        func run() async throws {
            let installations = try await store.withStore { try await $0.listMetadata() }
            if json {
                print(String(decoding: try RFC3339.jsonEncoder(pretty: true).encode(installations), as: UTF8.self))
                return
            }
            let rows = installations.map { m in
                [m.organizationID, m.appUserID, m.status.rawValue, RFC3339.format(m.expiresAt), m.keyID,
                 m.lastRefreshAt.map(RFC3339.format) ?? "-", m.lastError ?? "-"]
            }
            print(Table.render(
                header: ["ORGANIZATION", "APP USER", "STATUS", "EXPIRES AT", "KEY", "LAST REFRESH", "LAST ERROR"], rows: rows),
                terminator: "")
            if installations.isEmpty { print("no installations") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one installation's metadata.")

        @OptionGroup var store: StoreOptions

        @Argument(help: "The Linear organization id.")
        var organization: String

        @Flag(help: "Print a JSON object.")
        var json = false

        func run() async throws {
            let found = try await store.withStore { store in
                try await store.listMetadataOf(organizationID: organization)
            }
            guard let m = found else { throw CommandFailure.notInstalled(organization) }
            if json {
                print(String(decoding: try RFC3339.jsonEncoder(pretty: true).encode(m), as: UTF8.self))
                return
            }
            let fields: [(String, String)] = [
                ("organization", m.organizationID), ("app user", m.appUserID), ("status", m.status.rawValue),
                ("expires at", RFC3339.format(m.expiresAt)), ("scopes", m.scopes.joined(separator: " ")),
                ("key id", m.keyID), ("last refresh", m.lastRefreshAt.map(RFC3339.format) ?? "-"),
                ("last error", m.lastError ?? "-"), ("refresh failures", String(m.refreshFailures)),
                ("created at", RFC3339.format(m.createdAt)), ("updated at", RFC3339.format(m.updatedAt)),
            ]
            for (name, value) in fields {
                print("\(name):".padding(toLength: 18, withPad: " ", startingAt: 0) + value)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete one installation's tokens from the store only (`installations revoke` also revokes them at Linear).")

        @OptionGroup var store: StoreOptions

        @Argument(help: "The Linear organization id.")
        var organization: String

        func run() async throws {
            let deleted = try await store.withStore { try await $0.delete(organizationID: organization) }
            guard deleted else { throw CommandFailure.notInstalled(organization) }
            print("deleted the tokens of organization \(organization) (here only: they were not revoked at Linear)")
        }
    }
}

extension TokenStore {
    /// One organization's metadata without opening its tokens (no key needed).
    func listMetadataOf(organizationID: String) async throws -> InstallationMetadata? {
        try await load(organizationID: organizationID)?.metadata
    }
}

/// A plain text table with columns padded to their widest cell.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }
        return ([header] + rows).map(line).joined()
    }
}
