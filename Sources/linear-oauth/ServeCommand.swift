import ArgumentParser
import Foundation
import Hummingbird
import LinearEmulator
import LinearOAuth
import LinearOAuthServer
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the service: the /v1 token API, Linear's webhooks, health checks, and the background refresher.",
        discussion: """
            Routes: GET /oauth/authorize (start an install), GET /oauth/callback, GET /healthz, GET /readyz, GET /metrics,
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
    @OptionGroup var settings: ServiceSettings

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

    @Flag(help: """
        Try it without a Linear account: also start the Linear emulator, point the service at it with a generated \
        client, and (for development only) generate an encryption key file and an API key file next to the database.
        """)
    var emulator = false

    func run() async throws {
        var environment = try await settings.environment()
        var listenPort = self.port
        var emulatorInstance: LinearEmulator?
        if emulator {
            // The redirect URI names the port: with --emulator it is chosen before listening.
            if listenPort == 0 { listenPort = try Self.freePort() }
            let setup = try await DevelopmentSetup.start(host: host, port: listenPort, environment: environment, keys: keys, store: store)
            environment.merge(setup.environment) { $1 }
            emulatorInstance = setup.emulator
        }
        defer { if let emulatorInstance { Task { await emulatorInstance.stop() } } }
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
        var clientConfiguration = try linear.clientConfiguration(environment: environment)
        if clientConfiguration.redirectURI == nil, listenPort != 0 {
            clientConfiguration.redirectURI = "http://\(host):\(listenPort)/oauth/callback"
        }
        let client = LinearClient(configuration: clientConfiguration)
        var managerConfiguration = try linear.managerConfiguration(environment: environment)
        let registry = PrometheusCollectorRegistry()
        managerConfiguration.metricsFactory = PrometheusMetricsFactory(registry: registry)
        // A long-running process: callers get a still-good token at once while it is renewed.
        managerConfiguration.refreshAhead = true
        var configuration = LinearOAuthServerConfiguration(apiKeys: keys, webhookSecret: Secret(webhookSecret))
        configuration.installURL = setting(installURL, "LINEAR_OAUTH_INSTALL_URL")
            ?? clientConfiguration.redirectURI.map { $0.replacingOccurrences(of: "/oauth/callback", with: "/oauth/authorize") }
        configuration.successURL = setting(successURL, "LINEAR_OAUTH_SUCCESS_URL")
        configuration.prometheus = registry
        if let scopes = setting(scopes, "LINEAR_OAUTH_SCOPES") {
            configuration.scopes = scopes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let logger = Logger(label: "linear-oauth.serve")
        let keyOptions = self.keys
        let port = listenPort
        let emulatorRunning = emulatorInstance != nil
        try await store.withVault(keyOptions, environment: environment) { vault in
            let manager = TokenManager(vault: vault, linear: client, configuration: managerConfiguration)
            let host = self.host
            let app = Application(
                router: LinearOAuthServer(manager: manager, configuration: configuration).router(),
                configuration: .init(address: .hostname(host, port: port), serverName: "linear-oauth"),
                onServerRunning: { channel in
                    let url = "http://\(host):\(channel.localAddress?.port ?? 0)"
                    FileHandle.standardOutput.write(Data("linear-oauth listening on \(url)\n".utf8))
                    if emulatorRunning {
                        FileHandle.standardOutput.write(Data("open \(url)/oauth/authorize to install the app in an emulated workspace\n".utf8))
                    }
                },
                logger: logger)
            let group = ServiceGroup(configuration: .init(
                services: [app, TokenRefresher(manager: manager), TokenChangeListener(manager: manager)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            // A refresh cut off after Linear answered is recoverable only within Linear's grace period:
            // wait for the background ones however the group ends.
            do {
                try await group.run()
            } catch {
                await manager.finishBackgroundRefreshes()
                throw error
            }
            await manager.finishBackgroundRefreshes()
        }
    }
}

extension ServeCommand {
    /// A free TCP port on the host (bound, read, released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CommandFailure(description: "cannot open a socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw CommandFailure(description: "cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// `serve --emulator`: the emulator on a free port, a generated client, and development key files.
struct DevelopmentSetup {
    let emulator: LinearEmulator
    let environment: [String: String]

    static func start(host: String, port: Int, environment: [String: String], keys: KeyOptions, store: StoreOptions) async throws -> DevelopmentSetup {
        var result: [String: String] = [:]
        let directory: String
        switch try DatabaseURL(parsing: store.databaseURL ?? environment[DatabaseURL.variable]) {
        case .sqlite(let path): directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        case .postgres: directory = FileManager.default.currentDirectoryPath
        }
        func warn(_ text: String) { FileHandle.standardError.write(Data("linear-oauth: warning: \(text)\n".utf8)) }
        let noKeys = keys.encryptionKeys == nil && keys.encryptionKeysFile == nil
            && (environment[KeyRing.keysVariable] ?? "").isEmpty && (environment[KeyRing.keysFileVariable] ?? "").isEmpty
        if noKeys {
            let path = directory + "/linear-oauth.dev-keys"
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(
                    atPath: path, contents: Data((KeyRing.generateEntry(id: "dev") + "\n").utf8), attributes: [.posixPermissions: 0o600])
            }
            warn("using the DEVELOPMENT encryption key file \(path): never use it for real tokens")
            result[KeyRing.keysFileVariable] = path
        }
        if (environment["LINEAR_OAUTH_API_KEYS"] ?? "").isEmpty {
            let path = directory + "/linear-oauth.dev-api-key"
            if !FileManager.default.fileExists(atPath: path) {
                FileManager.default.createFile(
                    atPath: path, contents: Data(PKCE().verifier.utf8), attributes: [.posixPermissions: 0o600])
            }
            result["LINEAR_OAUTH_API_KEYS"] = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            warn("the /v1 API key is in the DEVELOPMENT file \(path)")
        }
        let webhookSecret = environment["LINEAR_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : $0 } ?? PKCE().verifier
        let client = EmulatedClient(
            id: "dev-client-\(UUID().uuidString.prefix(8).lowercased())", secret: PKCE().verifier, name: "Your app (development)",
            redirectURIs: ["http://\(host):\(port)/oauth/callback"],
            webhookURL: "http://\(host):\(port)/webhooks/linear", webhookSecret: webhookSecret)
        let emulator = LinearEmulator(clients: [client])
        let url = try await emulator.start()
        FileHandle.standardOutput.write(Data("Linear emulator listening on \(url) (not the real Linear)\n".utf8))
        result["LINEAR_CLIENT_ID"] = client.id
        result["LINEAR_CLIENT_SECRET"] = client.secret
        result["LINEAR_API_URL"] = url
        result["LINEAR_AUTHORIZE_URL"] = url + "/oauth/authorize"
        result["LINEAR_REDIRECT_URI"] = "http://\(host):\(port)/oauth/callback"
        result["LINEAR_WEBHOOK_SECRET"] = webhookSecret
        return DevelopmentSetup(emulator: emulator, environment: result)
    }
}
