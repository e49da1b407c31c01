import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// Linear's OAuth endpoints and GraphQL API, as ../shared/LINEAR-OAUTH.md describes them: form-encoded
/// token calls, every failure sorted into ``LinearOAuthError``'s three kinds, a time-out on every call.
public struct LinearClient: Sendable {
    public let configuration: LinearClientConfiguration
    private let httpClient: HTTPClient

    /// - Parameter httpClient: The HTTP client to use (default: AsyncHTTPClient's shared one).
    public init(configuration: LinearClientConfiguration, httpClient: HTTPClient = .shared) {
        self.configuration = configuration
        self.httpClient = httpClient
    }

    static let userAgent = "linear-oauth/0.1 (+https://github.com/linear-oauth)"

    // MARK: - Authorization

    /// The URL of Linear's consent page for an install: `response_type=code`, comma-separated
    /// scopes, `actor`, `state`, a PKCE S256 challenge and, unless `promptConsent` is `false`,
    /// `prompt=consent` (Linear then always shows its consent screen, where someone who belongs to
    /// several workspaces chooses the one to install into; without it Linear installs into the
    /// workspace they are signed in to).
    public func authorizationURL(
        state: String, pkce: PKCE, scopes: [String] = ["read", "write"], actor: String = "app", promptConsent: Bool = true
    ) throws(LinearOAuthError) -> String {
        guard let redirectURI = configuration.redirectURI else {
            throw .configuration(.init(message: "LINEAR_REDIRECT_URI is not set"))
        }
        var fields = [
            ("client_id", configuration.clientID), ("redirect_uri", redirectURI), ("response_type", "code"),
            ("scope", scopes.joined(separator: ",")), ("state", state), ("actor", actor),
            ("code_challenge", pkce.challenge), ("code_challenge_method", "S256"),
        ]
        if promptConsent { fields.append(("prompt", "consent")) }
        let separator = configuration.authorizeURL.contains("?") ? "&" : "?"
        // Commas stay literal in the scope list, as Linear's docs write it (`scope=read,write`).
        return configuration.authorizeURL + separator
            + fields.map { "\(Self.formEncode($0.0))=\(Self.formEncode($0.1).replacingOccurrences(of: "%2C", with: ","))" }
            .joined(separator: "&")
    }

    @available(*, deprecated, renamed: "authorizationURL(state:pkce:scopes:actor:promptConsent:)", message: "prompt=consent is now sent by default")
    public func authorizationURL(
        state: String, pkce: PKCE, scopes: [String] = ["read", "write"], actor: String = "app", prompt: Bool
    ) throws(LinearOAuthError) -> String {
        try authorizationURL(state: state, pkce: pkce, scopes: scopes, actor: actor, promptConsent: prompt)
    }

