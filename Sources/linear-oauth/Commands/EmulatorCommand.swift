import ArgumentParser
import Foundation
import LinearEmulator

struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "Run a Linear emulator: Linear's OAuth and GraphQL subset on a local port, with fault injection.",
        discussion: """
            Endpoints: GET/POST /oauth/authorize, POST /oauth/token, POST /oauth/revoke, POST /graphql, and test
            controls under /_emulator/ (config, faults, grants, expire, revoke, organizations, clients, requests).
            Point LINEAR_API_URL at the printed URL and LINEAR_AUTHORIZE_URL at URL/oauth/authorize.
            Not the real Linear: for tests and trying things out.
            """)

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0: a free one, printed at start).")
    var port = 8090

    @Option(help: "The emulated OAuth application's client id.")
    var clientID = LinearEmulator.defaultClient.id

    @Option(help: "The emulated OAuth application's client secret.")
    var clientSecret = LinearEmulator.defaultClient.secret

    @Option(help: "A redirect URI the application accepts (repeatable).")
    var redirectURI: [String] = LinearEmulator.defaultClient.redirectURIs

    @Option(help: "Where to send the signed OAuthApp webhooks.")
    var webhookURL: String?

    @Option(help: "The secret that signs the webhooks.")
    var webhookSecret: String?

    @Flag(help: "Approve authorize requests at once instead of showing the consent page.")
    var autoApprove = false

    @Option(help: "Seconds an access token lives.")
    var accessTokenLifetime = 86_399

    @Option(help: "Seconds a rotated refresh token replays its answer.")
    var gracePeriod = 1_800

    func run() async throws {
        var settings = EmulatorSettings()
        settings.autoApprove = autoApprove
        settings.accessTokenLifetime = accessTokenLifetime
        settings.gracePeriod = gracePeriod
        let client = EmulatedClient(
            id: clientID, secret: clientSecret, name: "Emulated App", redirectURIs: redirectURI,
            webhookURL: webhookURL, webhookSecret: webhookSecret)
        let emulator = LinearEmulator(host: host, port: port, clients: [client], settings: settings)
        try await emulator.run { url in
            FileHandle.standardOutput.write(Data(
                "Linear emulator listening on \(url) (authorize: \(url)/oauth/authorize, client id: \(client.id))\n".utf8))
        }
    }
}
