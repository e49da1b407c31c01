import Foundation
import LinearOAuth
import LinearOAuthTestSupport
import Testing

/// Runs the built `linear-oauth` binary with a clean environment, in a working directory of its own.
struct CLI {
    var environment: [String: String]
    var directory: String

    func run(_ arguments: String..., input: String = "", extra: [String: String] = [:]) async throws -> ProcessOutput {
        try await runProcess(
            BuiltProducts.url("linear-oauth"), arguments, environment: childEnvironment(environment.merging(extra) { $1 }),
            input: Data(input.utf8), currentDirectory: directory)
    }
}

/// The test's CLI on a store of `kind` with one key `k1`.
func withCLI(_ kind: StoreKind, _ body: (CLI, TestStore, String) async throws -> Void) async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let key = TestSecrets.keyEntry(id: "k1")
    try await withTestStore(kind) { test in
        try await body(
            CLI(environment: ["DATABASE_URL": test.databaseURL, "LINEAR_OAUTH_ENCRYPTION_KEYS": key], directory: directory.path),
            test, key)
    }
}

func importLine(_ installation: Installation) -> String {
    let scopes = installation.scopes.map { "\"\($0)\"" }.joined(separator: ",")
    return """
        {"organization_id":"\(installation.organizationID)","app_user_id":"\(installation.appUserID)",\
        "access_token":"\(installation.accessToken.value)","refresh_token":"\(installation.refreshToken.value)",\
        "expires_at":"\(RFC3339.format(installation.expiresAt))","scopes":[\(scopes)]\
        \(installation.clientID.map { ",\"client_id\":\"\($0)\"" } ?? "")}
        """
}

/// The output holds one line of error and no secret.
func expectOneLineError(_ output: ProcessOutput, status: Int32, mentioning words: [String], secrets: [String] = [],
                        warnings: Int = 0, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(output.status == status, "exit status", sourceLocation: sourceLocation)
    let lines = output.stderr.split(separator: "\n")
    // Warnings (a secret given as a flag) come first, a line each; then the one error line.
    #expect(lines.count == 1 + warnings, "one line on standard error", sourceLocation: sourceLocation)
    #expect(lines.prefix(warnings).allSatisfy { $0.hasPrefix("linear-oauth: warning: ") }, sourceLocation: sourceLocation)
    for word in words {
        #expect(output.stderr.contains(word), "stderr mentions \(word)", sourceLocation: sourceLocation)
    }
    // The check is computed first, so a failure prints no secret.
    let leaked = secrets.contains { output.stderr.contains($0) || output.stdout.contains($0) }
    #expect(!leaked, "a secret appeared in the output", sourceLocation: sourceLocation)
}

@Suite("linear-oauth command line", .capturesLogs)
struct CLITests {
    @Test("keys generate prints a new ID:BASE64 entry; a bad id is a usage error")
    func keysGenerate() async throws {
        let cli = CLI(environment: [:], directory: NSTemporaryDirectory())
        let output = try await cli.run("keys", "generate", "--id", "prod-1")
        #expect(output.status == 0)
        let entry = output.stdout.trimmingCharacters(in: .newlines)
        #expect(try KeyRing(parsing: entry).activeKeyID == "prod-1")
        let generated = try await cli.run("keys", "generate")
        #expect(try KeyRing(parsing: generated.stdout.trimmingCharacters(in: .newlines)).keyIDs.count == 1)
        expectOneLineError(try await cli.run("keys", "generate", "--id", "bad id"), status: 2, mentioning: ["invalid key id"])
    }

