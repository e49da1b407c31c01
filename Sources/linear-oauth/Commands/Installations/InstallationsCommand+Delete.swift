import ArgumentParser
import Foundation
import LinearOAuth

extension InstallationsCommand {
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
