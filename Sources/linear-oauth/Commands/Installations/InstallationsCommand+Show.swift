import ArgumentParser
import Foundation
import LinearOAuth

extension InstallationsCommand {
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one installation's metadata.")

        @OptionGroup var store: StoreOptions

        @Argument(help: ArgumentHelp(OrganizationReference.help))
        var organization: String

        @Flag(help: "Print a JSON object.")
        var json = false

        func run() async throws {
            let found = try await store.withStore { store in
                try await store.metadata(organizationID: try await OrganizationReference.resolve(organization, in: store))
            }
            guard let m = found else { throw CommandFailure.notInstalled(organization) }
            if json {
                print(String(decoding: try RFC3339.jsonEncoder(pretty: true).encode(m), as: UTF8.self))
                return
            }
            let fields: [(String, String)] = [
                ("organization", m.organizationID), ("workspace", m.organizationName ?? "-"), ("url key", m.urlKey ?? "-"),
                ("app user", m.appUserID), ("status", m.status.rawValue),
                ("expires at", RFC3339.format(m.expiresAt)), ("scopes", m.scopes.joined(separator: " ")),
                ("key id", m.keyID), ("last refresh", m.lastRefreshAt.map(RFC3339.format) ?? "-"),
                ("last error", m.lastError ?? "-"), ("refresh failures", String(m.refreshFailures)),
                ("created at", RFC3339.format(m.createdAt)), ("updated at", RFC3339.format(m.updatedAt)),
                ("installed at", RFC3339.format(m.installedAt)), ("client id", m.clientID ?? "- (recorded at the next refresh)"),
            ]
            for (name, value) in fields {
                print("\(name):".padding(toLength: 18, withPad: " ", startingAt: 0) + value)
            }
        }
    }
}
