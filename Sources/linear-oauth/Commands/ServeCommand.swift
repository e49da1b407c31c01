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
            Routes: GET / (the operator console: sign in with an API key), GET /oauth/authorize (start an install),
            GET /oauth/callback, GET /healthz, GET /readyz, GET /metrics,
            POST /webhooks/linear, and under /v1 (Authorization: Bearer API_KEY):
            GET /installations, GET /installations/{org}, GET /installations/{org}/access-token,
            POST /installations/{org}/refresh, POST /installations/{org}/reinstate, DELETE /installations/{org},
            POST /breaker/reset. Wherever an organization id is taken, the workspace's URL key is too.
            Logs: --log-level / LINEAR_OAUTH_LOG_LEVEL (default: info), --log-format text|json / LINEAR_OAUTH_LOG_FORMAT.
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

    @OptionGroup var secrets: ServiceSecretOptions

    @Option(name: .customLong("install-url"), help: ArgumentHelp(
        "Where an admin installs the app again, named in reauthorization_required answers. (env: LINEAR_OAUTH_INSTALL_URL)", valueName: "url"))
    var installURL: String?

    @Option(name: .customLong("scopes"), help: ArgumentHelp(
        "The scopes an install asks for, comma-separated. (env: LINEAR_OAUTH_SCOPES; default: read,write)", valueName: "scopes"))
    var scopes: String?

    @Option(name: .customLong("public-url"), help: ArgumentHelp(
        "Where people reach this service (https://oauth.example.com): named in the install pages' next steps; console cookies are Secure when it is https. (env: LINEAR_OAUTH_PUBLIC_URL; default: from the redirect URI)",
        valueName: "url"))
    var publicURL: String?

    @Option(name: .customLong("success-url"), help: ArgumentHelp(
        "Where to send the admin after an install (else a page naming the workspace). (env: LINEAR_OAUTH_SUCCESS_URL)", valueName: "url"))
    var successURL: String?

    @Option(name: .customLong("deauthorization-threshold"), parsing: .unconditional, help: ArgumentHelp(
        "At most this many installations are marked reauthorization_required within the window; further invalid_grant answers are a suspected configuration fault (tokens kept, /readyz degraded). 0: off. (env: LINEAR_OAUTH_DEAUTHORIZATION_THRESHOLD; default: 3)",
        valueName: "count"))
    var deauthorizationThreshold: Int?

    @Option(name: .customLong("deauthorization-window"), parsing: .unconditional, help: ArgumentHelp(
        "The de-authorization breaker's window in seconds. (env: LINEAR_OAUTH_DEAUTHORIZATION_WINDOW; default: 600)", valueName: "seconds"))
    var deauthorizationWindow: Double?

    @Option(name: .customLong("uninstall-webhook-tolerance"), parsing: .unconditional, help: ArgumentHelp(
        "Seconds an uninstall webhook may be late (Linear retries failed deliveries for hours); other webhooks must be within 60 s. (env: LINEAR_OAUTH_UNINSTALL_WEBHOOK_TOLERANCE; default: 86400)",
        valueName: "seconds"))
    var uninstallWebhookTolerance: Double?

    @Option(name: .customLong("install-rate-limit"), parsing: .unconditional, help: ArgumentHelp(
        "Install-flow requests a minute per client address (/oauth/authorize, /oauth/callback), in bursts of up to a third of it; past it 429. 0: no limit. (env: LINEAR_OAUTH_INSTALL_RATE_LIMIT; default: 30)",
        valueName: "requests"))
    var installRateLimit: Int?

    @Option(name: .customLong("token-cache-size"), parsing: .unconditional, help: ArgumentHelp(
        "Access tokens kept in memory at most (about 620 bytes each); past it the least recently used goes, and is read again from the database when asked for. (env: LINEAR_OAUTH_TOKEN_CACHE_SIZE; default: 100000)",
        valueName: "count"))
    var tokenCacheSize: Int?

    @Flag(inversion: .prefixedNo, help: ArgumentHelp(
        "Send prompt=consent on the authorize URL, so that Linear always shows its consent screen and someone in several workspaces chooses one; --no-prompt-consent installs into the workspace they are signed in to. (env: LINEAR_OAUTH_PROMPT_CONSENT; default: on)"))
    var promptConsent: Bool?

    @Flag(name: .customLong("trust-proxy"), help: ArgumentHelp(
        "The service is behind a reverse proxy: the client's address is the last X-Forwarded-For entry. Without a proxy that sets it, clients could claim any address. (env: LINEAR_OAUTH_TRUST_PROXY)"))
    var trustProxy = false

    @Option(name: .customLong("max-pending-installs"), parsing: .unconditional, help: ArgumentHelp(
        "Installs in progress at most; past it /oauth/authorize answers 503. (env: LINEAR_OAUTH_MAX_PENDING_INSTALLS; default: 10000)",
        valueName: "count"))
    var maxPendingInstalls: Int?

    @Option(name: .customLong("idle-timeout"), parsing: .unconditional, help: ArgumentHelp(
        "Seconds a connection may stay silent (also between keep-alive requests) before it is closed. (env: LINEAR_OAUTH_IDLE_TIMEOUT; default: 60)",
        valueName: "seconds"))
    var idleTimeout: Double?

    @Option(name: .customLong("header-timeout"), parsing: .unconditional, help: ArgumentHelp(
        "Seconds a request head that has begun may take to arrive whole; a slower client is disconnected. (env: LINEAR_OAUTH_HEADER_TIMEOUT; default: 10)",
        valueName: "seconds"))
    var headerTimeout: Double?

    @Option(name: .customLong("max-connections"), parsing: .unconditional, help: ArgumentHelp(
        "Open connections at most; more are closed at once. (env: LINEAR_OAUTH_MAX_CONNECTIONS; default: 1000, less when the process may open fewer files)",
        valueName: "count"))
    var maxConnections: Int?

    @Flag(help: """
        Try it without a Linear account: also start the Linear emulator and point the service at it. Everything of \
        this development world lives in ./.linear-oauth-dev/ (database, encryption key, API key, the emulator's state, \
        so an install survives a restart); DATABASE_URL and the encryption keys of the environment are not used.
        """)
    var emulator = false

    func run() async throws {
        var settings = try await self.settings.settings()
        // The service's own settings are read and checked first, before anything starts and before the
        // required secrets: a bad value is named even when something else is missing too.
        let defaults = TokenManager.Configuration()
        let cacheCapacity = try settings.count("LINEAR_OAUTH_TOKEN_CACHE_SIZE", flag: tokenCacheSize, default: defaults.cacheCapacity)
        guard cacheCapacity > 0 else { throw ValidationError("LINEAR_OAUTH_TOKEN_CACHE_SIZE must be at least 1") }
        let deauthorizationThreshold = try settings.count(
            "LINEAR_OAUTH_DEAUTHORIZATION_THRESHOLD", flag: deauthorizationThreshold,
            default: defaults.deauthorizationThreshold)
        let deauthorizationWindow = try settings.seconds(
            "LINEAR_OAUTH_DEAUTHORIZATION_WINDOW", flag: deauthorizationWindow, default: 600, name: "the de-authorization window")
        let uninstallTolerance = try settings.seconds(
            "LINEAR_OAUTH_UNINSTALL_WEBHOOK_TOLERANCE", flag: uninstallWebhookTolerance, default: 86_400, name: "the uninstall webhook tolerance")
        let perMinute = try settings.count("LINEAR_OAUTH_INSTALL_RATE_LIMIT", flag: installRateLimit, default: 30)
        let trustsProxy = try settings.isOn("LINEAR_OAUTH_TRUST_PROXY", flag: trustProxy)
        let maxPending = try settings.count("LINEAR_OAUTH_MAX_PENDING_INSTALLS", flag: maxPendingInstalls, default: 10_000)
        var limits = LinearOAuthConnectionLimits()
        limits.idleTimeout = try settings.seconds("LINEAR_OAUTH_IDLE_TIMEOUT", flag: idleTimeout, default: 60, name: "the idle time-out")
        limits.headerTimeout = try settings.seconds("LINEAR_OAUTH_HEADER_TIMEOUT", flag: headerTimeout, default: 10, name: "the header time-out")
        limits.maxConnections = try settings.count(
            "LINEAR_OAUTH_MAX_CONNECTIONS", flag: maxConnections, default: min(1_000, Self.openFileLimit() - 128))
        guard limits.maxConnections > 0 else { throw ValidationError("LINEAR_OAUTH_MAX_CONNECTIONS must be at least 1") }
        var listenPort = self.port
        try await checkCanListen(host: host, port: listenPort)
        var emulatorInstance: LinearEmulator?
        if emulator {
            // The redirect URI names the port: with --emulator it is chosen before listening.
            if listenPort == 0 { listenPort = try freePort() }
            let setup = try await DevelopmentSetup.start(host: host, port: listenPort, settings: settings, keys: keys, store: store)
            settings.environment.merge(setup.environment) { $1 }
            emulatorInstance = setup.emulator
        }
        defer { if let emulatorInstance { Task { await emulatorInstance.stop() } } }
        guard let keys = settings.list("LINEAR_OAUTH_API_KEYS", flag: secrets.apiKeys), !keys.isEmpty else {
            throw ValidationError("LINEAR_OAUTH_API_KEYS is not set (the keys that may call the token API)")
        }
        guard let webhookSecret = settings.string("LINEAR_WEBHOOK_SECRET", flag: secrets.webhookSecret) else {
            throw ValidationError("LINEAR_WEBHOOK_SECRET is not set (the secret Linear signs webhooks with)")
        }
        var clientConfiguration = try linear.clientConfiguration(settings)
        if clientConfiguration.redirectURI == nil, listenPort != 0 {
            clientConfiguration.redirectURI = "http://\(host):\(listenPort)/oauth/callback"
        }
        let client = LinearClient(configuration: clientConfiguration)
        var managerConfiguration = try linear.managerConfiguration(settings)
        let registry = PrometheusCollectorRegistry()
        let events = ConsoleEventLog()
        managerConfiguration.onEvent = { events.record($0) }
        managerConfiguration.metricsFactory = PrometheusMetricsFactory(registry: registry)
        // A long-running process: callers get a still-good token at once while it is renewed.
        managerConfiguration.refreshAhead = true
        // Development: a grant whose client was never recorded is not the emulator's; never refresh it.
        managerConfiguration.adoptsUnboundGrants = !emulator
        managerConfiguration.cacheCapacity = cacheCapacity
        managerConfiguration.deauthorizationThreshold = deauthorizationThreshold
        managerConfiguration.deauthorizationWindow = deauthorizationWindow
        var configuration = LinearOAuthServerConfiguration(apiKeys: keys.map(Secret.init), webhookSecret: Secret(webhookSecret))
        configuration.uninstallWebhookTolerance = uninstallTolerance
        configuration.installRateLimit = perMinute == 0 ? nil : .init(burst: max(1, perMinute / 3), perMinute: perMinute)
        configuration.trustProxy = trustsProxy
        configuration.maxPendingInstalls = maxPending
        configuration.installURL = settings.string("LINEAR_OAUTH_INSTALL_URL", flag: installURL)
            ?? clientConfiguration.redirectURI.map { $0.replacingOccurrences(of: "/oauth/callback", with: "/oauth/authorize") }
        configuration.successURL = settings.string("LINEAR_OAUTH_SUCCESS_URL", flag: successURL)
        configuration.events = events
        configuration.publicURL = settings.string("LINEAR_OAUTH_PUBLIC_URL", flag: publicURL)
        if emulator {
            configuration.gettingStarted = .init(
                directory: DevelopmentSetup.directoryName + "/", apiKeyFile: DevelopmentSetup.directoryName + "/api-key")
        }
        configuration.prometheus = registry
        if let scopes = settings.list("LINEAR_OAUTH_SCOPES", flag: scopes) {
            configuration.scopes = scopes
            managerConfiguration.installScopes = scopes
        }
        configuration.promptConsent = try settings.isOn("LINEAR_OAUTH_PROMPT_CONSENT", flag: promptConsent, default: true)
        let logger = Logger(label: "linear-oauth.serve")
        let keyOptions = self.keys
        let port = listenPort
        let emulatorRunning = emulatorInstance != nil
        let databaseDescription = (try? store.url(settings).description) ?? "?"
        let keySource = settings.string(KeyRing.keysFileVariable, flag: keyOptions.encryptionKeysFile).map { "file \($0)" }
            ?? "\(KeyRing.keysVariable)"
        try await store.withVault(keyOptions, settings, keepConnections: true) { vault in
            let manager = TokenManager(vault: vault, linear: client, configuration: managerConfiguration)
            let host = self.host
            let app = Application(
                router: LinearOAuthServer(manager: manager, configuration: configuration).router(),
                server: LinearOAuthServer.httpServer(limits),
                configuration: .init(address: .hostname(host, port: port), serverName: "linear-oauth"),
                onServerRunning: { channel in
                    let url = "http://\(host):\(channel.localAddress?.port ?? 0)"
                    var banner = "linear-oauth listening on \(url)\n"
                    banner += "  console   \(url)/ (sign in with an API key)\n"
                    banner += "  API       \(url)/v1 (Authorization: Bearer API_KEY; \(url)/openapi.json)\n"
                    banner += "  metrics   \(url)/metrics\n"
                    banner += "  database  \(databaseDescription)\n"
                    banner += "  keys      \(keySource) (\(vault.keyRing.keyIDs.count) key\(vault.keyRing.keyIDs.count == 1 ? "" : "s"), sealing under \"\(vault.keyRing.activeKeyID)\")\n"
                    if emulatorRunning {
                        banner += "open \(url)/oauth/authorize to install the app in an emulated workspace, or \(url)/ for the console's getting started\n"
                    }
                    FileHandle.standardOutput.write(Data(banner.utf8))
                },
                logger: logger)
            let group = ServiceGroup(configuration: .init(
                services: [
                    app, TokenRefresher(manager: manager), TokenChangeListener(manager: manager),
                    AuthorizationStatePurger(store: manager.vault.store),
                ],
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
    /// How many files the process may open (its soft limit).
    static func openFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(Int32.max) else { return 1 << 20 }
        return Int(clamping: limit.rlim_cur)
    }
}
