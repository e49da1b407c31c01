import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LinearOAuth
import Logging
import Metrics
import NIOCore
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

/// The routes of `linear-oauth serve`: the token API for apps in any language, Linear's webhooks,
/// and health checks.
public struct LinearOAuthServer: Sendable {
    public let manager: TokenManager
    public let configuration: LinearOAuthServerConfiguration
    let logger: Logger

    let metrics: any MetricsFactory

    public init(manager: TokenManager, configuration: LinearOAuthServerConfiguration, logger: Logger = Logger(label: "linear-oauth.server")) {
        self.manager = manager
        self.configuration = configuration
        self.logger = logger
        self.metrics = configuration.prometheus.map { PrometheusMetricsFactory(registry: $0) } ?? MetricsSystem.factory
    }

    /// The router with every route.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestMetricsMiddleware(factory: metrics))
        router.add(middleware: ErrorAnswerMiddleware(logger: logger))
        if let registry = configuration.prometheus {
            router.get("/metrics") { _, _ in
                // Installations by status, counted at scrape time; skipped rather than holding the scrape
                // when the database is slow or down.
                let vault = manager.vault
                if let installations = await Self.within(.seconds(1), { try await vault.list() }) {
                    for status in InstallationStatus.allCases {
                        Gauge(label: "linear_oauth_installations", dimensions: [("status", status.rawValue)], factory: metrics)
                            .record(installations.filter { $0.status == status }.count)
                    }
                }
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
            }
        }
        router.get("/healthz") { _, _ in Self.json(.ok, ["status": "ok"]) }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        router.get("/readyz") { _, _ in
            do {
                _ = try await manager.vault.store.load(organizationID: "")
                return Self.json(.ok, ["status": "ready"])
            } catch {
                return Self.json(.serviceUnavailable, ["status": "unavailable", "message": "the database is not reachable"])
            }
        }
        router.post("/webhooks/linear") { request, context in
            let response: Response
            do {
                response = try await webhook(request, context)
            } catch {
                let status = error is TokenStoreError ? "503" : "500"
                Counter(label: "linear_oauth_webhooks_total", dimensions: [("outcome", "refused_\(status)")], factory: metrics).increment()
                throw error
            }
            let outcome = (response.status == .ok ? "accepted" : "refused") + "_\(response.status.code)"
            Counter(label: "linear_oauth_webhooks_total", dimensions: [("outcome", outcome)], factory: metrics).increment()
            return response
        }
        addInstallRoutes(to: router)

