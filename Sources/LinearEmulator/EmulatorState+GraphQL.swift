import Foundation

/// The GraphQL endpoint: `viewer`, `organization`, and the rate limits.
extension EmulatorState {
    // MARK: - GraphQL

    func graphQL(query: String?, authorization: String?, now: Date) -> EmulatorResponse {
        var record = EmulatorRequestRecord(
            endpoint: "graphql", grantType: nil, clientID: nil, organizationID: nil, refreshTokenFingerprint: nil,
            outcome: "ok", status: 200, at: now)
        defer { log.append(record) }
        var token = authorization ?? ""
        if token.lowercased().hasPrefix("bearer ") { token = String(token.dropFirst(7)) }
        guard let access = accessTokens[token], !access.revoked, access.expiresAt > now,
            let grant = grants[access.grantID], !grant.revoked,
            let organization = organization(grant.organizationID), let client = clients[grant.clientID]
        else {
            record.outcome = "unauthenticated"
            record.status = 401
            return .json(401, ["errors": [[
                "message": "Authentication required, not authenticated",
                "extensions": ["type": "authentication error", "code": "AUTHENTICATION_ERROR", "statusCode": 401, "userError": true],
            ]]])
        }
        record.organizationID = organization.id
        record.clientID = client.id
        var headers: [(String, String)] = []
        if let limit = settings.rateLimitRequests {
            var window = rateWindows[token] ?? (now, 0)
            if now.timeIntervalSince(window.start) >= TimeInterval(settings.rateLimitWindow) { window = (now, 0) }
            window.count += 1
            rateWindows[token] = window
            let (rateHeaders, retryAt) = Self.rateLimitHeaders(
                budget: settings.rateLimitBudget, limit: limit, used: window.count, windowStart: window.start,
                window: TimeInterval(settings.rateLimitWindow))
            headers = rateHeaders
            if window.count > limit {
                record.outcome = "rate_limited"
                record.status = settings.rateLimitStatus
                headers.append(("Retry-After", String(max(1, Int(retryAt.timeIntervalSince(now).rounded(.up))))))
                return .json(settings.rateLimitStatus, ["errors": [[
                    "message": "Rate limit exceeded",
                    "extensions": ["code": "RATELIMITED", "type": "ratelimited", "statusCode": 429, "userError": true],
                ]]], headers: headers)
            }
        }
        let text = query ?? ""
        var data: [String: Any] = [:]
        if text.range(of: #"\bviewer\b"#, options: .regularExpression) != nil {
            data["viewer"] = grant.actor == "user"
                ? ["id": "user-\(organization.id)", "name": "Emulated Admin"]
                : ["id": organization.appUserID, "name": client.name]
        }
        if text.range(of: #"\borganization\b"#, options: .regularExpression) != nil {
            data["organization"] = ["id": organization.id, "name": organization.name, "urlKey": organization.urlKey]
        }
        guard !data.isEmpty else {
            record.outcome = "unsupported_query"
            record.status = 400
            return .json(400, ["errors": [[
                "message": "The emulator answers viewer { id name } and organization { id name urlKey } only",
                "extensions": ["code": "GRAPHQL_VALIDATION_FAILED", "type": "graphql error", "userError": true],
            ]]], headers: headers)
        }
        return .json(200, ["data": data], headers: headers)
    }
}