    // MARK: - Token endpoint

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    public func exchangeCode(_ code: String, codeVerifier: String?) async throws(LinearOAuthError) -> LinearTokenResponse {
        guard let redirectURI = configuration.redirectURI else {
            throw .configuration(.init(message: "LINEAR_REDIRECT_URI is not set"))
        }
        var fields = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI)]
        if let codeVerifier { fields.append(("code_verifier", codeVerifier)) }
        return try await tokenCall(fields, secrets: [code] + (codeVerifier.map { [$0] } ?? []))
    }

    /// Exchanges a refresh token for a new access token and (Linear rotates them) a new refresh token.
    public func refresh(_ refreshToken: Secret) async throws(LinearOAuthError) -> LinearTokenResponse {
        try await tokenCall(
            [("grant_type", "refresh_token"), ("refresh_token", refreshToken.value)], secrets: [refreshToken.value])
    }

    /// The app's own token (`client_credentials`, 30 days, no refresh token). Asking for other scopes
    /// than before revokes the app tokens issued earlier.
    public func clientCredentials(scopes: [String] = ["read", "write"]) async throws(LinearOAuthError) -> LinearTokenResponse {
        try await tokenCall([("grant_type", "client_credentials"), ("scope", scopes.joined(separator: ","))], secrets: [])
    }

    private func tokenCall(_ fields: [(String, String)], secrets: [String]) async throws(LinearOAuthError) -> LinearTokenResponse {
        let (status, headers, body) = try await post(
            path: "/oauth/token", fields: fields, authenticateClient: true, secrets: secrets)
        guard status == 200 else {
            throw Self.classify(status: status, headers: headers, body: body, secrets: secrets + [configuration.clientSecret.value])
        }
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let accessToken = object["access_token"] as? String, !accessToken.isEmpty
        else {
            throw .transient(.init(message: "Linear's token answer could not be read", status: status))
        }
        let expiresIn = (object["expires_in"] as? NSNumber)?.intValue ?? Int(object["expires_in"] as? String ?? "") ?? 0
        return LinearTokenResponse(
            accessToken: Secret(accessToken),
            refreshToken: (object["refresh_token"] as? String).flatMap { $0.isEmpty ? nil : Secret($0) },
            expiresIn: expiresIn,
            expiresAt: Date().addingTimeInterval(TimeInterval(expiresIn)),
            scopes: Self.parseScopes(object["scope"]),
            tokenType: object["token_type"] as? String ?? "Bearer")
    }

    // MARK: - Revocation

    /// Revokes one token, as Linear documents it: `token` and `token_type_hint` only, no client
    /// authentication (an `Authorization` header is Linear's legacy way to revoke, and must not be
    /// combined with `token`). Revoking either token ends the whole grant. 400 and 401 are answers,
    /// not errors: the token was already dead or unknown.
    public func revoke(_ token: Secret, hint: LinearTokenTypeHint) async throws(LinearOAuthError) -> LinearRevocationResult {
        let (status, headers, body) = try await post(
            path: "/oauth/revoke", fields: [("token", token.value), ("token_type_hint", hint.rawValue)],
            authenticateClient: false, secrets: [token.value])
        switch status {
        case 200: return .revoked
        case 400:
            let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
            return .notRevoked(Self.scrub(object?["error_description"] as? String ?? "could not revoke", secrets: [token.value]))
        case 401: return .unauthenticated
        default: throw Self.classify(status: status, headers: headers, body: body, secrets: [token.value, configuration.clientSecret.value])
        }
    }

    // MARK: - GraphQL

    /// Runs a GraphQL query with an access token. Checks `errors` even on a 200.
    public func graphQL(
        _ query: String, variables: [String: any Sendable] = [:], accessToken: Secret
    ) async throws(LinearAPIError) -> LinearGraphQLResponse {
        var request = HTTPClientRequest(url: configuration.apiURL + "/graphql")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        request.headers.add(name: "Authorization", value: "Bearer \(accessToken.value)")
        let payload: [String: Any] = ["query": query, "variables": variables]
        guard let json = try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]) else {
            throw .graphQL(messages: ["variables are not JSON"], codes: [], status: 0)
        }
        request.body = .bytes(ByteBuffer(bytes: json))
        let status: Int, headers: HTTPHeaders, body: Data
        do {
            (status, headers, body) = try await send(request, secrets: [accessToken.value])
        } catch {
            throw .transport(error)
        }
        let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        let errors = (object?["errors"] as? [[String: Any]]) ?? []
        let extensions = errors.compactMap { $0["extensions"] as? [String: Any] }
        let codes = extensions.compactMap { $0["code"] as? String }
        let messages = errors.compactMap { $0["message"] as? String }.map { Self.scrub($0, secrets: [accessToken.value]) }
        let rateLimit = LinearRateLimit(headers: headers)
        // RATELIMITED has come with HTTP 400 (and `extensions.statusCode` 429), 429, and in one copy of
        // Linear's docs 200: the body decides, whatever the status. Linear's SDK also goes by
        // `extensions.type` "ratelimited", and by a bare 429.
        let rateLimited = codes.contains("RATELIMITED")
            || extensions.contains { ($0["type"] as? String)?.lowercased() == "ratelimited" } || status == 429
        if rateLimited {
            throw .rateLimited(resetAt: rateLimit.retryAt, message: messages.first ?? "rate limited (HTTP \(status))")
        }
        if status == 401 || codes.contains("AUTHENTICATION_ERROR") {
            throw .authenticationFailed(message: messages.first ?? "authentication required")
        }
        if status >= 500 {
            throw .transport(Self.classify(status: status, headers: headers, body: body, secrets: [accessToken.value]))
        }
        guard !errors.isEmpty || status != 200 || object?["data"] != nil else {
            throw .transport(.transient(.init(message: "Linear's GraphQL answer could not be read", status: status)))
        }
        guard errors.isEmpty, status == 200, let data = object?["data"],
            let dataJSON = try? JSONSerialization.data(withJSONObject: data)
        else {
            throw .graphQL(messages: messages.isEmpty ? ["HTTP \(status)"] : messages, codes: codes, status: status)
        }
        return LinearGraphQLResponse(data: dataJSON, rateLimit: rateLimit)
    }

    // MARK: - HTTP

    private func post(
        path: String, fields: [(String, String)], authenticateClient: Bool, secrets: [String]
    ) async throws(LinearOAuthError) -> (Int, HTTPHeaders, Data) {
        var request = HTTPClientRequest(url: configuration.apiURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        var fields = fields
        if authenticateClient {
            switch configuration.clientAuthentication {
            case .formFields:
                fields += [("client_id", configuration.clientID), ("client_secret", configuration.clientSecret.value)]
            case .basic:
                // RFC 6749 2.3.1: form-encode id and secret before joining them.
                let credentials = Self.formEncode(configuration.clientID) + ":" + Self.formEncode(configuration.clientSecret.value)
                request.headers.add(name: "Authorization", value: "Basic " + Data(credentials.utf8).base64EncodedString())
            }
        }
        request.body = .bytes(ByteBuffer(string: Self.formEncode(fields)))
        return try await send(request, secrets: secrets + [configuration.clientSecret.value])
    }

    private func send(_ request: HTTPClientRequest, secrets: [String]) async throws(LinearOAuthError) -> (Int, HTTPHeaders, Data) {
        let timeout = TimeAmount.nanoseconds(
            configuration.timeout.components.seconds * 1_000_000_000 + configuration.timeout.components.attoseconds / 1_000_000_000)
        do {
            let response = try await httpClient.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), response.headers, Data(body.readableBytesView))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            let milliseconds = configuration.timeout.components.seconds * 1000 + configuration.timeout.components.attoseconds / 1_000_000_000_000_000
            throw .transient(.init(message: "Linear did not answer within \(Double(milliseconds) / 1000) s"))
        } catch {
            throw .transient(.init(message: "could not reach Linear: \(Self.scrub(String(describing: error), secrets: secrets))"))
        }
    }

    /// Sorts a failed token-endpoint answer into the three kinds.
    static func classify(status: Int, headers: HTTPHeaders, body: Data, secrets: [String]) -> LinearOAuthError {
        let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        let code = object?["error"] as? String
        let description = Self.scrub((object?["error_description"] as? String) ?? code ?? "HTTP \(status)", secrets: secrets)
        let retryAfter = headers.first(name: "Retry-After").flatMap { Self.parseRetryAfter($0) }
        if status == 429 || status >= 500 {
            return .transient(.init(code: code, message: description, status: status, retryAfter: retryAfter))
        }
        switch code {
        case "invalid_grant":
            return .reauthorizationRequired(.init(code: code, message: description, status: status))
        case "invalid_request" where description.lowercased().contains("refresh token")
            && ["expired", "revoked", "invalid"].contains(where: description.lowercased().contains):
            // Reported by Linear users for dead refresh tokens: {"error":"invalid_request","error_description":"Refresh token expired"}.
            return .reauthorizationRequired(.init(code: code, message: description, status: status))
        case .some:
            return .configuration(.init(code: code, message: description, status: status))
        case nil where status == 401 || status == 403 || status == 404 || status == 405:
            return .configuration(.init(message: "Linear answered HTTP \(status): check LINEAR_API_URL and the client credentials", status: status))
        case nil:
            return .transient(.init(message: "Linear's answer could not be read (HTTP \(status))", status: status, retryAfter: retryAfter))
        }
    }

    /// `Retry-After` as seconds or an HTTP date.
    static func parseRetryAfter(_ value: String, now: Date = Date()) -> Duration? {
        if let seconds = Int(value.trimmingCharacters(in: .whitespaces)) { return .seconds(max(0, seconds)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).map { .seconds(max(0, Int($0.timeIntervalSince(now).rounded(.up)))) }
    }

    /// Scopes as Linear sends them: a space-separated string, a comma-separated one, or (apps
    /// created before 2023-12-01) a JSON array.
    package static func parseScopes(_ value: Any?) -> [String] {
        if let array = value as? [String] { return array }
        guard let text = value as? String else { return [] }
        return text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
    }

    /// Removes anything that is, or looks like, a token from text that came from elsewhere.
    static func scrub(_ text: String, secrets: [String]) -> String {
        var text = text
        for secret in secrets where !secret.isEmpty { text = text.replacingOccurrences(of: secret, with: "<redacted>") }
        return text.replacingOccurrences(of: #"lin_[A-Za-z]+_[A-Za-z0-9]+"#, with: "<redacted>", options: .regularExpression)
    }

    /// `application/x-www-form-urlencoded`: unreserved characters kept, everything else percent-encoded.
    static func formEncode(_ fields: [(String, String)]) -> String {
        fields.map { "\(formEncode($0.0))=\(formEncode($0.1))" }.joined(separator: "&")
    }

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet()
        allowed.insert(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
