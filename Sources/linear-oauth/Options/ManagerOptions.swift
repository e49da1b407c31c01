import ArgumentParser
import LinearOAuth

/// Everything a command that calls Linear for one organization needs.
struct ManagerOptions: ParsableArguments {
    @OptionGroup var store: StoreOptions
    @OptionGroup var keys: KeyOptions
    @OptionGroup var linear: LinearOptions

    @Argument(help: ArgumentHelp(OrganizationReference.help))
    var organization: String

    /// Opens the store behind a token manager (keys and Linear settings are checked first) and hands
    /// `body` the organization id the argument names (an id, or a URL key).
    func withManager<Result>(_ body: (TokenManager, String) async throws -> Result) async throws -> Result {
        try await withTokenManager(store: store, keys: keys, linear: linear) { manager in
            try await body(manager, try await OrganizationReference.resolve(organization, in: manager.vault.store))
        }
    }
}

/// Opens the store behind a token manager for one command: keys and Linear settings are checked
/// before the store is opened, and the HTTP client gives up on a refused connection at once.
func withTokenManager<Result>(
    store: StoreOptions, keys: KeyOptions, linear: LinearOptions, _ body: (TokenManager) async throws -> Result
) async throws -> Result {
    let settings = CommandSettings.current(databaseURLFlag: store.databaseURL)
    // Every missing setting at once, not one per attempt.
    var missing: [String] = []
    if settings.string("LINEAR_CLIENT_ID", flag: linear.clientID) == nil { missing.append("LINEAR_CLIENT_ID (--client-id)") }
    if settings.string("LINEAR_CLIENT_SECRET", flag: linear.clientSecret) == nil { missing.append("LINEAR_CLIENT_SECRET (--client-secret)") }
    if keys.isUnset(settings) { missing.append("\(KeyRing.keysVariable) or \(KeyRing.keysFileVariable) (--encryption-keys, --encryption-keys-file)") }
    if !missing.isEmpty {
        throw CommandFailure(
            description: "not set: " + missing.joined(separator: "; ") + CommandSettings.developmentHint(), status: ExitStatus.usage)
    }
    let clientConfiguration = try linear.clientConfiguration(settings)
    let configuration = try linear.managerConfiguration(settings)
    return try await store.withVault(keys, settings) { vault in
        try await LinearOptions.withHTTPClient { http in
            let linear = LinearClient(configuration: clientConfiguration, httpClient: http)
            return try await body(TokenManager(vault: vault, linear: linear, configuration: configuration))
        }
    }
}
