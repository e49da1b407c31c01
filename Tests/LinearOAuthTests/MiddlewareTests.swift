import HTTPTypes
import LinearOAuth
import MetricsTestKit
import Testing

@testable import LinearOAuthServer

@Suite("The token API's middleware")
struct MiddlewareTests {
    @Test("`Bearer ` is recognised in any case and nothing else is", arguments: [
        ("Bearer key", true), ("bearer key", true), ("BEARER key", true), ("bEaReR key", true), ("Bearer ", true),
        ("Bearerkey", false), ("Bearer\tkey", false), ("Bear", false), ("", false), ("Basic a2V5", false), ("Bearer_key", false),
    ])
    func bearerPrefix(header: String, expected: Bool) {
        #expect(APIKeyMiddleware.hasBearerPrefix(header.utf8) == expected)
    }

    @Test("keys compare by every byte and by length")
    func constantTimeEqual() {
        #expect(APIKeyMiddleware.constantTimeEqual("secret-key".utf8, Array("secret-key".utf8)))
        #expect(!APIKeyMiddleware.constantTimeEqual("secret-kez".utf8, Array("secret-key".utf8)))
        #expect(!APIKeyMiddleware.constantTimeEqual("secret-ke".utf8, Array("secret-key".utf8)))
        #expect(!APIKeyMiddleware.constantTimeEqual("Secret-key".utf8, Array("secret-key".utf8)))
    }

    @Test("request counters: one per route, method and status, kept; unusual methods count as OTHER")
    func requestCounters() throws {
        let metrics = TestMetrics()
        let counters = RequestCounters(factory: metrics)
        for _ in 0..<3 { counters.count(route: "/v1/installations/:organization/access-token", method: .get, status: 200) }
        counters.count(route: "/v1/installations/:organization/access-token", method: .get, status: 404)
        counters.count(route: nil, method: HTTPRequest.Method("BREW")!, status: 404)
        counters.count(route: nil, method: HTTPRequest.Method("PROPFIND")!, status: 404)
        let label = "linear_oauth_http_requests_total"
        #expect(try metrics.expectCounter(label, [("route", "/v1/installations/:organization/access-token"), ("method", "GET"), ("status", "200")]).totalValue == 3)
        #expect(try metrics.expectCounter(label, [("route", "/v1/installations/:organization/access-token"), ("method", "GET"), ("status", "404")]).totalValue == 1)
        #expect(try metrics.expectCounter(label, [("route", "unmatched"), ("method", "OTHER"), ("status", "404")]).totalValue == 2)
        #expect(metrics.counters(label: label).count == 3, "no counter per unusual method")
    }
}
