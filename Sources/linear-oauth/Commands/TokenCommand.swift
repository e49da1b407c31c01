import ArgumentParser
import LinearOAuth

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a valid access token for an organization (refreshed first if due), for scripts.",
        discussion: """
            Like `gcloud auth print-access-token`: the token alone on standard output.
            Exit status: 0 ok, 2 usage or configuration error, 3 not installed, 4 re-authorization required,
            5 Linear unreachable or another temporary failure (the stored tokens are kept).
            """)

    @OptionGroup var options: ManagerOptions

    func run() async throws {
        let token = try await options.withManager { try await $0.accessToken(for: $1) }
        print(token.token.value)
    }
}