    @Test("import, list, show and delete; no output ever holds a token", arguments: StoreKind.allCases)
    func installationsLifecycle(kind: StoreKind) async throws {
        try await withCLI(kind) { cli, test, key in
            var installations = ["org-b", "org-a"].map { Fixtures.installation($0) }
            installations[0].clientID = "client-b"   // optional: org-a has none
            let secrets = installations.flatMap { [$0.accessToken.value, $0.refreshToken.value] } + [String(key.dropFirst(3))]
            let imported = try await cli.run("installations", "import", input: installations.map(importLine).joined(separator: "\n") + "\n")
            #expect(imported.status == 0)
            #expect(imported.stdout == "imported 2 installations\n")

            let table = try await cli.run("installations", "list")
            #expect(table.status == 0)
            let rows = table.stdout.split(separator: "\n")
            #expect(rows.count == 3)
            #expect(rows[0].hasPrefix("ORGANIZATION"))
            #expect(rows[1].hasPrefix("org-a") && rows[1].contains("app-user-org-a") && rows[1].contains("active") && rows[1].contains("k1"))
            #expect(rows[1].contains(RFC3339.format(installations[1].expiresAt)))

            let json = try await cli.run("installations", "list", "--json")
            let listed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
            #expect(listed.map { $0["organization_id"] as? String } == ["org-a", "org-b"])
            #expect(listed[0]["key_id"] as? String == "k1")
            #expect(listed[0]["status"] as? String == "active")
            #expect(listed[0]["expires_at"] as? String == RFC3339.format(installations[1].expiresAt))
            #expect(listed[0]["scopes"] as? [String] == ["read", "write"])

            let show = try await cli.run("installations", "show", "org-b")
            #expect(show.status == 0 && show.stdout.contains("app-user-org-b") && show.stdout.contains("key id:           k1"))
            let showJSON = try await cli.run("installations", "show", "org-b", "--json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(showJSON.stdout.utf8)) as? [String: Any])
            #expect(object["organization_id"] as? String == "org-b")
            #expect(object["client_id"] as? String == "client-b" && listed[0]["client_id"] == nil)
            #expect(show.stdout.contains("client id:        client-b"))

            let leaked = [imported, table, json, show, showJSON].contains { output in
                secrets.contains { output.stdout.contains($0) || output.stderr.contains($0) }
            }
            #expect(!leaked, "a token or key appeared in the output")
            // What the CLI wrote opens with the key: the tokens really are stored.
            let vault = TokenVault(store: test.store, keyRing: try KeyRing(parsing: key))
            #expect(try await vault.load(organizationID: "org-a")?.refreshToken == installations[1].refreshToken)

            let deleted = try await cli.run("installations", "delete", "org-b")
            #expect(deleted.status == 0 && deleted.stdout.contains("org-b"))
            expectOneLineError(try await cli.run("installations", "show", "org-b"), status: 3, mentioning: ["org-b", "not installed"])
            expectOneLineError(try await cli.run("installations", "delete", "org-b"), status: 3, mentioning: ["not installed"])
            #expect(try await test.store.listMetadata().map(\.organizationID) == ["org-a"])
        }
    }

    @Test("import is all or nothing: a bad line is named by its number and nothing is stored")
    func importAllOrNothing() async throws {
        try await withCLI(.sqlite) { cli, test, _ in
            let good = importLine(Fixtures.installation("org-1"))
            let secret = "lin_oauth_access_leakcheck"
            let cases: [(String, String)] = [
                (#"{"organization_id":"org-2","app_user_id":"u","access_token":"\#(secret)","refresh_token":"r"}"#, "missing field expires_at"),
                (#"{"organization_id":"org-2","app_user_id":"u","access_token":"\#(secret)","refresh_token":"r","expires_at":"tomorrow"}"#, "expires_at is not an RFC 3339 time"),
                (#"{"organization_id":"org-2","app_user_id":"u","access_token":7,"refresh_token":"r","expires_at":"2030-01-01T00:00:00Z"}"#, "access_token has the wrong type"),
                (#"{"organization_id":"org-2","app_user_id":"u","access_token":"","refresh_token":"r","expires_at":"2030-01-01T00:00:00Z"}"#, "access_token is empty"),
                ("not json \(secret)", "not valid JSON"),
                (good, "already appears on line 1"),
            ]
            for (bad, reason) in cases {
                let output = try await cli.run("installations", "import", input: "\(good)\n\n\(bad)\n")
                expectOneLineError(output, status: 1, mentioning: ["line 3", reason, "nothing was imported"], secrets: [secret])
            }
            #expect(try await test.store.listMetadata().isEmpty)
        }
    }

    @Test("commands that need keys refuse to run without them and name the variables")
    func noKeys() async throws {
        try await withCLI(.sqlite) { cli, _, _ in
            let output = try await cli.run("installations", "import", input: "", extra: ["LINEAR_OAUTH_ENCRYPTION_KEYS": ""])
            expectOneLineError(output, status: 2, mentioning: ["LINEAR_OAUTH_ENCRYPTION_KEYS", "LINEAR_OAUTH_ENCRYPTION_KEYS_FILE"])
            let rotate = try await cli.run("keys", "rotate", extra: ["LINEAR_OAUTH_ENCRYPTION_KEYS": ""])
            expectOneLineError(rotate, status: 2, mentioning: ["no encryption keys configured"])
        }
    }

    @Test("bad keys are usage errors that name the problem and never print key bytes")
    func badKeys() async throws {
        try await withCLI(.sqlite) { cli, _, key in
            let base64 = String(key.dropFirst(3))
            let short = Data(repeating: 1, count: 31).base64EncodedString()
            let cases: [(String, [String])] = [
                ("k1:%%%", ["\"k1\"", "not valid base64"]),
                ("k1:\(short)", ["\"k1\"", "31 bytes", "32"]),
                ("\(key),k1:\(base64)", ["\"k1\"", "more than once"]),
                (base64, ["entry 1", "ID:BASE64"]),
            ]
            for (keys, words) in cases {
                let output = try await cli.run("keys", "rotate", extra: ["LINEAR_OAUTH_ENCRYPTION_KEYS": keys])
                expectOneLineError(output, status: 2, mentioning: words, secrets: [base64, short])
            }
            let flag = try await cli.run("keys", "rotate", "--encryption-keys", "k9:\(short)")
            expectOneLineError(flag, status: 2, mentioning: ["\"k9\"", "--encryption-keys shows in the process list"], secrets: [short], warnings: 1)
        }
    }

    @Test("a key file readable by others is refused; with mode 0600 it is used")
    func keyFile() async throws {
        try await withCLI(.sqlite) { cli, _, key in
            let path = cli.directory + "/keys"
            FileManager.default.createFile(atPath: path, contents: Data("\(key)\n".utf8), attributes: [.posixPermissions: 0o640])
            let environment = ["LINEAR_OAUTH_ENCRYPTION_KEYS": "", "LINEAR_OAUTH_ENCRYPTION_KEYS_FILE": path]
            let refused = try await cli.run("installations", "import", input: "", extra: environment)
            expectOneLineError(refused, status: 2, mentioning: [path, "640", "chmod 600"], secrets: [String(key.dropFirst(3))])
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
            let accepted = try await cli.run(
                "installations", "import", input: importLine(Fixtures.installation("org-f")), extra: environment)
            #expect(accepted.status == 0 && accepted.stdout == "imported 1 installation\n")
        }
    }

    @Test("keys rotate moves every row to the active key, resumes, and names a row it cannot open",
          arguments: StoreKind.allCases)
    func keysRotate(kind: StoreKind) async throws {
        try await withCLI(kind) { cli, test, k1 in
            let installations = Fixtures.organizations(5, prefix: "rot").map { Fixtures.installation($0) }
            #expect(try await cli.run("installations", "import", input: installations.map(importLine).joined(separator: "\n")).status == 0)
            let k2 = TestSecrets.keyEntry(id: "k2")
            let rotated = try await cli.run("keys", "rotate", "--batch-size", "2", extra: ["LINEAR_OAUTH_ENCRYPTION_KEYS": "\(k2),\(k1)"])
            #expect(rotated.status == 0)
            #expect(rotated.stdout == "re-encrypted 5 installations under key k2\n")
            #expect(try await test.store.listMetadata().allSatisfy { $0.keyID == "k2" })
            let again = try await cli.run("keys", "rotate", extra: ["LINEAR_OAUTH_ENCRYPTION_KEYS": "\(k2),\(k1)"])
            #expect(again.stdout == "re-encrypted 0 installations under key k2\n")

            // A ring that lost k2 cannot open the rows: the error names the organization and the key id.
            let k3 = TestSecrets.keyEntry(id: "k3")
            let lost = try await cli.run("keys", "rotate", extra: ["LINEAR_OAUTH_ENCRYPTION_KEYS": "\(k3),\(k1)"])
            expectOneLineError(lost, status: 1, mentioning: ["rot-000", "\"k2\""], secrets: [String(k2.dropFirst(3))])

            // A tampered ciphertext names the organization and the column.
            var row = try #require(try await test.store.load(organizationID: "rot-002"))
            row.refreshToken[row.refreshToken.count - 1] ^= 0xFF
            try await test.store.save(row)
            let k4 = TestSecrets.keyEntry(id: "k4")
            let tampered = try await cli.run("keys", "rotate", "--batch-size", "2", extra: ["LINEAR_OAUTH_ENCRYPTION_KEYS": "\(k4),\(k2)"])
            expectOneLineError(tampered, status: 1, mentioning: ["rot-002", "refresh_token", "failed authentication"])
            // The batches before the tampered row committed; the rest stay for the next run.
            #expect(try await test.store.listMetadata().map(\.keyID) == ["k4", "k4", "k2", "k2", "k2"])
        }
    }

    @Test("migrate is idempotent and the default store is ./linear-oauth.sqlite")
    func migrateAndDefaultStore() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let cli = CLI(environment: [:], directory: directory.path)
        for _ in 0..<2 {
            let output = try await cli.run("migrate")
            #expect(output.status == 0 && output.stdout == "schema is up to date\n")
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.path + "/linear-oauth.sqlite")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let list = try await cli.run("installations", "list")
        #expect(list.status == 0 && list.stdout.contains("no installations"))
    }

    @Test("an unreachable PostgreSQL fails at once with a clear line, not a hang, and no password")
    func unreachablePostgres() async throws {
        let port = try freePort()  // nothing listens there
        let cli = CLI(environment: [:], directory: NSTemporaryDirectory())
        let output = try await cli.run("installations", "list", "--database-url", "postgres://app:hunter2@127.0.0.1:\(port)/db?sslmode=disable")
        expectOneLineError(
            output, status: 1, mentioning: ["cannot connect to 127.0.0.1:\(port) as app", "--database-url with a password shows in the process list"],
            secrets: ["hunter2"], warnings: 1)
    }

    @Test("secrets given as flags are used, with a one-line warning each that they show in the process list")
    func secretFlagsWarn() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let cli = CLI(environment: [:], directory: directory.path)
        let apiKey = TestSecrets.record("flag-api-key-\(UUID().uuidString)", kind: "api-key")
        let webhookSecret = TestSecrets.record("flag-webhook-\(UUID().uuidString)", kind: "webhook-secret")
        let clientSecret = TestSecrets.record("flag-client-\(UUID().uuidString)", kind: "client-secret")
        // serve stops at the first missing setting (the client id), after warning about each secret flag.
        let serve = try await cli.run(
            "serve", "--port", "0", "--api-keys", apiKey, "--webhook-secret", webhookSecret, "--client-secret", clientSecret,
            extra: ["LINEAR_OAUTH_ENCRYPTION_KEYS": Fixtures.entry("k1")])
        expectOneLineError(
            serve, status: 2, mentioning: ["LINEAR_CLIENT_ID", "--api-keys", "--webhook-secret", "--client-secret", "LINEAR_OAUTH_API_KEYS"],
            secrets: [apiKey, webhookSecret, clientSecret], warnings: 3)
        // Without secret flags: no warning.
        expectOneLineError(try await cli.run("serve", "--port", "0", extra: ["LINEAR_OAUTH_API_KEYS": apiKey]),
                           status: 2, mentioning: ["LINEAR_WEBHOOK_SECRET"], secrets: [apiKey])
    }

    @Test("usage and configuration errors exit 2 with one line")
    func usageErrors() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let cli = CLI(environment: [:], directory: directory.path)
        expectOneLineError(try await cli.run("installations", "list", extra: ["DATABASE_URL": "mysql://root:hunter2@db/x"]),
                           status: 2, mentioning: ["DATABASE_URL", "mysql"], secrets: ["hunter2"])
        expectOneLineError(try await cli.run("installations", "list", "--database-url", "redis://x"),
                           status: 2, mentioning: ["redis"])
        expectOneLineError(try await cli.run("frobnicate"), status: 2, mentioning: ["frobnicate"])
        expectOneLineError(try await cli.run("installations", "show"), status: 2, mentioning: ["organization"])
        expectOneLineError(try await cli.run("migrate", "--lock-timeout", "0"), status: 2, mentioning: ["lock timeout"])
        expectOneLineError(try await cli.run("migrate", "--database-connections", "0"), status: 2, mentioning: ["LINEAR_OAUTH_DATABASE_CONNECTIONS"])
        expectOneLineError(try await cli.run("migrate", extra: ["LINEAR_OAUTH_DATABASE_CONNECTIONS": "many"]), status: 2,
                           mentioning: ["LINEAR_OAUTH_DATABASE_CONNECTIONS"])
        // A negative number is the option's value (not a missing one), and serve names a bad setting
        // before it asks for the secrets it lacks, flag or variable.
        expectOneLineError(try await cli.run("migrate", "--database-connections", "-3"), status: 2,
                           mentioning: ["LINEAR_OAUTH_DATABASE_CONNECTIONS", "negative"])
        expectOneLineError(try await cli.run("keys", "rotate", "--batch-size", "-5"), status: 2, mentioning: ["--batch-size", "positive"])
        for (arguments, environment, mentioning) in [
            (["--token-cache-size", "0"], [:], ["LINEAR_OAUTH_TOKEN_CACHE_SIZE", "at least 1"]),
            (["--token-cache-size", "-1"], [:], ["LINEAR_OAUTH_TOKEN_CACHE_SIZE", "negative"]),
            (["--token-cache-size", "abc"], [:], ["--token-cache-size", "abc"]),
            ([], ["LINEAR_OAUTH_TOKEN_CACHE_SIZE": "abc"], ["LINEAR_OAUTH_TOKEN_CACHE_SIZE", "whole number"]),
            ([], ["LINEAR_OAUTH_TOKEN_CACHE_SIZE": "0"], ["LINEAR_OAUTH_TOKEN_CACHE_SIZE", "at least 1"]),
            (["--max-connections", "0"], [:], ["LINEAR_OAUTH_MAX_CONNECTIONS", "at least 1"]),
            (["--idle-timeout", "-1"], [:], ["idle time-out", "positive"]),
        ] as [([String], [String: String], [String])] {
            let output = try await runProcess(
                BuiltProducts.url("linear-oauth"), ["serve", "--port", "0"] + arguments, environment: childEnvironment(environment),
                currentDirectory: directory.path)
            expectOneLineError(output, status: 2, mentioning: mentioning)
        }
    }

    @Test("every command's help names its flags and the environment variables behind them")
    func help() async throws {
        let cli = CLI(environment: [:], directory: NSTemporaryDirectory())
        let commands: [[String]] = [
            [], ["migrate"], ["keys"], ["keys", "generate"], ["keys", "rotate"], ["installations"],
            ["installations", "import"], ["installations", "list"], ["installations", "show"], ["installations", "delete"],
            ["installations", "reinstate"], ["installations", "refresh"], ["installations", "revoke"], ["serve"], ["token"],
        ]
        for command in commands {
            let output = try await runProcess(
                BuiltProducts.url("linear-oauth"), command + ["--help"], environment: childEnvironment([:]))
            #expect(output.status == 0)
            #expect(output.stdout.contains("USAGE: linear-oauth"))
        }
        let rotate = try await cli.run("keys", "rotate", "--help")
        for name in ["--database-url", "DATABASE_URL", "--encryption-keys", "LINEAR_OAUTH_ENCRYPTION_KEYS",
                     "--encryption-keys-file", "LINEAR_OAUTH_ENCRYPTION_KEYS_FILE", "--lock-timeout", "LINEAR_OAUTH_LOCK_TIMEOUT"] {
            #expect(rotate.stdout.contains(name))
        }
        // serve: every setting of the operator's safety, as a flag and as a variable.
        let serve = try await cli.run("serve", "--help")
        for name in [
            "--deauthorization-threshold", "LINEAR_OAUTH_DEAUTHORIZATION_THRESHOLD", "--deauthorization-window", "LINEAR_OAUTH_DEAUTHORIZATION_WINDOW",
            "--install-rate-limit", "LINEAR_OAUTH_INSTALL_RATE_LIMIT", "--trust-proxy", "LINEAR_OAUTH_TRUST_PROXY",
            "--max-pending-installs", "LINEAR_OAUTH_MAX_PENDING_INSTALLS", "--idle-timeout", "LINEAR_OAUTH_IDLE_TIMEOUT",
            "--header-timeout", "LINEAR_OAUTH_HEADER_TIMEOUT", "--max-connections", "LINEAR_OAUTH_MAX_CONNECTIONS",
            "--database-connections", "LINEAR_OAUTH_DATABASE_CONNECTIONS",
            "--uninstall-webhook-tolerance", "LINEAR_OAUTH_UNINSTALL_WEBHOOK_TOLERANCE",
            "--prompt-consent", "--no-prompt-consent", "LINEAR_OAUTH_PROMPT_CONSENT", "--scopes", "LINEAR_OAUTH_SCOPES",
        ] {
            #expect(serve.stdout.contains(name), "serve --help: \(name)")
        }
    }
}
