import ArgumentParser
import Foundation
import LinearOAuth

extension InstallationsCommand {
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an organization's tokens at Linear and delete them here.",
            discussion: "A failure to revoke at Linear is reported but does not keep the tokens: they are deleted here regardless.")

        @OptionGroup var options: ManagerOptions

        func run() async throws {
            let (result, organizationID) = try await options.withManager { (try await $0.revoke(for: $1), $1) }
            guard result.wasInstalled else { throw CommandFailure.notInstalled(organizationID) }
            for failure in result.linearFailures {
                FileHandle.standardError.write(Data("linear-oauth: warning: Linear did not revoke the \(failure)\n".utf8))
            }
            print("revoked the tokens of organization \(organizationID) and deleted them")
        }
    }
}
