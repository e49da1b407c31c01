import ArgumentParser
import LinearOAuth

extension InstallationsCommand {
    struct Refresh: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refresh an organization's tokens now, whatever their expiry.")

        @OptionGroup var options: ManagerOptions

        func run() async throws {
            let token = try await options.withManager { try await $0.forceRefresh(for: $1) }
            print("refreshed organization \(token.organizationID); the access token expires at \(RFC3339.format(token.expiresAt))")
        }
    }
}
