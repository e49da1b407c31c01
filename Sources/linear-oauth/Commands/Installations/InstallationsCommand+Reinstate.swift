import ArgumentParser
import Foundation
import LinearOAuth

extension InstallationsCommand {
    struct Reinstate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clear reauthorization_required after a mistake: try one refresh with the stored refresh token.",
            discussion: """
                If Linear accepts the stored refresh token, the installation is active again. If it still refuses it,
                the installation stays marked and a workspace admin must install the app again.
                Exit status: 0 reinstated (or not marked), 4 still refused, 5 Linear or the database did not answer
                (nothing was changed), 2 configuration error (such as another OAuth client's grant).
                With --all: every marked installation, a line each, then a summary; the exit status is the highest seen.
                """)

        @OptionGroup var store: StoreOptions
        @OptionGroup var keys: KeyOptions
        @OptionGroup var linear: LinearOptions

        @Argument(help: "The Linear organization id or the workspace's URL key (or --all).")
        var organization: String?

        @Flag(help: "Every installation marked reauthorization_required.")
        var all = false

        func validate() throws {
            guard (organization == nil) == all else {
                throw ValidationError("name one organization, or give --all (not both)")
            }
        }

        func run() async throws {
            try await withTokenManager(store: store, keys: keys, linear: linear) { manager in
                if let reference = organization {
                    let organization = try await OrganizationReference.resolve(reference, in: manager.vault.store)
                    switch try await manager.reinstate(for: organization) {
                    case .reinstated(let expiresAt):
                        print("reinstated organization \(organization): active again; the access token expires at \(RFC3339.format(expiresAt))")
                    case .alreadyActive:
                        print("organization \(organization) is not marked reauthorization_required: nothing to do")
                    case .stillRefused(let reason):
                        throw CommandFailure(
                            description: "organization \(organization): Linear still refuses its refresh token (\(reason)); "
                                + "a workspace admin must install the app again", status: ExitStatus.reauthorizationRequired)
                    }
                    return
                }
                try await reinstateAll(manager)
            }
        }

        private func reinstateAll(_ manager: TokenManager) async throws {
            var reinstated = 0, refused = 0, failed = 0, worst: Int32 = 0
            var after: String?
            while true {
                let page = try await manager.vault.store.page(after: after, limit: 100, matching: .status(.reauthorizationRequired))
                if page.isEmpty { break }
                after = page.last?.organizationID
                for row in page {
                    do {
                        switch try await manager.reinstate(for: row.organizationID) {
                        case .reinstated(let expiresAt):
                            reinstated += 1
                            print("\(row.organizationID): reinstated; the access token expires at \(RFC3339.format(expiresAt))")
                        case .alreadyActive:
                            print("\(row.organizationID): already active")
                        case .stillRefused(let reason):
                            refused += 1
                            worst = max(worst, ExitStatus.reauthorizationRequired)
                            print("\(row.organizationID): still refused (\(reason)): install the app again")
                        }
                    } catch {
                        failed += 1
                        worst = max(worst, ExitStatus.code(for: error))
                        print("\(row.organizationID): not reinstated: \(ExitStatus.message(for: error))")
                    }
                }
            }
            print("reinstated \(reinstated), still refused \(refused), not reinstated \(failed)")
            if worst != 0 { throw ExitCode(worst) }
        }
    }
}
