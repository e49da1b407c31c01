import ArgumentParser
import Foundation
import Hummingbird
import LinearOAuth
import LinearOAuthServer
import Logging
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the service: the /v1 token API, Linear's webhooks, health checks, and the background refresher.",
        discussion: """
            Routes: GET /oauth/authorize (start an install), GET /oauth/callback, GET /healthz, GET /readyz,
            POST /webhooks/linear, and under /v1 (Authorization: Bearer API_KEY):
            GET /installations, GET /installations/{org}, GET /installations/{org}/access-token,
            POST /installations/{org}/refresh, DELETE /installations/{org}.
            Stops gracefully on SIGTERM and SIGINT.
            """)

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0: a free one, printed at start).")
    var port = 8080

    @OptionGroup var store: StoreOptions
    @OptionGroup var keys: KeyOptions
    @OptionGroup var linear: LinearOptions

    @Option(name: .customLong("api-keys"), help: ArgumentHelp(
        "Comma-separated keys that may call /v1 (Authorization: Bearer KEY). (env: LINEAR_OAUTH_API_KEYS; required)", valueName: "keys"))
    var apiKeys: String?

    @Option(name: .customLong("webhook-secret"), help: ArgumentHelp(
        "The secret Linear signs webhooks with. (env: LINEAR_WEBHOOK_SECRET; required)", valueName: "secret"))
    var webhookSecret: String?

    @Option(name: .customLong("install-url"), help: ArgumentHelp(
        "Where an admin installs the app again, named in reauthorization_required answers. (env: LINEAR_OAUTH_INSTALL_URL)", valueName: "url"))
    var installURL: String?

    @Option(name: .customLong("scopes"), help: ArgumentHelp(
        "The scopes an install asks for, comma-separated. (env: LINEAR_OAUTH_SCOPES; default: read,write)", valueName: "scopes"))
    var scopes: String?

    @Option(name: .customLong("success-url"), help: ArgumentHelp(
        "Where to send the admin after an install (else a page naming the workspace). (env: LINEAR_OAUTH_SUCCESS_URL)", valueName: "url"))
    var successURL: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        func setting(_ flag: String?, _ variable: String) -> String? {
            (flag ?? environment[variable]).flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        }
        guard let apiKeys = setting(apiKeys, "LINEAR_OAUTH_API_KEYS") else {
            throw ValidationError("LINEAR_OAUTH_API_KEYS is not set (the keys that may call the token API)")
        }
        guard let webhookSecret = setting(webhookSecret, "LINEAR_WEBHOOK_SECRET") else {
            throw ValidationError("LINEAR_WEBHOOK_SECRET is not set (the secret Linear signs webhooks with)")
        }
        let keys = apiKeys.split(separator: ",").map { Secret($0.trimmingCharacters(in: .whitespaces)) }.filter { !$0.value.isEmpty }
        var clientConfiguration = try linear.clientConfiguration()
        if clientConfiguration.redirectURI == nil, port != 0 {
            clientConfiguration.redirectURI = "http://\(host):\(port)/oauth/callback"
        }
        let client = LinearClient(configuration: clientConfiguration)
        let managerConfiguration = try linear.managerConfiguration()
        var configuration = LinearOAuthServerConfiguration(apiKeys: keys, webhookSecret: Secret(webhookSecret))
        configuration.installURL = setting(installURL, "LINEAR_OAUTH_INSTALL_URL")
            ?? clientConfiguration.redirectURI.map { $0.replacingOccurrences(of: "/oauth/callback", with: "/oauth/authorize") }
        configuration.successURL = setting(successURL, "LINEAR_OAUTH_SUCCESS_URL")
        if let scopes = setting(scopes, "LINEAR_OAUTH_SCOPES") {
            configuration.scopes = scopes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let logger = Logger(label: "linear-oauth.serve")
        try await store.withVault(self.keys) { vault in
            let manager = TokenManager(vault: vault, linear: client, configuration: managerConfiguration)
            let host = self.host
            let app = Application(
                router: LinearOAuthServer(manager: manager, configuration: configuration).router(),
                configuration: .init(address: .hostname(host, port: port), serverName: "linear-oauth"),
                onServerRunning: { channel in
                    let url = "http://\(host):\(channel.localAddress?.port ?? 0)"
                    FileHandle.standardOutput.write(Data("linear-oauth listening on \(url)\n".utf8))
                },
                logger: logger)
            let group = ServiceGroup(configuration: .init(
                services: [app, TokenRefresher(manager: manager)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }
}
