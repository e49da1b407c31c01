import LinearOAuth
import Prometheus

/// The HTTP service's settings.
public struct LinearOAuthServerConfiguration: Sendable {
    /// Keys that may call the `/v1` token API (`Authorization: Bearer KEY`).
    public var apiKeys: [Secret]
    /// The secret Linear signs webhooks with (`linear-signature`).
    public var webhookSecret: Secret
    /// Webhooks whose `webhookTimestamp` is further than this from now are refused (replays).
    public var webhookTolerance: Duration = .seconds(60)
    /// Larger webhook bodies are refused unread.
    public var maxWebhookBodySize = 64 * 1024
    /// Where a workspace admin installs the app again; named in `reauthorization_required` answers.
    public var installURL: String?
    /// The scopes an install asks for.
    public var scopes: [String] = ["read", "write"]
    /// How long an install's `state` stays usable.
    public var stateLifetime: Duration = .seconds(600)
    /// Where the callback sends the admin after a successful install (else a page naming the workspace).
    public var successURL: String?
    /// The Prometheus registry `GET /metrics` shows (give the token manager a `PrometheusMetricsFactory`
    /// on the same registry); `nil`: no `/metrics` route.
    public var prometheus: PrometheusCollectorRegistry?

    public init(apiKeys: [Secret], webhookSecret: Secret, installURL: String? = nil) {
        self.apiKeys = apiKeys
        self.webhookSecret = webhookSecret
        self.installURL = installURL
    }
}
