import ArgumentParser
import Foundation
import LinearOAuth

extension InstallationsCommand {
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete one installation's tokens from the store only (`installations revoke` also revokes them at Linear).")

        @OptionGroup var store: StoreOptions

        @Argument(help: ArgumentHelp(OrganizationReference.help))
        var organization: String

        func run() async throws {
            let (deleted, organizationID) = try await store.withStore { store in
                let organizationID = try await OrganizationReference.resolve(organization, in: store)
                return (try await store.delete(organizationID: organizationID), organizationID)
            }
            guard deleted else { throw CommandFailure.notInstalled(organizationID) }
            print("deleted the tokens of organization \(organizationID) (here only: they were not revoked at Linear)")
        }
    }
}
