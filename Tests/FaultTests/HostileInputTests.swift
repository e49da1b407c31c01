import Crypto
import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthTestSupport
import Testing

extension FaultSuite {
    /// The hostile-input suite: the OAuth callback and the webhook by hand, and every route by a seeded
    /// random fuzzer, against `linear-oauth serve`. Zero 5xx, the process alive, nothing stored.
    @Suite("Hostile input: zero 5xx, zero crashes, nothing stored")
    struct HostileInputTests {
        /// A service on a port known in advance (its callback is registered with the emulator), with
        /// three installed organizations.
        struct Target {
            let world: World
            let serve: ServeInstance
            let port: Int
            let seeded = ["org-seed-0", "org-seed-1", "org-seed-2"]

            var url: String { serve.url }

            /// What the store holds: every installation's metadata and tokens.
            func snapshot() async throws -> [String] {
                var rows: [String] = []
                for metadata in try await world.vault.list() {
                    let installation = try #require(try await world.vault.load(organizationID: metadata.organizationID))
                    rows.append([
                        metadata.organizationID, metadata.status.rawValue, RFC3339.format(metadata.expiresAt), RFC3339.format(metadata.updatedAt),
                        tokenFingerprint(installation.accessToken.value), tokenFingerprint(installation.refreshToken.value),
                    ].joined(separator: " "))
                }
                return rows
            }

            func signature(_ body: [UInt8], secret: String? = nil) -> [UInt8] {
                let code = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data((secret ?? world.webhookSecret).utf8)))
                return Array(code.map { String(format: "%02x", $0) }.joined().utf8)
            }

            /// A webhook POST, signed unless `signature` is given.
            func webhook(_ body: [UInt8], signature: [UInt8]? = nil, extraHeaders: [(String, [UInt8])] = []) async throws -> RawSocket.Answer {
                let headers = [("Content-Type", Array("application/json".utf8)), ("linear-signature", signature ?? self.signature(body))] + extraHeaders
                return try await RawSocket.send(port: port, RawSocket.request("POST", Array("/webhooks/linear".utf8), headers: headers, body: body))
            }

            func get(_ target: String, headers: [(String, [UInt8])] = []) async throws -> RawSocket.Answer {
                try await RawSocket.send(port: port, RawSocket.request("GET", Array(target.utf8), headers: headers))
            }

