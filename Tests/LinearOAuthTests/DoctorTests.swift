import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthTestSupport
import Testing

@Suite("linear-oauth doctor", .capturesLogs)
struct DoctorTests {
    /// What a deployment sets, against the fixture's store and emulator.
    private static func deployment(_ fixture: ManagerFixture) -> [String: String] {
        fixture.environment.merging([
            "LINEAR_OAUTH_API_KEYS": TestSecrets.record("doctor-api-key-\(UUID().uuidString)", kind: "api-key"),
            "LINEAR_WEBHOOK_SECRET": TestSecrets.record("doctor-whsec-\(UUID().uuidString)", kind: "webhook-secret"),
        ]) { $1 }
    }

    private static func line(_ output: ProcessOutput, _ check: String) -> String? {
        output.stdout.split(separator: "\n").map(String.init).first { $0.dropFirst(7).hasPrefix(check) }
    }

    @Test("a sound deployment passes every check and exits 0; Linear's invalid_grant for the made-up code is the good answer")
    func passes() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install("org-acme", expiresIn: 3600)
            let cli = CLI(environment: Self.deployment(fixture), directory: NSTemporaryDirectory())
            let output = try await cli.run("doctor")
            #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
            for check in ["encryption keys", "database", "stored tokens", "redirect URI", "Linear credentials", "clock", "webhook secret", "API keys"] {
                let line = try #require(Self.line(output, check), "\(check) is checked")
                #expect(line.hasPrefix("  ok  "), "\(line)")
            }
            #expect(Self.line(output, "stored tokens")?.contains("1 row; opened a sample of 1") == true)
            #expect(Self.line(output, "redirect URI")?.contains("http://127.0.0.1:8080/oauth/callback") == true)
            #expect(output.stdout.contains("8 of 8 checks passed"))
            // The emulator was asked once, with the made-up code, and refused it.
            let calls = await fixture.emulator.requests().filter { $0.grantType == "authorization_code" }
            #expect(calls.count == 1 && calls.first?.status == 400)
            #expect(!output.stdout.contains(LinearEmulator.defaultClient.secret))
        }
    }

    @Test("each failure is named and the exit status is 1: a wrong client secret, a row under a missing key, missing secrets, an unreachable Linear, a bad redirect URI")
    func fails() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await fixture.install("org-acme", expiresIn: 3600)
            try await TokenVault(store: fixture.test.store, keyRing: try KeyRing(parsing: TestSecrets.keyEntry(id: "k-gone")))
                .save(Fixtures.installation("org-gone", expiresIn: 3600))
            var environment = Self.deployment(fixture)
            environment["LINEAR_CLIENT_SECRET"] = TestSecrets.record("wrong-secret-\(UUID().uuidString)", kind: "client-secret")
            environment["LINEAR_WEBHOOK_SECRET"] = nil
            environment["LINEAR_OAUTH_API_KEYS"] = "short"
            environment["LINEAR_REDIRECT_URI"] = "http://oauth.example.com/oauth/callback"
            let cli = CLI(environment: environment, directory: NSTemporaryDirectory())
            let output = try await cli.run("doctor")
            #expect(output.status == 1)
            #expect(Self.line(output, "Linear credentials")?.hasPrefix("  FAIL") == true)
            #expect(Self.line(output, "Linear credentials")?.contains("invalid_client") == true)
            let rows = try #require(Self.line(output, "stored tokens"))
            #expect(rows.hasPrefix("  FAIL") && rows.contains("1 under keys not in the ring") && rows.contains("\"k-gone\": 1"))
            #expect(Self.line(output, "webhook secret")?.hasPrefix("  FAIL") == true)
            #expect(Self.line(output, "API keys")?.contains("shorter than 16") == true)
            #expect(Self.line(output, "redirect URI")?.contains("use https") == true)
            #expect(Self.line(output, "clock")?.hasPrefix("  ok  ") == true, "the clock is still judged from a refusal")
            #expect(!output.stdout.contains(environment["LINEAR_CLIENT_SECRET"]!))

            environment = Self.deployment(fixture)
            environment["LINEAR_API_URL"] = "http://127.0.0.1:\(try freePortNumber())"
            let unreachable = try await CLI(environment: environment, directory: NSTemporaryDirectory()).run("doctor")
            #expect(unreachable.status == 1)
            #expect(Self.line(unreachable, "Linear credentials")?.contains("did not answer") == true)
            #expect(Self.line(unreachable, "clock")?.hasPrefix("  FAIL") == true)
        }
    }
}
