import ArgumentParser

/// The service's own secrets: who may call `/v1` and sign in to the console, and what Linear signs
/// webhooks with (`serve`, and `doctor`, which checks them).
struct ServiceSecretOptions: ParsableArguments {
    @Option(name: .customLong("api-keys"), help: ArgumentHelp(
        "Comma-separated keys that may call /v1 (Authorization: Bearer KEY) and sign in to the console. (env: LINEAR_OAUTH_API_KEYS; required by serve)",
        valueName: "keys"))
    var apiKeys: String?

    @Option(name: .customLong("webhook-secret"), help: ArgumentHelp(
        "The secret Linear signs webhooks with. (env: LINEAR_WEBHOOK_SECRET; required by serve)", valueName: "secret"))
    var webhookSecret: String?

    func validate() throws {
        if apiKeys != nil { Settings.warnSecretFlag("--api-keys", "LINEAR_OAUTH_API_KEYS") }
        if webhookSecret != nil { Settings.warnSecretFlag("--webhook-secret", "LINEAR_WEBHOOK_SECRET") }
    }
}