            var auth: (String, [UInt8]) { ("Authorization", Array("Bearer \(world.apiKey)".utf8)) }
        }

        func withTarget(_ body: (Target) async throws -> Void) async throws {
            var settings = EmulatorSettings()
            settings.autoApprove = true
            try await withWorld(.sqlite, settings: settings) { world in
                // The inputs are under test here, not the install flow's rate limit (it has tests of its own).
                let (serve, port) = try await ServeInstance.startWithInstalls(world, ["LINEAR_OAUTH_INSTALL_RATE_LIMIT": "0"])
                let target = Target(world: world, serve: serve, port: port)
                defer { target.serve.child.kill() }
                try await world.install(target.seeded, expiresIn: 86_400)
                try await body(target)
                #expect(!target.serve.child.hasExited, "the service died")
            }
        }

        /// Checks an answer: an HTTP status below 500 (or, for a request too large to read, a closed connection).
        func expectNoServerError(_ answer: RawSocket.Answer, _ what: String, mayClose: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) {
            if let status = answer.status {
                #expect(status < 500, "\(what): \(status) \(answer.body.prefix(200))", sourceLocation: sourceLocation)
            } else {
                #expect(mayClose, "\(what): the connection closed without an answer", sourceLocation: sourceLocation)
            }
        }

        @Test("the OAuth callback: missing, malformed, oversized, repeated and replayed parameters")
        func callback() async throws {
            try await withTarget { target in
                let before = try await target.snapshot()
                let big = String(repeating: "A", count: 100_000)
                let cases: [(String, String, Bool)] = [
                    ("no parameters", "/oauth/callback", false),
                    ("empty state and code", "/oauth/callback?state=&code=", false),
                    ("no state", "/oauth/callback?code=abc", false),
                    ("unknown state", "/oauth/callback?state=unknown&code=abc", false),
                    ("bad percent-encoding", "/oauth/callback?state=%zz%&code=%", false),
                    ("invalid UTF-8", "/oauth/callback?state=%ff%fe%fd&code=%c3%28", false),
                    ("repeated parameters", "/oauth/callback?state=a&state=b&code=x&code=y", false),
                    ("Linear's error, with markup", "/oauth/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C/script%3E", false),
                    ("a 100 KB state", "/oauth/callback?state=\(big)&code=x", true),
                    ("NUL bytes", "/oauth/callback?state=a%00b&code=%00", false),
                    ("a path with NUL", "/oauth/callback%00?state=a", false),
                    ("dot segments", "/oauth/../oauth/callback?state=a&code=b", false),
                ]
                for (what, target_, mayClose) in cases {
                    expectNoServerError(try await target.get(target_), what, mayClose: mayClose)
                }
                // Raw bytes that are not UTF-8 at all, in the request line.
                expectNoServerError(
                    try await RawSocket.send(port: target.port, RawSocket.request("GET", Array("/oauth/callback?state=".utf8) + [0xff, 0xfe, 0x80] + Array("&code=x".utf8))),
                    "raw non-UTF-8 bytes", mayClose: true)
                // A real install, then the same callback again (a replayed state and code).
                let start = try await RawHTTP.request(.GET, target.url + "/oauth/authorize")
                let consent = try await RawHTTP.request(.GET, try #require(start.header("location")))
                let callbackURL = try #require(consent.header("location"))
                let first = try await RawHTTP.request(.GET, callbackURL)
                #expect(first.status == 200)
                let installed = try await target.snapshot()
                #expect(installed.count == before.count + 1)
                let replay = try await RawHTTP.request(.GET, callbackURL)
                // A reload after a success says so, and changes nothing.
                #expect(replay.status == 200 && replay.text.contains("already completed"), "a replayed callback: \(replay.status)")
                #expect(try await target.snapshot() == installed, "a replayed callback changed what is stored")
                // A receipt's own name is not a state.
                let receiptState = RawHTTP.query(callbackURL)["state"] ?? ""
                let forged = try await target.get("/oauth/callback?state=receipt:\(receiptState)&code=x")
                expectNoServerError(forged, "a receipt's name as the state")
                #expect(forged.status == 400)
                // A state used with another code, and Linear's error for a real state.
                let again = try await RawHTTP.request(.GET, target.url + "/oauth/authorize")
                let state = RawHTTP.query(again.header("location"))["state"] ?? ""
                expectNoServerError(try await target.get("/oauth/callback?state=\(state)&code=forged"), "a forged code")
                expectNoServerError(try await target.get("/oauth/callback?state=\(state)&code=forged"), "the same state again")
                #expect(try await target.snapshot() == installed, "the refused callbacks changed what is stored")
            }
        }

        @Test("the webhook: bad signatures, oversized, malformed and deeply nested bodies, wrong types, stale and replayed deliveries")
        func webhook() async throws {
            try await withTarget { target in
                let before = try await target.snapshot()
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                func payload(_ organization: Any, timestamp: Any = now, type: String = "OAuthApp", id: String = UUID().uuidString) -> [UInt8] {
                    Array(try! JSONSerialization.data(withJSONObject: [
                        "type": type, "action": "revoked", "organizationId": organization, "webhookTimestamp": timestamp, "webhookId": id,
                    ]))
                }
                let valid = payload("org-seed-0")
                let unsigned: [(String, [UInt8], [UInt8])] = [
                    ("no signature", valid, []),
                    ("a signature that is not hex", valid, Array("zz".utf8)),
                    ("a signature of odd length", valid, Array("abc".utf8)),
                    ("a 10 KB signature", valid, Array(String(repeating: "ab", count: 5_000).utf8)),
                    ("the signature of another secret", valid, target.signature(valid, secret: "not-the-secret")),
                    ("the signature of another body", payload("org-seed-1"), target.signature(valid)),
                ]
                for (what, body, signature) in unsigned {
                    let answer = try await target.webhook(body, signature: signature)
                    expectNoServerError(answer, what)
                    #expect(answer.status == 401, "\(what): \(answer.status.map(String.init) ?? "closed")")
                }
                let deep = Array(String(repeating: "[", count: 30_000).utf8) + Array(String(repeating: "]", count: 30_000).utf8)
                let signed: [(String, [UInt8], Bool)] = [
                    ("an empty body", [], false),
                    ("malformed JSON", Array("{\"type\": ".utf8), false),
                    ("invalid UTF-8", [0x7b, 0xff, 0xfe, 0x7d], false),
                    ("a JSON array", Array("[1,2,3]".utf8), false),
                    ("JSON nested 30,000 deep", deep, false),
                    ("organizationId a number", payload(42), false),
                    ("organizationId an object", payload(["id": "org-seed-0"]), false),
                    ("webhookTimestamp a string", payload("org-seed-0", timestamp: "soon"), false),
                    ("webhookTimestamp huge", payload("org-seed-0", timestamp: 1e300), false),
                    ("a webhookTimestamp more than a day old", payload("org-seed-0", timestamp: now - 25 * 3_600_000), false),
                    ("a webhookTimestamp in the future", payload("org-seed-0", timestamp: now + 3_600_000), false),
                    ("a body over 64 KB", Array(repeating: 0x20, count: 200_000) + valid, true),
                    ("another event type", payload("org-seed-0", type: "Issue"), false),
                ]
                for (what, body, mayClose) in signed {
                    let answer = try await target.webhook(body)
                    expectNoServerError(answer, what, mayClose: mayClose)
                }
                let repeated = try await target.webhook(valid, signature: Array("00".utf8), extraHeaders: [("linear-signature", target.signature(valid))])
                expectNoServerError(repeated, "two linear-signature headers")
                #expect(try await target.snapshot() == before, "a refused webhook changed what is stored")

                // A real uninstall, the workspace installed again, then the same delivery replayed. Signed
                // now, not when the test began: the service refuses other deliveries more than 60 s old.
                let uninstall = payload("org-seed-1", timestamp: Int64(Date().timeIntervalSince1970 * 1000), id: "delivery-1")
                let first = try await target.webhook(uninstall)
                #expect(first.status == 200 && first.body.contains("deleted"))
                try await target.world.install(["org-seed-1"], expiresIn: 86_400)
                let reinstalled = try await target.snapshot()
                let replay = try await target.webhook(uninstall)
                #expect(replay.status == 200 && replay.body.contains("newer_install_kept"), "replay: \(replay.status.map(String.init) ?? "closed") \(replay.body)")
                #expect(try await target.snapshot() == reinstalled, "a replayed uninstall deleted a new install")
            }
        }

        @Test("every route by a seeded random fuzzer: random methods, paths, encodings, headers and bodies")
        func fuzz() async throws {
            try await withTarget { target in
                let before = try await target.snapshot()
                var generator = SeededGenerator(seed: 20_261_125)
                var statuses: [Int: Int] = [:]
                var closed = 0
                for index in 0..<FaultProfile.fuzzRequests {
                    let request = Fuzz.request(&generator, target: target)
                    let answer = try await RawSocket.send(port: target.port, request.bytes)
                    if let status = answer.status {
                        statuses[status, default: 0] += 1
                        #expect(status < 500, "request \(index): \(status) for \(request.summary): \(answer.body.prefix(200))")
                    } else {
                        closed += 1
                        #expect(request.oversized, "request \(index) got no answer: \(request.summary)")
                    }
                }
                #expect(try await RawHTTP.request(.GET, target.url + "/healthz").status == 200)
                #expect(try await target.snapshot() == before, "fuzzing changed what is stored")
                report("hostile input: \(FaultProfile.fuzzRequests) fuzzed requests, statuses \(statuses.sorted { $0.key < $1.key }.map { "\($0.key)x\($0.value)" }.joined(separator: " ")), "
                    + "\(closed) oversized requests refused by closing; 0 5xx, 0 crashes, nothing stored")
            }
        }
    }
}

