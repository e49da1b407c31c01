import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthTestSupport
import Testing

/// The repository's root (for its scripts).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The schemathesis venv that `Scripts/fuzz-openapi.sh --setup` makes (CI runs it first).
let schemathesisReady = FileManager.default.isExecutableFile(
    atPath: ProcessInfo.processInfo.environment["LINEAR_OAUTH_FUZZ_VENV"].map { $0 + "/bin/schemathesis" }
        ?? repositoryRoot.path + "/.build/fuzz-venv/bin/schemathesis")

extension FaultSuite {
    @Suite("Hostile input: every route fuzzed from the OpenAPI document (schemathesis)")
    struct OpenAPIFuzzTests {
        @Test("schemathesis against linear-oauth serve: zero 5xx, zero schema failures, the service alive, no installation made up",
              .enabled(if: schemathesisReady, "run Scripts/fuzz-openapi.sh --setup first (a venv with schemathesis from PyPI)"))
        func schemathesis() async throws {
            try await withWorld(.sqlite) { world in
                let seeded = ["org-seed-0", "org-seed-1"]
                try await world.install(seeded, expiresIn: 86_400)
                let (serve, _) = try await ServeInstance.startWithInstalls(world)
                defer { serve.child.kill() }
                // Hang guards, not verdicts on speed: the whole run and each request get far longer than they need.
                var environment = childEnvironment([
                    "LINEAR_OAUTH_FUZZ_API_KEY": world.apiKey, "LINEAR_OAUTH_FUZZ_TIMEOUT": "3600", "LINEAR_OAUTH_FUZZ_REQUEST_TIMEOUT": "120",
                ])
                if let venv = ProcessInfo.processInfo.environment["LINEAR_OAUTH_FUZZ_VENV"] { environment["LINEAR_OAUTH_FUZZ_VENV"] = venv }
                let output = try await runProcess(
                    repositoryRoot.appendingPathComponent("Scripts/fuzz-openapi.sh"),
                    ["--base-url", serve.url, "--organization", "org-seed-0"], environment: environment)
                let summary = output.stdout.split(separator: "\n").last.map(String.init) ?? ""
                #expect(output.status == 0, "\(output.stdout.suffix(2_000))\n\(output.stderr.suffix(2_000))")
                #expect(summary.hasPrefix("fuzz-openapi: operations="), "no summary: \(output.stdout.suffix(500))")
                #expect(summary.contains(" server_errors=0 ") && summary.hasSuffix(" failures=0"), "\(summary)")
                #expect(!output.stdout.contains(world.apiKey) && !output.stderr.contains(world.apiKey), "the API key was printed")
                #expect(!serve.child.hasExited, "the service died")
                // Only what was seeded is there (a DELETE may have revoked the one the fuzzer was given).
                let left = Set(try await world.vault.list().map(\.organizationID))
                #expect(left.isSubset(of: Set(seeded)), "installations made up: \(left.subtracting(seeded))")
                report("hostile input (schemathesis): \(summary.dropFirst("fuzz-openapi: ".count))")
            }
        }
    }
}
