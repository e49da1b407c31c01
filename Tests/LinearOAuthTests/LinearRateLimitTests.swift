import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthTestSupport
import Testing

@Suite("Rate limits: when a refused call may be tried again", .capturesLogs)
struct LinearRateLimitTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// Epoch milliseconds, as Linear sends resets, `seconds` from ``now``.
    static func reset(_ seconds: TimeInterval) -> String { String(Int64((now.timeIntervalSince1970 + seconds) * 1000)) }

    static func budget(_ prefix: String, remaining: Int, resetIn seconds: TimeInterval) -> [(name: String, value: String)] {
        [("X-RateLimit-\(prefix)-Limit", "1500"), ("X-RateLimit-\(prefix)-Remaining", String(remaining)),
         ("X-RateLimit-\(prefix)-Reset", reset(seconds))]
    }

    @Test("the latest of Retry-After and the exhausted budgets' resets; a budget with some left does not count")
    func latestApplicable() {
        // Requests ran out (resets in 10 min); complexity resets later but has plenty left.
        let requests = LinearRateLimit(
            headers: Self.budget("Requests", remaining: 0, resetIn: 600) + Self.budget("Complexity", remaining: 90_000, resetIn: 3_000)
                + [("Retry-After", "60")], now: Self.now)
        #expect(requests.requests?.isExhausted == true && requests.complexity?.isExhausted == false)
        #expect(requests.retryAt == Self.now.addingTimeInterval(600))

        // Retry-After later than the exhausted budget: Retry-After.
        let later = LinearRateLimit(headers: Self.budget("Requests", remaining: 0, resetIn: 30) + [("Retry-After", "90")], now: Self.now)
        #expect(later.retryAt == Self.now.addingTimeInterval(90))

        // Two exhausted (the endpoint's own limit too): the later one.
        let both = LinearRateLimit(
            headers: Self.budget("Endpoint-Requests", remaining: 0, resetIn: 1_200) + Self.budget("Requests", remaining: 0, resetIn: 300),
            now: Self.now)
        #expect(both.endpointRequests?.resetAt == Self.now.addingTimeInterval(1_200))
        #expect(both.retryAt == Self.now.addingTimeInterval(1_200))

        // Only Retry-After (seconds or an HTTP date).
        #expect(LinearRateLimit(headers: [("retry-after", "45")], now: Self.now).retryAt == Self.now.addingTimeInterval(45))
        let date = LinearRateLimit(headers: [("Retry-After", "Sun, 06 Nov 2094 08:49:37 GMT")]).retryAfter
        #expect(date.map { abs($0.timeIntervalSince1970 - 3_939_871_777) < 1 } == true)

        // Nothing says which ran out: the latest reset sent.
        let unknown = LinearRateLimit(
            headers: [("X-RateLimit-Requests-Reset", Self.reset(100)), ("X-RateLimit-Complexity-Reset", Self.reset(200))], now: Self.now)
        #expect(unknown.retryAt == Self.now.addingTimeInterval(200))
        #expect(LinearRateLimit(headers: [], now: Self.now).retryAt == nil)
    }

    @Test("resets in epoch milliseconds or seconds; header names in any case; unreadable values ignored")
    func parsing() {
        let seconds = LinearRateLimit(headers: [
            ("x-ratelimit-requests-remaining", "0"), ("X-RATELIMIT-REQUESTS-RESET", String(Int(Self.now.timeIntervalSince1970) + 5)),
            ("X-RateLimit-Complexity-Remaining", "12.5"), ("X-RateLimit-Complexity-Reset", "soon"), ("Retry-After", "later"),
        ], now: Self.now)
        #expect(seconds.requests == LinearRateLimit.Budget(remaining: 0, resetAt: Self.now.addingTimeInterval(5)))
        #expect(seconds.complexity == LinearRateLimit.Budget(remaining: 12))
        #expect(seconds.retryAfter == nil && seconds.endpointRequests == nil)
        #expect(seconds.retryAt == Self.now.addingTimeInterval(5))
    }

    @Test("RATELIMITED is recognised with HTTP 200, 400 and 429, for each budget; the retry time is the exhausted budget's reset",
          arguments: [200, 400, 429], EmulatorSettings.RateLimitBudget.allCases)
    func emulatorAnswers(status: Int, budget: EmulatorSettings.RateLimitBudget) async throws {
        var settings = EmulatorSettings()
        settings.rateLimitRequests = 1
        settings.rateLimitWindow = 3_600
        settings.rateLimitStatus = status
        settings.rateLimitBudget = budget
        try await withEmulator(settings: settings) { emulator, url in
            let client = emulatorClient(url)
            let token = Secret(try await emulator.mintGrant(organizationID: "org-acme").accessToken)
            let before = Date()
            let first = try await client.graphQL("{ viewer { id } }", accessToken: token)
            #expect(first.rateLimit.retryAt != nil)
            do {
                _ = try await client.graphQL("{ viewer { id } }", accessToken: token)
                Issue.record("HTTP \(status): not rate limited")
            } catch {
                guard case .rateLimited(let resetAt, let message)? = error as? LinearAPIError else { Issue.record("\(error)"); return }
                #expect(message == "Rate limit exceeded")
                // The window began at the first call: its budget resets an hour later; another budget
                // resets two hours later, which must not be taken.
                let wait = try #require(resetAt).timeIntervalSince(before)
                #expect(wait >= 3_599 && wait < 3_600 + Date().timeIntervalSince(before) + 1, "waits \(wait) s")
            }
            let refused = await emulator.requests().last
            #expect(refused?.status == status && refused?.outcome == "rate_limited")
        }
    }

    @Test("a bare 429 (no GraphQL body) is a rate limit with Retry-After's time, not a transport failure; so is extensions.type alone",
          arguments: [
            (429, "Too Many Requests"),
            (400, #"{"errors":[{"message":"Too many requests","extensions":{"type":"ratelimited","statusCode":429}}]}"#),
          ])
    func bare429(status: Int, body: String) async throws {
        let server = CaptureServer()
        server.respond(status: status, body: body, headers: [("Retry-After", "30"), ("Content-Type", "text/plain")])
        let url = try await server.start()
        let client = LinearClient(configuration: LinearClientConfiguration(clientID: "c", clientSecret: Secret("s"), apiURL: url))
        let before = Date()
        var outcome: LinearAPIError?
        do {
            _ = try await client.graphQL("{ viewer { id } }", accessToken: Secret("lin_oauth_abc"))
        } catch {
            outcome = error
        }
        await server.stop()
        guard case .rateLimited(let resetAt, _)? = outcome else { Issue.record("not rate limited: \(String(describing: outcome))"); return }
        let wait = try #require(resetAt).timeIntervalSince(before)
        #expect(wait >= 29 && wait <= 30 + Date().timeIntervalSince(before) + 1, "waits \(wait) s")
    }
}
