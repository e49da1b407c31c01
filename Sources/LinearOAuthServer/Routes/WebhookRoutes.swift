import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LinearOAuth
import Logging
import Metrics

/// `POST /webhooks/linear`: Linear's webhooks, signed with the webhook secret. An `OAuthApp`
/// `revoked` delivery (the app was uninstalled) is handed to ``TokenManager/uninstalled(organizationID:signedAt:)``;
/// other types are acknowledged and ignored.
struct WebhookRoutes {
    let manager: TokenManager
    let configuration: LinearOAuthServerConfiguration
    let metrics: any MetricsFactory
    let logger: Logger

    var routes: RouteCollection<LinearOAuthRequestContext> {
        let routes = RouteCollection(context: LinearOAuthRequestContext.self)
        routes.post("/webhooks/linear") { request, _ in
            let response: Response
            do {
                response = try await handle(request)
            } catch {
                let status = error is TokenStoreError ? "503" : "500"
                count(outcome: "refused_\(status)")
                throw error
            }
            count(outcome: (response.status == .ok ? "accepted" : "refused") + "_\(response.status.code)")
            return response
        }
        return routes
    }

    private func count(outcome: String) {
        Counter(label: "linear_oauth_webhooks_total", dimensions: [("outcome", outcome)], factory: metrics).increment()
    }

    private func handle(_ request: Request) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.maxWebhookBodySize)
        } catch {
            return Responses.json(.badRequest, ["error": "body_too_large", "message": "the webhook body is larger than \(configuration.maxWebhookBodySize) bytes"])
        }
        let raw = Data(body.readableBytesView)
        guard let signature = request.headers[HTTPField.Name("linear-signature")!], let given = Hex.bytes(signature),
            HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: raw, using: SymmetricKey(data: Data(configuration.webhookSecret.value.utf8)))
        else {
            logger.warning("refused a webhook with a missing or bad signature")
            return Responses.json(.unauthorized, ["error": "bad_signature", "message": "the linear-signature header does not match the body"])
        }
        guard let payload = try? JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
            return Responses.json(.badRequest, ["error": "bad_body", "message": "the webhook body is not a JSON object"])
        }
        let timestamp = (payload["webhookTimestamp"] as? NSNumber)?.doubleValue
            ?? request.headers[HTTPField.Name("linear-timestamp")!].flatMap(Double.init)
        guard let timestamp else {
            return Responses.json(.badRequest, ["error": "missing_timestamp", "message": "the webhook has no webhookTimestamp"])
        }
        guard abs(Date().timeIntervalSince1970 - timestamp / 1000) <= configuration.webhookTolerance.timeInterval else {
            return Responses.json(.badRequest, ["error": "stale_timestamp", "message": "the webhook timestamp is too far from now (a replay?)"])
        }
        guard payload["type"] as? String == "OAuthApp", payload["action"] as? String == "revoked" else {
            return Responses.json(.ok, ["status": "ignored"])
        }
        guard let organizationID = payload["organizationId"] as? String, !organizationID.isEmpty else {
            return Responses.json(.badRequest, ["error": "bad_body", "message": "OAuthApp revoked without organizationId"])
        }
        // When the notice was signed: the time the body itself carries (signed), never the unsigned header.
        guard let signedAt = (payload["webhookTimestamp"] as? NSNumber).map({ Date(timeIntervalSince1970: $0.doubleValue / 1000) })
            ?? (payload["createdAt"] as? String).flatMap(RFC3339.parse)
        else {
            return Responses.json(.badRequest, ["error": "missing_timestamp", "message": "OAuthApp revoked without webhookTimestamp or createdAt in the body"])
        }
        let outcome = try await manager.uninstalled(organizationID: organizationID, signedAt: signedAt)
        return Responses.json(.ok, ["status": outcome.rawValue])
    }
}
