import ArgumentParser
import AsyncHTTPClient
import Foundation
import LinearOAuth
import NIOCore

/// `linear-oauth doctor`: checks a deployment end to end with the settings `serve` would use, and
/// prints a checklist. Exit 0 only when every check passes, 1 otherwise. Changes nothing at Linear;
/// like every command, it applies pending database migrations.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check a deployment end to end (database, keys, stored tokens, Linear's view of the client, redirect URI, secrets, clock).",
        discussion: """
            Reads the same settings as serve (flags, environment, --secrets-dir, .env). Checks: the database is reachable and
            migrated; the key ring loads and opens a sample of stored rows (rows under keys missing from the ring are counted);
            Linear accepts the client id and secret (a token call with a deliberately invalid code: invalid_grant means the
            credentials are good, invalid_client that they are not); the redirect URI serve would use; the webhook secret and API
            keys are set; the clock agrees with the Date of Linear's answer. Nothing is changed at Linear.
            Exit status: 0 every check passed, 1 a check failed.
            """)

    @Option(help: "The address serve listens on (for the redirect URI serve would use).")
    var host = "127.0.0.1"

    @Option(help: "The port serve listens on (for the redirect URI serve would use).")
    var port = 8080

    @OptionGroup var store: StoreOptions
    @OptionGroup var keys: KeyOptions
    @OptionGroup var linear: LinearOptions
    @OptionGroup var settings: ServiceSettings

    @OptionGroup var secrets: ServiceSecretOptions

    @Option(name: .customLong("max-clock-skew"), parsing: .unconditional, help: ArgumentHelp(
        "Seconds the clock may differ from Linear's. (env: LINEAR_OAUTH_MAX_CLOCK_SKEW; default: 30)", valueName: "seconds"))
    var maxClockSkew: Double?

    /// One line of the checklist.
    struct Check {
        var name: String
        var passed: Bool
        var detail: String
    }

    /// How many stored rows are decrypted as a sample.
    static let sampleSize = 20

    func run() async throws {
        var settings = try await self.settings.settings()
        // In a folder where serve --emulator ran, and no database is named: that development world.
        let development = CommandSettings.current(databaseURLFlag: store.databaseURL, environment: settings.environment)
        settings = development
        var checks: [Check] = []
        func report(_ check: Check) {
            checks.append(check)
            print("\(check.passed ? "  ok  " : "  FAIL") \(check.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(check.detail)")
        }
        print("linear-oauth doctor")

        // Keys first: they need no database.
        var keyRing: KeyRing?
        do {
            let ring = try keys.keyRing(settings)
            keyRing = ring
            let source = settings.string(KeyRing.keysFileVariable, flag: keys.encryptionKeysFile).map { "the file \($0)" } ?? KeyRing.keysVariable
            report(Check(name: "encryption keys", passed: true,
                         detail: "\(ring.keyIDs.count) key\(ring.keyIDs.count == 1 ? "" : "s") from \(source); new tokens are sealed under \"\(ring.activeKeyID)\""))
        } catch {
            report(Check(name: "encryption keys", passed: false, detail: ExitStatus.message(for: error)))
        }

        do {
            let url = try store.url(settings)
            try await store.withStore(settings) { tokenStore in
                report(Check(name: "database", passed: true, detail: "\(url): reachable, schema at version \(TokenSchema.latestVersion) (latest)"))
                guard let keyRing else {
                    report(Check(name: "stored tokens", passed: false, detail: "not checked: the key ring did not load"))
                    return
                }
                report(try await Self.checkRows(tokenStore, keyRing))
            }
        } catch {
            report(Check(name: "database", passed: false, detail: ExitStatus.message(for: error)))
        }

        let redirectURI = settings.string("LINEAR_REDIRECT_URI", flag: linear.redirectURI) ?? "http://\(host):\(port)/oauth/callback"
        report(Self.checkRedirectURI(redirectURI))

        do {
            var configuration = try linear.clientConfiguration(settings)
            configuration.redirectURI = redirectURI
            let skew = try settings.seconds("LINEAR_OAUTH_MAX_CLOCK_SKEW", flag: maxClockSkew, default: 30, name: "the clock skew allowed")
            let (credentials, clock) = await Self.checkLinear(configuration, maxSkew: skew.timeInterval)
            report(credentials)
            report(clock)
        } catch {
            report(Check(name: "Linear credentials", passed: false, detail: ExitStatus.message(for: error)))
        }

        let webhookSet = settings.string("LINEAR_WEBHOOK_SECRET", flag: secrets.webhookSecret) != nil
        report(Check(name: "webhook secret", passed: webhookSet,
                     detail: webhookSet ? "set" : "LINEAR_WEBHOOK_SECRET is not set: uninstall webhooks cannot be verified"))
        let apiKeyList = settings.list("LINEAR_OAUTH_API_KEYS", flag: secrets.apiKeys) ?? []
        let shortKeys = apiKeyList.filter { $0.count < 16 }.count
        report(Check(
            name: "API keys", passed: !apiKeyList.isEmpty && shortKeys == 0,
            detail: apiKeyList.isEmpty ? "LINEAR_OAUTH_API_KEYS is not set: nothing can call /v1 or sign in to the console"
                : shortKeys > 0 ? "\(shortKeys) of \(apiKeyList.count) keys are shorter than 16 characters: use long random keys"
                : "\(apiKeyList.count) key\(apiKeyList.count == 1 ? "" : "s") set"))

        let passed = checks.filter(\.passed).count
        print("\(passed) of \(checks.count) checks passed")
        if passed < checks.count { throw ExitCode(ExitStatus.failure) }
    }

    /// Counts rows under keys missing from the ring (all rows, metadata only) and opens a sample.
    static func checkRows(_ store: any TokenStore, _ keyRing: KeyRing) async throws -> Check {
        let known = Set(keyRing.keyIDs)
        var total = 0
        var missing: [String: Int] = [:]
        var cursor: String?
        while true {
            let page = try await store.metadata(matching: .all, after: cursor, limit: 1000)
            for row in page where !known.contains(row.keyID) { missing[row.keyID, default: 0] += 1 }
            total += page.count
            guard page.count == 1000, let last = page.last else { break }
            cursor = last.organizationID
        }
        let vault = TokenVault(store: store, keyRing: keyRing)
        var opened = 0
        var failures: [String] = []
        for row in try await store.metadata(matching: .all, after: nil, limit: sampleSize) where known.contains(row.keyID) {
            do {
                _ = try await vault.load(organizationID: row.organizationID)
                opened += 1
            } catch {
                failures.append(ExitStatus.message(for: error))
            }
        }
        let missingCount = missing.values.reduce(0, +)
        var detail = "\(total) row\(total == 1 ? "" : "s"); opened a sample of \(opened)"
        if missingCount > 0 {
            detail += "; \(missingCount) under keys not in the ring (" + missing.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
                + "): add those keys to the ring"
        }
        if let failure = failures.first { detail += "; \(failures.count) did not open: \(failure)" }
        return Check(name: "stored tokens", passed: missingCount == 0 && failures.isEmpty, detail: detail)
    }

    static func checkRedirectURI(_ redirectURI: String) -> Check {
        guard let url = URL(string: redirectURI), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty
        else {
            return Check(name: "redirect URI", passed: false, detail: "\(redirectURI) is not an http(s) URL")
        }
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())
        if scheme == "http", !loopback {
            return Check(name: "redirect URI", passed: false,
                         detail: "\(redirectURI): plain http to a non-local host; Linear sends the authorization code there: use https")
        }
        return Check(name: "redirect URI", passed: true, detail: "\(redirectURI) (it must be registered with the OAuth application in Linear)")
    }

    /// One token call with a deliberately invalid code: Linear's answer says whether it knows the
    /// client id and secret (`invalid_grant`: yes; `invalid_client`: no), and its `Date` header how far
    /// this clock is off.
    static func checkLinear(_ configuration: LinearClientConfiguration, maxSkew: TimeInterval) async -> (Check, Check) {
        let endpoint = configuration.apiURL + "/oauth/token"
        func form(_ fields: [(String, String)]) -> String {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            return fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
        }
        var fields = [
            ("grant_type", "authorization_code"), ("code", "linear-oauth-doctor-invalid-code"),
            ("redirect_uri", configuration.redirectURI ?? ""), ("code_verifier", PKCE().verifier),
        ]
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        switch configuration.clientAuthentication {
        case .formFields:
            fields += [("client_id", configuration.clientID), ("client_secret", configuration.clientSecret.value)]
        case .basic:
            let pair = Data("\(configuration.clientID):\(configuration.clientSecret.value)".utf8).base64EncodedString()
            request.headers.add(name: "Authorization", value: "Basic \(pair)")
        }
        request.body = .bytes(ByteBuffer(string: form(fields)))
        let status: UInt
        let body: String
        let date: String?
        do {
            (status, body, date) = try await LinearOptions.withHTTPClient { http in
                let response = try await http.execute(request, timeout: .seconds(15))
                let bytes = try await response.body.collect(upTo: 64 * 1024)
                return (response.status.code, String(buffer: bytes), response.headers.first(name: "Date"))
            }
        } catch {
            let check = Check(name: "Linear credentials", passed: false, detail: "Linear did not answer at \(endpoint) (\(type(of: error)))")
            return (check, Check(name: "clock", passed: false, detail: "not checked: Linear did not answer"))
        }
        let code = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["error"] as? String
        let credentials: Check
        switch (status, code) {
        case (400, "invalid_grant"?):
            credentials = Check(name: "Linear credentials", passed: true,
                                detail: "Linear knows client \(configuration.clientID) and its secret (it refused only the deliberately invalid code)")
        case (_, "invalid_client"?), (401, _):
            credentials = Check(name: "Linear credentials", passed: false,
                                detail: "Linear refused client \(configuration.clientID) or its secret (invalid_client): check LINEAR_CLIENT_ID and LINEAR_CLIENT_SECRET")
        default:
            credentials = Check(name: "Linear credentials", passed: false,
                                detail: "unexpected answer from \(endpoint): HTTP \(status)\(code.map { " \($0)" } ?? "")")
        }
        guard let date, let linearTime = parseHTTPDate(date) else {
            return (credentials, Check(name: "clock", passed: false, detail: "Linear's answer had no readable Date header"))
        }
        let skew = Date().timeIntervalSince(linearTime)
        let rounded = Int(skew.rounded())
        let clock = abs(skew) <= maxSkew
            ? Check(name: "clock", passed: true, detail: "within \(max(1, abs(rounded))) s of Linear's (allowed: \(Int(maxSkew)) s)")
            : Check(name: "clock", passed: false,
                    detail: "\(abs(rounded)) s \(skew > 0 ? "ahead of" : "behind") Linear's: token expiry and webhook freshness are misjudged; sync the clock (NTP)")
        return (credentials, clock)
    }

    /// An HTTP `Date` (IMF-fixdate, RFC 9110).
    static func parseHTTPDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}