/// A reproducible random number generator (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random requests aimed at the service's routes.
enum Fuzz {
    struct Request {
        var bytes: [UInt8]
        var summary: String
        /// Too large for the server to read (it may close instead of answering).
        var oversized: Bool
    }

    static let routes = [
        "/healthz", "/readyz", "/metrics", "/openapi.json", "/oauth/authorize", "/oauth/callback", "/webhooks/linear",
        "/v1/installations", "/v1/installations/{org}", "/v1/installations/{org}/access-token", "/v1/installations/{org}/refresh",
    ]

    static func request(_ random: inout SeededGenerator, target: FaultSuite.HostileInputTests.Target) -> Request {
        let method = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "GET", "POST"].randomElement(using: &random)!
        var oversized = false
        // Never a seeded organization: the fuzzer must not reach real installations by luck.
        var path = routes.randomElement(using: &random)!.replacingOccurrences(of: "{org}", with: "fz" + text(&random, maxLength: 40))
        if Int.random(in: 0..<10, using: &random) == 0 { path += "/" + text(&random, maxLength: 20) }
        var target_ = Array(path.utf8)
        if Bool.random(using: &random) {
            var query: [UInt8] = []
            for index in 0..<Int.random(in: 1...6, using: &random) {
                let name = ["state", "code", "error", "error_description", "x", "state"].randomElement(using: &random)!
                query += Array(((index == 0 ? "?" : "&") + name + "=").utf8) + Array(text(&random, maxLength: 60).utf8)
            }
            target_ += query
        }
        if Int.random(in: 0..<200, using: &random) == 0 {
            target_ += Array(String(repeating: "q", count: 200_000).utf8)
            oversized = true
        }
        var headers: [(String, [UInt8])] = []
        switch Int.random(in: 0..<4, using: &random) {
        case 0: headers.append(target.auth)
        case 1: headers.append(("Authorization", Array(("Bearer " + text(&random, maxLength: 80)).utf8)))
        case 2: headers.append(("Authorization", bytes(&random, count: Int.random(in: 0...50, using: &random))))
        default: break
        }
        if Bool.random(using: &random) {
            headers.append(("Content-Type", Array(["application/json", "application/x-www-form-urlencoded", "text/plain", "\u{1}"].randomElement(using: &random)!.utf8)))
        }
        var body: [UInt8] = []
        if method != "GET" && method != "HEAD" && Bool.random(using: &random) {
            switch Int.random(in: 0..<5, using: &random) {
            case 0: body = bytes(&random, count: Int.random(in: 1...2_000, using: &random))
            case 1: body = Array("{\"type\":\"OAuthApp\",\"action\":\"revoked\",\"organizationId\":\"fz\(text(&random, maxLength: 10))\"}".utf8)
            case 2: body = Array(String(repeating: "{\"a\":", count: Int.random(in: 1...5_000, using: &random)).utf8)
            case 3: body = Array("{\"webhookTimestamp\":\(Int64.random(in: Int64.min...Int64.max, using: &random))}".utf8)
            default:
                body = Array(repeating: UInt8(ascii: "x"), count: 300_000)
                oversized = true
            }
            // Half of the webhook bodies carry a valid signature, to get past the first check.
            if path == "/webhooks/linear" && Bool.random(using: &random) { headers.append(("linear-signature", target.signature(body))) }
        }
        let summary = "\(method) \(String(decoding: target_.prefix(120), as: UTF8.self)) (\(body.count) byte body)"
        return Request(bytes: RawSocket.request(method, target_, headers: headers, body: body), summary: summary, oversized: oversized)
    }

    /// Text mixing plain characters, percent-escapes (valid or not), and URL-special characters.
    static func text(_ random: inout SeededGenerator, maxLength: Int) -> String {
        let pieces = ["a", "Z", "0", "-", "_", ".", "~", "%", "%2F", "%00", "%ff", "%c3%28", "%zz", "..", "+", "=", "&", ";", "%20", "%E2%82%AC", "é"]
        return (0..<Int.random(in: 0...maxLength, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    static func bytes(_ random: inout SeededGenerator, count: Int) -> [UInt8] {
        // No CR or LF: header values stay one line (a broken request line is its own case).
        (0..<count).map { _ in UInt8.random(in: 0x20...0xff, using: &random) }
    }
}
