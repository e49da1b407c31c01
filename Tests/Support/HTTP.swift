import AsyncHTTPClient
import Foundation
import LinearEmulator
import LinearOAuth
import NIOCore
import NIOHTTP1

/// A plain HTTP answer, read whole.
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    public var text: String { String(decoding: body, as: UTF8.self) }
    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Raw HTTP calls to the emulator, without LinearClient: the emulator is tested on its own.
public enum RawHTTP {
    /// A client that does not follow redirects (the tests read the `Location`).
    public static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))

    public static func request(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: Data? = nil
    ) async throws -> HTTPAnswer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 1 << 20)
        var fields: [String: String] = [:]
        for header in response.headers { fields[header.name.lowercased()] = header.value }
        let answer = HTTPAnswer(status: Int(response.status.code), headers: fields, body: Data(collected.readableBytesView))
        // For the secrets check: every answer except those whose job is to hand out a token.
        let path = URL(string: url)?.path ?? url
        let handsOutToken = answer.status == 200
            && (path.hasSuffix("/access-token") || path.hasSuffix("/refresh") || path == "/oauth/token" || path == "/_emulator/grants")
            // Linear's authorization answer: the code travels in the redirect, by protocol.
            || (300..<400).contains(answer.status) && path == "/oauth/authorize" && (fields["location"] ?? "").contains("code=")
        if !handsOutToken {
            SecretAudit.capture("http", "\(method.rawValue) \(path) -> \(answer.status) \(fields.sorted { $0.key < $1.key }) \(answer.text)")
        }
        return answer
    }

    public static func form(_ url: String, _ fields: [String: String], headers: [(String, String)] = []) async throws -> HTTPAnswer {
        let body = fields.sorted { $0.key < $1.key }.map { "\(encode($0.key))=\(encode($0.value))" }.joined(separator: "&")
        return try await request(
            .POST, url, headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers, body: Data(body.utf8))
    }

    public static func json(_ url: String, _ object: [String: Any], headers: [(String, String)] = []) async throws -> HTTPAnswer {
        try await request(
            .POST, url, headers: [("Content-Type", "application/json")] + headers,
            body: try JSONSerialization.data(withJSONObject: object))
    }

    public static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// The query parameters of a `Location`.
    public static func query(_ location: String?) -> [String: String] {
        var result: [String: String] = [:]
        for item in URLComponents(string: location ?? "")?.queryItems ?? [] { result[item.name] = item.value ?? "" }
        return result
    }
}

/// Runs `body` with a started emulator, stopped afterwards.
public func withEmulator<Result>(
    organizations: [EmulatedOrganization] = LinearEmulator.defaultOrganizations,
    clients: [EmulatedClient] = [LinearEmulator.defaultClient],
    settings: EmulatorSettings = EmulatorSettings(),
    _ body: (LinearEmulator, String) async throws -> Result
) async throws -> Result {
    SecretAudit.start()
    let emulator = LinearEmulator(organizations: organizations, clients: clients, settings: settings)
    let url = try await emulator.start()
    do {
        let result = try await body(emulator, url)
        await emulator.stop()
        return result
    } catch {
        await emulator.stop()
        throw error
    }
}

/// A LinearClient for the emulator's default application.
public func emulatorClient(_ baseURL: String, secret: String = LinearEmulator.defaultClient.secret, timeout: Duration = .seconds(60),
                    authentication: LinearClientConfiguration.ClientAuthentication = .formFields) -> LinearClient {
    LinearClient(configuration: LinearClientConfiguration(
        clientID: LinearEmulator.defaultClient.id, clientSecret: Secret(secret),
        redirectURI: LinearEmulator.defaultClient.redirectURIs[0], apiURL: baseURL,
        authorizeURL: baseURL + "/oauth/authorize", timeout: timeout, clientAuthentication: authentication))
}


/// A token manager for tests: a quick first back-off (20 ms), otherwise the defaults, then `configure`.
public func testManager(
    vault: TokenVault, linear: LinearClient, _ configure: (inout TokenManager.Configuration) -> Void = { _ in }
) -> TokenManager {
    var configuration = TokenManager.Configuration()
    configuration.initialBackoff = .milliseconds(20)
    configure(&configuration)
    return TokenManager(vault: vault, linear: linear, configuration: configuration)
}

/// Installs organizations (workspaces the emulator knows) with tokens the emulator mints, as an
/// install would, stored as expiring `expiresIn` seconds after `now`.
@discardableResult
public func installMinted(
    _ organizations: [String], emulator: LinearEmulator, vault: TokenVault, expiresIn: TimeInterval, now: Date = Date()
) async throws -> [String: EmulatedTokenResponse] {
    var grants: [String: EmulatedTokenResponse] = [:]
    var installations: [Installation] = []
    for organization in organizations {
        let grant = try await emulator.mintGrant(organizationID: organization)
        grants[organization] = grant
        installations.append(Installation(
            organizationID: organization, appUserID: "app-user-\(organization)", accessToken: Secret(grant.accessToken),
            refreshToken: Secret(grant.refreshToken!), expiresAt: now.addingTimeInterval(expiresIn), scopes: ["read", "write"]))
    }
    try await vault.save(installations)
    return grants
}
