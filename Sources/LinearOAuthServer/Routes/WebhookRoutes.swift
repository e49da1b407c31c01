import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LinearOAuth
import Logging
import Metrics

/// `POST /webhooks/linear`: Linear's webhooks, signed with the webhook secret. An `OAuthApp`
/// `revoked` delivery (the app was uninstalled) is handed to ``TokenManager/uninstalled(organizationID:signedAt:)``,
/// also when Linear retries it hours later; other types are acknowledged and ignored.
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
        // Only signed deliveries reach the console's recent events: anyone may post unsigned ones.
        let response = try await handleSigned(raw)
        let outcome = (response.status == .ok ? "accepted" : "refused") + "_\(response.status.code)"
        configuration.events.record(.init(organizationID: nil, event: "webhook", outcome: outcome))
        return response
    }

    /// A delivery whose signature is valid.
    private func handleSigned(_ raw: Data) async throws -> Response {
        guard let payload = try? JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
            return Responses.json(.badRequest, ["error": "bad_body", "message": "the webhook body is not a JSON object"])
        }
        // Freshness comes only from what the signature covers: the body's webhookTimestamp, else its
        // createdAt. The linear-timestamp header is not signed: its sender chooses it.
        guard let signedAt = Self.signedTime(payload) else {
            return Responses.json(.badRequest, [
                "error": "missing_timestamp", "message": "the signed body carries neither webhookTimestamp nor createdAt",
            ])
        }
        let isUninstall = payload["type"] as? String == "OAuthApp" && payload["action"] as? String == "revoked"
        // Linear retries a failed delivery (about a minute, an hour and six hours later) with the same
        // body: an uninstall must survive that, and the install-time rule keeps a late one from
        // removing a newer install. Everything else keeps the short window Linear recommends.
        let tolerance = isUninstall ? configuration.uninstallWebhookTolerance : configuration.webhookTolerance
        let age = Date().timeIntervalSince(signedAt)
        guard age <= tolerance.timeInterval, age >= -configuration.webhookTolerance.timeInterval else {
            return Responses.json(.badRequest, ["error": "stale_timestamp", "message": "the webhook timestamp is too far from now (a replay?)"])
        }
        guard isUninstall else {
            return Responses.json(.ok, ["status": "ignored"])
        }
        guard let organizationID = payload["organizationId"] as? String, !organizationID.isEmpty else {
            return Responses.json(.badRequest, ["error": "bad_body", "message": "OAuthApp revoked without organizationId"])
        }
        let outcome = try await manager.uninstalled(organizationID: organizationID, signedAt: signedAt)
        configuration.events.record(.init(organizationID: organizationID, event: "uninstall", outcome: outcome.rawValue))
        return Responses.json(.ok, ["status": outcome.rawValue])
    }

    /// When the delivery was signed, from the signed body only: `webhookTimestamp` (Unix
    /// milliseconds), else `createdAt` (RFC 3339).
    static func signedTime(_ payload: [String: Any]) -> Date? {
        if let milliseconds = payload["webhookTimestamp"] as? NSNumber, milliseconds.doubleValue.isFinite {
            return Date(timeIntervalSince1970: milliseconds.doubleValue / 1000)
        }
        return (payload["createdAt"] as? String).flatMap(RFC3339.parse)
    }
}
