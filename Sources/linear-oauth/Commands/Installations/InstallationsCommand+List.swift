import ArgumentParser
import Foundation
import LinearOAuth

extension InstallationsCommand {
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
                [m.organizationID, m.urlKey ?? "-", m.organizationName ?? "-", m.appUserID, m.status.rawValue, RFC3339.format(m.expiresAt), m.keyID,
                 m.lastRefreshAt.map(RFC3339.format) ?? "-", m.lastError ?? "-"]
            }
            print(Table.render(
                header: ["ORGANIZATION", "URL KEY", "NAME", "APP USER", "STATUS", "EXPIRES AT", "KEY", "LAST REFRESH", "LAST ERROR"], rows: rows),
                terminator: "")
            if installations.isEmpty { print("no installations") }
        }
    }
}