        let api = router.group("/v1").add(middleware: APIKeyMiddleware(keys: configuration.apiKeys))
        api.get("installations") { _, _ in
            try Self.encoded(.ok, try await manager.vault.list())
        }
        api.get("installations/:organization") { _, context in
            let organizationID = try context.parameters.require("organization")
            guard let metadata = try await manager.vault.store.load(organizationID: organizationID)?.metadata else {
                return Self.error(.notInstalled(organizationID: organizationID))
            }
            return try Self.encoded(.ok, metadata)
        }
        api.get("installations/:organization/access-token") { _, context in
            let organizationID = try context.parameters.require("organization")
            return await tokenAnswer(organizationID) { () async throws(TokenManagerError) in try await manager.accessToken(for: organizationID) }
        }
        api.post("installations/:organization/refresh") { _, context in
            let organizationID = try context.parameters.require("organization")
            return await tokenAnswer(organizationID) { () async throws(TokenManagerError) in try await manager.forceRefresh(for: organizationID) }
        }
        api.delete("installations/:organization") { _, context in
            let organizationID = try context.parameters.require("organization")
            do throws(TokenManagerError) {
                let result = try await manager.revoke(for: organizationID)
                guard result.wasInstalled else { return Self.error(.notInstalled(organizationID: organizationID)) }
                return Response(status: .noContent)
            } catch {
                return Self.error(error, installURL: configuration.installURL)
            }
        }
        return router
    }

    private func tokenAnswer(_ organizationID: String, _ get: () async throws(TokenManagerError) -> TokenManager.AccessToken) async -> Response {
        do {
            let token = try await get()
            // Written by hand: this is the hot route, and JSONSerialization is slow on Linux.
            var body = "{\"access_token\":"
            Self.appendJSONString(token.token.value, to: &body)
            body += ",\"app_user_id\":"
            Self.appendJSONString(token.appUserID, to: &body)
            body += ",\"expires_at\":\"" + RFC3339.format(token.expiresAt) + "\",\"organization_id\":"
            Self.appendJSONString(token.organizationID, to: &body)
            body += "}"
            return Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        } catch {
            return Self.error(error, installURL: configuration.installURL)
        }
    }

    // MARK: - Webhooks

    private func webhook(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.maxWebhookBodySize)
        } catch {
            return Self.json(.badRequest, ["error": "body_too_large", "message": "the webhook body is larger than \(configuration.maxWebhookBodySize) bytes"])
        }
        let raw = Data(body.readableBytesView)
        guard let signature = request.headers[HTTPField.Name("linear-signature")!], let given = Self.hexBytes(signature),
            HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: raw, using: SymmetricKey(data: Data(configuration.webhookSecret.value.utf8)))
        else {
            logger.warning("refused a webhook with a missing or bad signature")
            return Self.json(.unauthorized, ["error": "bad_signature", "message": "the linear-signature header does not match the body"])
        }
        guard let payload = try? JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
            return Self.json(.badRequest, ["error": "bad_body", "message": "the webhook body is not a JSON object"])
        }
        let timestamp = (payload["webhookTimestamp"] as? NSNumber)?.doubleValue
            ?? request.headers[HTTPField.Name("linear-timestamp")!].flatMap(Double.init)
        guard let timestamp else {
            return Self.json(.badRequest, ["error": "missing_timestamp", "message": "the webhook has no webhookTimestamp"])
        }
        guard abs(Date().timeIntervalSince1970 - timestamp / 1000) <= configuration.webhookTolerance.timeInterval else {
            return Self.json(.badRequest, ["error": "stale_timestamp", "message": "the webhook timestamp is too far from now (a replay?)"])
        }
        guard payload["type"] as? String == "OAuthApp", payload["action"] as? String == "revoked" else {
            return Self.json(.ok, ["status": "ignored"])
        }
        guard let organizationID = payload["organizationId"] as? String, !organizationID.isEmpty else {
            return Self.json(.badRequest, ["error": "bad_body", "message": "OAuthApp revoked without organizationId"])
        }
        // A delivery seen before (Linear retrying, or a replay inside the tolerance): answered, not acted on again.
        // Linear already revoked the grant: delete the tokens here, unless they belong to an install made
        // after the webhook was signed (a replay, or a late delivery, must not remove a newer grant).
        // Under the row's lock, so a re-install cannot slip in between the check and the delete.
        // The time the body itself carries (signed), never the unsigned header.
        guard let signedAt = (payload["webhookTimestamp"] as? NSNumber).map({ Date(timeIntervalSince1970: $0.doubleValue / 1000) })
            ?? (payload["createdAt"] as? String).flatMap(RFC3339.parse)
        else {
            return Self.json(.badRequest, ["error": "missing_timestamp", "message": "OAuthApp revoked without webhookTimestamp or createdAt in the body"])
        }
        let outcome: String = try await manager.vault.store.withRefreshLock(organizationID: organizationID) { sealed, transaction in
            guard let sealed else { return "not_installed" }
            // In whole milliseconds, as Linear signs them.
            func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
            guard milliseconds(sealed.metadata.installedAt) <= milliseconds(signedAt) else { return "newer_install_kept" }
            try await transaction.delete()
            return "deleted"
        }
        manager.evict(organizationID)
        logger.info("the app was uninstalled", metadata: ["organization": .string(organizationID), "outcome": .string(outcome)])
        return Self.json(.ok, ["status": outcome])
    }

    /// `work`'s result, or `nil` if it fails or takes longer than `limit` (it is then left to finish
    /// on its own).
    static func within<T: Sendable>(_ limit: Duration, _ work: @escaping @Sendable () async throws -> T) async -> T? {
        try? await withCheckedThrowingContinuation { continuation in
            let answer = ResumeOnce(continuation)
            let task = Task {
                do { answer.resume(with: .success(try await work())) } catch { answer.resume(throwing: error) }
            }
            Task {
                try? await Task.sleep(for: limit)
                task.cancel()
                answer.resume(throwing: CancellationError())
            }
        }
    }

    // MARK: - Answers

    static func json(_ status: HTTPResponse.Status, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func encoded<T: Encodable>(_ status: HTTPResponse.Status, _ value: T) throws -> Response {
        let data = try RFC3339.jsonEncoder().encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `{"error": CODE, "message": ...}`: 404 `not_installed`, 409 `reauthorization_required`,
    /// 503 `unavailable` (with `Retry-After`), 500 `configuration_error`.
    static func error(_ error: TokenManagerError, installURL: String? = nil) -> Response {
        switch error {
        case .notInstalled:
            return json(.notFound, ["error": "not_installed", "message": error.description])
        case .reauthorizationRequired:
            var body: [String: Any] = ["error": "reauthorization_required", "message": error.description]
            if let installURL { body["install_url"] = installURL }
            return json(.conflict, body)
        case .temporarilyUnavailable(_, _, let retryAfter):
            let seconds = max(1, Int(retryAfter?.components.seconds ?? 5))
            return json(.serviceUnavailable, ["error": "unavailable", "message": error.description],
                        headers: [.retryAfter: String(seconds)])
        case .configuration:
            return json(.internalServerError, ["error": "configuration_error", "message": error.description])
        }
    }

    /// Appends `text` as a JSON string literal.
    static func appendJSONString(_ text: String, to out: inout String) {
        out.append("\"")
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count % 2 == 0, !characters.isEmpty else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count / 2)
        var index = 0
        while index < characters.count {
            guard let high = hexValue(characters[index]), let low = hexValue(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Counts HTTP requests by route (the matched path pattern, never the raw URL) and status.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let factory: any MetricsFactory

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            count(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500)
            throw error
        }
        count(request, context, status: response.status.code)
        return response
    }

    private func count(_ request: Request, _ context: Context, status: Int) {
        Counter(
            label: "linear_oauth_http_requests_total",
            dimensions: [("route", context.endpointPath ?? "unmatched"), ("method", request.method.rawValue), ("status", String(status))],
            factory: factory
        ).increment()
    }
}

/// Answers an error that a route let through as JSON: a storage failure is 503 `unavailable` with
/// `Retry-After` (the database is down or busy: try again), Hummingbird's own HTTP errors keep their
/// status, anything else is 500 `internal_error` without details (they are logged, never sent).
struct ErrorAnswerMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as TokenStoreError {
            logger.warning("storage failure", metadata: ["route": .string(context.endpointPath ?? "unmatched"), "error": .string(error.description)])
            return LinearOAuthServer.json(
                .serviceUnavailable, ["error": "unavailable", "message": "the database cannot answer now; try again"],
                headers: [.retryAfter: "5"])
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            logger.error("request failed", metadata: ["route": .string(context.endpointPath ?? "unmatched"), "error": .string("\(error)")])
            return LinearOAuthServer.json(.internalServerError, ["error": "internal_error", "message": "the request failed; see the service log"])
        }
    }
}

/// `Authorization: Bearer KEY` against the configured keys, compared in constant time.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let keys: [Secret]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            return LinearOAuthServer.json(.unauthorized, ["error": "unauthorized", "message": "an API key is required: Authorization: Bearer KEY"])
        }
        let given = Array(header.utf8.dropFirst(7))
        // Check every key, so the time taken does not tell which one came close.
        var matched = false
        for key in keys where Self.constantTimeEqual(given, Array(key.value.utf8)) { matched = true }
        guard matched else {
            return LinearOAuthServer.json(.unauthorized, ["error": "unauthorized", "message": "the API key is not valid"])
        }
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}


