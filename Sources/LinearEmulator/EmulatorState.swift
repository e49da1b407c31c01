import Crypto
import Foundation

/// Everything the emulator remembers: organizations, clients, codes, grants and tokens, faults,
/// and the request log. All of Linear's OAuth behaviour lives here; the HTTP layer only translates.
///
/// By aspect: this file (the state, the test controls, helpers), `+Authorization` (the authorize
/// endpoint), `+Tokens` (the token endpoint's grants, and revocation), `+GraphQL`, `+Persistence`.
actor EmulatorState {
    var settings = EmulatorSettings()
    var organizations: [EmulatedOrganization]
    var clients: [String: EmulatedClient]
    var log: [EmulatorRequestRecord] = []

    struct AuthorizationCode: Codable {
        var clientID: String
        var organizationID: String
        var redirectURI: String
        var scopes: [String]
        var actor: String
        var challenge: String?
        var challengeMethod: String
        var expiresAt: Date
        var used = false
    }

    struct Grant: Codable {
        var clientID: String
        var organizationID: String
        var scopes: [String]
        var actor: String
        var revoked = false

        /// An app-actor grant: an `actor=app` install (`application` is the old name) or a `client_credentials` token.
        var isAppActor: Bool { ["app", "application", "client_credentials"].contains(actor) }
    }

    struct AccessToken: Codable {
        var grantID: Int
        var expiresAt: Date
        var revoked = false
        var appToken = false
    }

    enum RefreshTokenState: Codable {
        case current
        /// Rotated at `at`; replaying it within the grace period answers `response` again.
        case rotated(at: Date, response: EmulatedTokenResponse)
        case revoked
    }

    struct RefreshToken: Codable {
        var grantID: Int
        var state: RefreshTokenState
    }

    var codes: [String: AuthorizationCode] = [:]
    var grants: [Int: Grant] = [:]
    var nextGrantID = 1
    var accessTokens: [String: AccessToken] = [:]
    var refreshTokens: [String: RefreshToken] = [:]
    var rateWindows: [String: (start: Date, count: Int)] = [:]

    // Faults armed by tests.
    var failNext: (count: Int, status: Int, retryAfter: Int?) = (0, 500, nil)
    /// Token calls received, counted on arrival (before latency): a test can see a call in flight.
    private(set) var tokenCallsArrived = 0
    func tokenCallArrived() { tokenCallsArrived += 1 }
    var dropNextRefresh = false
    var holdNextRefresh = false
    /// Responses held back (``EmulatorResponse/hold``), waiting for ``releaseHeldResponses()``.
    var held: [CheckedContinuation<Void, Never>] = []
    /// Responses held back so far.
    private(set) var responsesHeld = 0

    init(organizations: [EmulatedOrganization], clients: [EmulatedClient], settings: EmulatorSettings) {
        self.settings = settings
        self.organizations = organizations
        self.clients = Dictionary(uniqueKeysWithValues: clients.map { ($0.id, $0) })
        for client in clients { SecretLedger.record(client) }
    }

    // MARK: - Control

    func update(_ settings: EmulatorSettings) { self.settings = settings }
    func add(_ organization: EmulatedOrganization) {
        organizations.removeAll { $0.id == organization.id }
        organizations.append(organization)
    }
    func add(_ client: EmulatedClient) {
        // Rotating a client's secret invalidates its app (client_credentials) tokens, as at Linear.
        if let old = clients[client.id], old.secret != client.secret {
            for (id, grant) in grants where grant.clientID == client.id && grant.actor == "client_credentials" { revokeGrant(id) }
        }
        clients[client.id] = client
        SecretLedger.record(client)
    }
    func client(_ id: String) -> EmulatedClient? { clients[id] }
    func organization(_ id: String) -> EmulatedOrganization? { organizations.first { $0.id == id } }
    func requests() -> [EmulatorRequestRecord] { log }
    func clearRequests() { log.removeAll() }

    func armFailures(count: Int, status: Int, retryAfter: Int?) { failNext = (count, status, retryAfter) }
    func armDropNextRefresh() { dropNextRefresh = true }
    func armHoldNextRefresh() { holdNextRefresh = true }

    /// Waits until the test releases held responses.
    func waitForRelease() async {
        await withCheckedContinuation { continuation in
            responsesHeld += 1
            held.append(continuation)
        }
    }

    func releaseHeldResponses() {
        let waiting = held
        held.removeAll()
        for continuation in waiting { continuation.resume() }
    }

    /// Expires every access token of an organization now (as if a day had passed).
    func expireAccessTokens(organizationID: String, now: Date) -> Int {
        var count = 0
        for (token, record) in accessTokens where grants[record.grantID]?.organizationID == organizationID {
            accessTokens[token]?.expiresAt = now.addingTimeInterval(-1)
            count += 1
        }
        return count
    }

    /// Issues tokens for a new grant without the browser flow (what an install would produce).
    func mintGrant(clientID: String, organizationID: String, scopes: [String], actor: String, now: Date) -> EmulatedTokenResponse? {
        guard clients[clientID] != nil, organization(organizationID) != nil else { return nil }
        let grantID = newGrant(Grant(clientID: clientID, organizationID: organizationID, scopes: scopes, actor: actor))
        return issueTokens(grantID: grantID, now: now)
    }

    /// What an access token would get now: why a call with it was refused.
    func check(accessToken token: String, now: Date) -> AccessTokenCheck {
        guard let access = accessTokens[token], let grant = grants[access.grantID] else { return .unknown }
        if access.revoked || grant.revoked { return .revoked }
        return access.expiresAt > now ? .live : .expired
    }

    /// What a refresh token would get now: the evidence that a grant was kept or lost.
    func check(refreshToken token: String, now: Date) -> RefreshTokenCheck {
        guard let entry = refreshTokens[token], let grant = grants[entry.grantID] else { return .unknown }
        if grant.revoked { return .revoked }
        switch entry.state {
        case .current: return .current
        case .revoked: return .revoked
        case .rotated(let at, _):
            return now.timeIntervalSince(at) <= TimeInterval(settings.gracePeriod) ? .replayable : .rotatedPastGrace
        }
    }

    /// Live (not revoked) grants per organization for a client.
    func liveGrants(clientID: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for grant in grants.values where grant.clientID == clientID && !grant.revoked { counts[grant.organizationID, default: 0] += 1 }
        return counts
    }

    /// Revokes an organization's grants of one client from Linear's side (an uninstall).
    /// - Returns: How many grants were revoked.
    func revokeGrants(clientID: String, organizationID: String) -> Int {
        var count = 0
        for (id, grant) in grants where grant.clientID == clientID && grant.organizationID == organizationID && !grant.revoked {
            revokeGrant(id)
            count += 1
        }
        return count
    }

    // MARK: - Helpers

    /// Linear's three budgets for a token that has used `used` of `limit` in the window that started at
    /// `windowStart`: the chosen one runs out at the window's end, the others have plenty left and
    /// reset half a window earlier and a whole window later: a client must wait for the budget that
    /// ran out (and `Retry-After`), not for the latest reset it sees. Also returns when the chosen budget resets.
    static func rateLimitHeaders(
        budget: EmulatorSettings.RateLimitBudget, limit: Int, used: Int, windowStart: Date, window: TimeInterval
    ) -> ([(String, String)], Date) {
        let others = EmulatorSettings.RateLimitBudget.allCases.filter { $0 != budget }
        let resets: [EmulatorSettings.RateLimitBudget: Date] = [
            budget: windowStart.addingTimeInterval(window),
            others[0]: windowStart.addingTimeInterval(window / 2),
            others[1]: windowStart.addingTimeInterval(window * 2),
        ]
        var headers: [(String, String)] = []
        for (kind, prefix, scale) in [
            (EmulatorSettings.RateLimitBudget.requests, "X-RateLimit-Requests", 1),
            (.complexity, "X-RateLimit-Complexity", 100), (.endpointRequests, "X-RateLimit-Endpoint-Requests", 1),
        ] {
            // The chosen budget holds `limit`; the others ten times as much, and never run out here.
            let size = (kind == budget ? limit : limit * 10) * scale
            let spent = (kind == budget ? used : min(used, limit)) * scale
            headers += [
                (prefix + "-Limit", String(size)),
                (prefix + "-Remaining", String(max(0, size - spent))),
                (prefix + "-Reset", String(Int64(resets[kind]!.timeIntervalSince1970 * 1000))),
            ]
        }
        return (headers, resets[budget]!)
    }

    /// An OAuth error answer, logged with its code as the outcome.
    static func reject(_ record: inout EmulatorRequestRecord, _ status: Int, _ error: String, _ description: String) -> EmulatorResponse {
        record.outcome = error
        return .oauthError(status, error, description)
    }

    static func parseScopes(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
    }

    static func randomToken(prefix: String) -> String {
        let token = prefix + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        SecretLedger.record(token, kind: prefix)
        return token
    }

    static func s256(_ verifier: String) -> String {
        Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
