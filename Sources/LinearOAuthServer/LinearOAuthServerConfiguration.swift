import LinearOAuth
import Prometheus

/// The HTTP service's settings.
public struct LinearOAuthServerConfiguration: Sendable {
    /// Keys that may call the `/v1` token API (`Authorization: Bearer KEY`).
    public var apiKeys: [Secret]
    /// The secret Linear signs webhooks with (`linear-signature`).
    public var webhookSecret: Secret
    /// Webhooks signed further than this from now are refused (replays). Not uninstalls: see
    /// ``uninstallWebhookTolerance``.
    public var webhookTolerance: Duration = .seconds(60)
    /// An uninstall (`OAuthApp` `revoked`) signed up to this long ago is still acted on: Linear retries
    /// a failed delivery about a minute, an hour and six hours later with the same body, and an
    /// uninstall must not be lost; one signed before the current install deletes nothing.
    public var uninstallWebhookTolerance: Duration = .seconds(86_400)
    /// Larger webhook bodies are refused unread.
    public var maxWebhookBodySize = 64 * 1024
    /// Where a workspace admin installs the app again; named in `reauthorization_required` answers.
    public var installURL: String?
    /// The scopes an install asks for.
    public var scopes: [String] = ["read", "write"]
    /// Whether the authorize URL carries `prompt=consent`: Linear then always shows its consent
    /// screen, where someone who belongs to several workspaces chooses the one to install into.
    public var promptConsent = true
    /// How long an install's `state` stays usable.
    public var stateLifetime: Duration = .seconds(600)
    /// Where the callback sends the admin after a successful install (else a page naming the workspace).
    public var successURL: String?
    /// The Prometheus registry `GET /metrics` shows (give the token manager a `PrometheusMetricsFactory`
    /// on the same registry); `nil`: no `/metrics` route.
    public var prometheus: PrometheusCollectorRegistry?

    /// A per-client limit on the anonymous install flow (`/oauth/authorize`, `/oauth/callback`).
    public struct RateLimit: Sendable, Equatable {
        /// Requests at once.
        public var burst: Int
        /// Requests a minute after that.
        public var perMinute: Int

        public init(burst: Int, perMinute: Int) {
            self.burst = burst
            self.perMinute = perMinute
        }
    }

    /// Install-flow requests per client (its address); `nil`: no limit. Past it: 429 with `Retry-After`.
    public var installRateLimit: RateLimit? = RateLimit(burst: 10, perMinute: 30)
    /// Take the client's address from `X-Forwarded-For` (its last entry) instead of the connection:
    /// only behind a reverse proxy that sets it, or any client could claim any address.
    public var trustProxy = false
    /// How long `/metrics` reuses its count of installations by status (one aggregate query).
    public var installationCountsMaxAge: Duration = .seconds(5)
    /// At most this many installs in progress (unexpired states); past it `/oauth/authorize`
    /// answers 503 with `Retry-After`, so an anonymous flood cannot grow the table without bound.
    public var maxPendingInstalls = 10_000

    /// Where people reach this service (`https://oauth.example.com`): the install pages' next steps
    /// name it, and the console's cookies are `Secure` when it is https. `nil`: taken from the redirect URI.
    public var publicURL: String?
    /// ``publicURL``, else the redirect URI without `/oauth/callback`.
    public func publicURL(redirectURI: String?) -> String? {
        if let publicURL { return publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL }
        guard let redirectURI, redirectURI.hasSuffix("/oauth/callback") else { return nil }
        return String(redirectURI.dropLast("/oauth/callback".count))
    }

    /// How long a console sign-in lasts.
    public var consoleSessionLifetime: Duration = .seconds(12 * 3600)
    /// What the console shows under "recent events"; give ``ConsoleEventLog/record(_:at:)`` to the token
    /// manager's ``TokenManager/Configuration/onEvent`` so refreshes appear too.
    public var events = ConsoleEventLog()

    /// The console's getting-started panel, in development (`serve --emulator`).
    public struct GettingStarted: Sendable, Equatable {
        /// The development folder.
        public var directory: String
        /// The file holding the development API key.
        public var apiKeyFile: String

        public init(directory: String, apiKeyFile: String) {
            self.directory = directory
            self.apiKeyFile = apiKeyFile
        }
    }

    /// Shown on the console's overview when set.
    public var gettingStarted: GettingStarted?

    public init(apiKeys: [Secret], webhookSecret: Secret, installURL: String? = nil) {
        self.apiKeys = apiKeys
        self.webhookSecret = webhookSecret
        self.installURL = installURL
    }
}

/// How the service's HTTP connections are kept in check (slow and idle clients, floods).
public struct LinearOAuthConnectionLimits: Sendable, Equatable {
    /// A connection that sends nothing for this long is closed (also between keep-alive requests).
    public var idleTimeout: Duration = .seconds(60)
    /// A request head that has begun must be complete within this long (a slow-loris is cut off).
    public var headerTimeout: Duration = .seconds(10)
    /// At most this many connections open at once; more are closed as soon as they are accepted.
    public var maxConnections = 1_000

    public init() {}
}
