import Foundation
import NIOCore
import NIOHTTP1
import LinearEmulator
import LinearOAuth
@testable import LinearOAuthServer
import LinearOAuthTestSupport
import Testing

/// A signed-in operator's browser, without a browser: cookies kept by hand, redirects read.
private struct ConsoleBrowser {
    let url: String
    var session: String?

    /// The value of a `Set-Cookie` header (`name=value`), without its attributes.
    static func cookiePair(_ header: String?) -> String? {
        header.flatMap { $0.split(separator: ";").first.map(String.init) }
    }

    /// The value of a hidden form field.
    static func field(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
        return String(html[range.upperBound...].prefix(while: { $0 != "\"" }))
    }

    /// Opens the sign-in form and posts `key` with it.
    static func signIn(_ url: String, key: String, withCookie: Bool = true) async throws -> HTTPAnswer {
        let form = try await RawHTTP.request(.GET, url + "/console/sign-in")
        #expect(form.status == 200)
        let cookie = try #require(cookiePair(form.header("set-cookie")))
        let token = try #require(field("sign_in", in: form.text))
        return try await RawHTTP.form(
            url + "/console/sign-in", ["sign_in": token, "api_key": key], headers: withCookie ? [("Cookie", cookie)] : [])
    }

    static func signedIn(_ url: String) async throws -> ConsoleBrowser {
        let answer = try await signIn(url, key: serverAPIKey)
        #expect(answer.status == 303 && answer.header("location") == "/")
        let cookie = try #require(cookiePair(answer.header("set-cookie")))
        #expect(cookie.hasPrefix(ConsoleSessions.cookieName + "="))
        return ConsoleBrowser(url: url, session: cookie)
    }

    func get(_ path: String) async throws -> HTTPAnswer {
        try await RawHTTP.request(.GET, url + path, headers: session.map { [("Cookie", $0)] } ?? [])
    }

    /// Posts a form from `page`, with the page's CSRF token unless told otherwise.
    func post(_ path: String, csrfFrom page: HTTPAnswer?, fields: [String: String] = [:]) async throws -> HTTPAnswer {
        var fields = fields
        if let page, let csrf = Self.field("csrf", in: page.text) { fields["csrf"] = csrf }
        return try await RawHTTP.form(url + path, fields, headers: session.map { [("Cookie", $0)] } ?? [])
    }
}

@Suite("The operator console", .capturesLogs)
struct ConsoleTests {
    @Test("nothing without a session; sign-in takes only an API key, with its form's cookie; the session cookie is HttpOnly, SameSite=Strict, Secure over https; a tampered cookie is refused; sign-out clears it")
    func sessions() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            try await withServer(fixture) { url, _ async throws in
                for path in ["/", "/console/installations", "/console/events", "/console/installations/org-acme", "/console/installations/org-acme/revoke"] {
                    let answer = try await RawHTTP.request(.GET, url + path)
                    #expect(answer.status == 303 && answer.header("location") == "/console/sign-in", "\(path)")
                }
                // A form that changes something, without a session: nothing happens.
                try await fixture.install("org-acme", expiresIn: 3600)
                let before = try await fixture.test.store.load(organizationID: "org-acme")
                let anonymous = try await RawHTTP.form(url + "/console/installations/org-acme/revoke", ["confirm": "yes"])
                #expect(anonymous.status == 303 && anonymous.header("location") == "/console/sign-in")
                #expect(try await fixture.test.store.load(organizationID: "org-acme") == before)

                let wrong = try await ConsoleBrowser.signIn(url, key: "not-a-key")
                #expect(wrong.status == 401 && wrong.text.contains("not one of the service&#39;s API keys"))
                #expect(!(wrong.header("set-cookie") ?? "").contains(ConsoleSessions.cookieName + "="))
                let noCookie = try await ConsoleBrowser.signIn(url, key: serverAPIKey, withCookie: false)
                #expect(noCookie.status == 403 && !(noCookie.header("set-cookie") ?? "").contains(ConsoleSessions.cookieName + "="))

                let signedIn = try await ConsoleBrowser.signIn(url, key: serverAPIKey)
                let setCookie = try #require(signedIn.header("set-cookie"))
                #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Path=/"))
                #expect(!setCookie.contains("Secure"))
                #expect(!setCookie.contains(serverAPIKey))
                let browser = try await ConsoleBrowser.signedIn(url)
                let overview = try await browser.get("/")
                #expect(overview.status == 200 && overview.text.contains("<h1>Overview</h1>"))
                #expect(try await browser.get("/console/events").text.contains("Nothing yet on this instance"))
                #expect(overview.header("content-security-policy")?.contains("default-src 'none'") == true)
                #expect(overview.header("x-frame-options") == "DENY" && overview.header("cache-control") == "no-store")
                #expect(!overview.text.contains("<script"))

                // A changed MAC (its first character: the last one's low bits are base64 padding and may
                // decode to the same bytes) and a changed expiry are both refused.
                var tampered = browser
                var parts = browser.session!.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                let mac = parts[4]
                parts[4] = (mac.hasPrefix("A") ? "B" : "A") + mac.dropFirst()
                tampered.session = parts.joined(separator: ".")
                #expect(try await tampered.get("/").status == 303)
                var later = browser.session!.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                later[1] = String((Int(later[1]) ?? 0) + 3600)
                tampered.session = later.joined(separator: ".")
                #expect(try await tampered.get("/").status == 303)

                let out = try await browser.post("/console/sign-out", csrfFrom: overview)
                #expect(out.status == 303 && out.header("location") == "/console/sign-in")
                #expect(out.header("set-cookie")?.contains("Max-Age=0") == true)
            }
            try await withServer(fixture, configure: { $0.publicURL = "https://oauth.example.com" }) { url, _ async throws in
                let signedIn = try await ConsoleBrowser.signIn(url, key: serverAPIKey)
                #expect(signedIn.header("set-cookie")?.contains("; Secure") == true)
            }
        }
    }

    @Test("sessions are signed per API key and expire; CSRF tokens belong to their session")
    func signedSessions() throws {
        let keys = [Secret("first-key-0123456789"), Secret("second-key-0123456789")]
        let sessions = ConsoleSessions(apiKeys: keys, lifetime: 3600, secure: false)
        let now = Date()
        #expect(sessions.keyIndex(forAPIKey: "second-key-0123456789") == 1)
        #expect(sessions.keyIndex(forAPIKey: "second-key-012345678") == nil)
        let issued = sessions.issue(keyIndex: 1, now: now)
        #expect(sessions.session(fromCookie: issued.cookie, now: now) == issued.session)
        #expect(!issued.cookie.contains("second-key"))
        // Expired.
        #expect(sessions.session(fromCookie: issued.cookie, now: now.addingTimeInterval(3601)) == nil)
        // The key that signed it was removed: its sessions end.
        let rotated = ConsoleSessions(apiKeys: [keys[0]], lifetime: 3600, secure: false)
        #expect(rotated.session(fromCookie: issued.cookie, now: now) == nil)
        // A longer expiry written into the cookie breaks its MAC.
        var parts = issued.cookie.split(separator: ".").map(String.init)
        parts[1] = String(Int(parts[1])! + 86_400)
        #expect(sessions.session(fromCookie: parts.joined(separator: "."), now: now) == nil)
        // CSRF.
        let other = sessions.issue(keyIndex: 0, now: now)
        #expect(sessions.isValid(csrfToken: sessions.csrfToken(issued.session), for: issued.session))
        #expect(!sessions.isValid(csrfToken: sessions.csrfToken(other.session), for: issued.session))
        #expect(!sessions.isValid(csrfToken: nil, for: issued.session))
        #expect(!sessions.isValid(csrfToken: "not base64 !", for: issued.session))
        #expect(ConsoleRoutes.parseForm("a=1+2&b=%3Cx%3E&c") == ["a": "1 2", "b": "<x>", "c": ""])
    }

    @Test("overview, search, pages, an installation's page; refresh, reinstate and revoke (confirmed, CSRF-checked); events; names escaped; no token shown")
    func installationsAndActions() async throws {
        try await withManagerFixture(.sqlite) { fixture in
            let grant = try await fixture.install("org-acme", expiresIn: 3600)
            var acme = try #require(try await fixture.vault.load(organizationID: "org-acme"))
            acme.organizationName = "Acme <script>alert(1)</script>"
            acme.urlKey = "acme"
            try await fixture.vault.save(acme)
            // 60 more, to page through.
            try await fixture.vault.save((0..<60).map { index in
                var installation = Fixtures.installation(String(format: "org-bulk-%03d", index), expiresIn: 7200)
                installation.organizationName = "Bulk \(index)"
                installation.urlKey = "bulk-\(index)"
                return installation
            })
            try await withServer(fixture) { url, _ async throws in
                let browser = try await ConsoleBrowser.signedIn(url)
                let overview = try await browser.get("/")
                #expect(overview.text.contains("<span class=\"number\">61</span><span>installations</span>"))
                #expect(overview.text.contains("/console/installations/org-acme"), "the soonest expiry is listed")
                #expect(!overview.text.contains("<script>alert(1)</script>") && overview.text.contains("&lt;script&gt;"))
                #expect(!overview.text.contains("getting-started"), "the getting-started panel is for development only")

                let found = try await browser.get("/console/installations?q=ACME")
                #expect(found.status == 200 && found.text.contains("org-acme") && !found.text.contains("org-bulk-"))
                #expect(found.text.contains("Acme &lt;script&gt;alert(1)&lt;/script&gt;"))
                #expect(try await browser.get("/console/installations?q=nothing-like-it").text.contains("No installation matches"))
                #expect(try await browser.get("/console/installations?q=%00").status == 400)
                let first = try await browser.get("/console/installations")
                #expect(first.text.components(separatedBy: "<tr><td><a href=").count - 1 == ConsoleRoutes.pageSize)
                let next = try #require(first.text.range(of: "href=\"/console/installations?after=").map { range in
                    String(first.text[first.text.index(range.lowerBound, offsetBy: 6)...].prefix(while: { $0 != "\"" }))
                })
                let second = try await browser.get(next)
                #expect(second.text.components(separatedBy: "<tr><td><a href=").count - 1 == 61 - ConsoleRoutes.pageSize)
                #expect(!second.text.contains("Next page"))

                // One installation, by organization id or URL key.
                #expect(try await browser.get("/console/installations/acme").header("location") == "/console/installations/org-acme")
                let page = try await browser.get("/console/installations/org-acme")
                #expect(page.status == 200 && page.text.contains("<code>org-acme</code>") && page.text.contains("acme"))
                #expect(!page.text.contains(grant.accessToken) && !page.text.contains(grant.refreshToken!))
                let missing = try await browser.get("/console/installations/org-acmee")
                #expect(missing.status == 404 && missing.text.contains("Did you mean org-acme"))

                // Refresh now: without the CSRF token nothing happens; with it, new tokens.
                let refused = try await browser.post("/console/installations/org-acme/refresh", csrfFrom: nil)
                #expect(refused.status == 403)
                #expect(try await fixture.vault.load(organizationID: "org-acme")?.accessToken == Secret(grant.accessToken))
                let refreshed = try await browser.post("/console/installations/org-acme/refresh", csrfFrom: page)
                #expect(refreshed.status == 303 && refreshed.header("location") == "/console/installations/org-acme?done=refreshed")
                let after = try #require(try await fixture.vault.load(organizationID: "org-acme"))
                #expect(after.accessToken != Secret(grant.accessToken))
                #expect(try await browser.get("/console/installations/org-acme?done=refreshed").text.contains("Refreshed"))

                // Reinstate an active one: nothing to do.
                let reinstate = try await browser.post("/console/installations/org-acme/reinstate", csrfFrom: page)
                #expect(reinstate.header("location") == "/console/installations/org-acme?done=already_active")

                // Revoke: a confirmation page first; a post without the confirmation goes back to it.
                let confirm = try await browser.get("/console/installations/org-acme/revoke")
                #expect(confirm.status == 200 && confirm.text.contains("Revoke and delete"))
                let unconfirmed = try await browser.post("/console/installations/org-acme/revoke", csrfFrom: confirm)
                #expect(unconfirmed.header("location") == "/console/installations/org-acme/revoke")
                #expect(try await fixture.test.store.load(organizationID: "org-acme") != nil)
                let revoked = try await browser.post("/console/installations/org-acme/revoke", csrfFrom: confirm, fields: ["confirm": "yes"])
                #expect(revoked.status == 303 && revoked.header("location") == "/console/installations?done=revoked")
                #expect(try await fixture.test.store.load(organizationID: "org-acme") == nil)
                // The same form again (a double submit): nothing was installed, and it says so.
                let again = try await browser.post("/console/installations/org-acme/revoke", csrfFrom: confirm, fields: ["confirm": "yes"])
                #expect(again.status == 404 && again.text.contains("was not installed"))

                let events = try await browser.get("/console/events")
                #expect(events.text.contains("refresh") && events.text.contains("success") && events.text.contains("revoke"))
                #expect(!events.text.contains(after.accessToken.value))
            }
        }
    }

    @Test("the event log keeps the newest entries, counts refreshes of the last hour by outcome, and never holds more than its capacity")
    func eventLog() {
        let log = ConsoleEventLog(capacity: 3)
        let now = Date()
        log.record(.refreshed(organizationID: "org-1", expiresAt: now), at: now.addingTimeInterval(-4000))
        log.record(.refreshed(organizationID: "org-2", expiresAt: now), at: now.addingTimeInterval(-30))
        log.record(.refreshFailed(organizationID: "org-3", reason: "http_503"), at: now.addingTimeInterval(-20))
        log.record(.reauthorizationRequired(organizationID: "org-4", reason: "invalid_grant"), at: now.addingTimeInterval(-10))
        log.record(.init(time: now, organizationID: nil, event: "webhook", outcome: "accepted_200"))
        #expect(log.recent().map(\.organizationID) == [nil, "org-4", "org-3"])
        #expect(log.refreshesInLastHour(now: now) == ["success": 1, "temporary_failure": 1, "reauthorization_required": 1])
        #expect(log.outcomes(of: "webhook") == ["accepted_200": 1])
    }
}

@Suite("Workspaces by URL key in the API, and the install pages", .capturesLogs)
struct URLKeyAPITests {
    @Test("the API takes a URL key wherever it takes an organization id; several installations with one URL key are 409")
    func urlKeys() async throws {
        var settings = EmulatorSettings()
        settings.autoApprove = true
        try await withManagerFixture(.sqlite, settings: settings) { fixture in
            try await withServer(fixture) { url, _ async throws in
                // A real install through the flow records the name and URL key.
                let start = try await RawHTTP.request(.GET, url + "/oauth/authorize")
                let consent = try await RawHTTP.request(.GET, try #require(start.header("location")))
                let done = try await RawHTTP.request(.GET, try #require(consent.header("location")))
                #expect(done.status == 200)
                for text in ["Acme (emulated)", "<code>org-acme</code>", "<code>acme</code>", "linear-oauth token org-acme",
                             "/v1/installations/org-acme/access-token", "href=\"/\""] {
                    #expect(done.text.contains(text), "the success page names \(text)")
                }
                let auth = [("Authorization", "Bearer \(serverAPIKey)")]
                let metadata = try await RawHTTP.request(.GET, url + "/v1/installations/acme", headers: auth)
                #expect(metadata.status == 200 && metadata.json["organization_id"] as? String == "org-acme")
                #expect(metadata.json["url_key"] as? String == "acme" && metadata.json["organization_name"] as? String == "Acme (emulated)")
                let token = try await RawHTTP.request(.GET, url + "/v1/installations/acme/access-token", headers: auth)
                #expect(token.status == 200 && token.json["organization_id"] as? String == "org-acme")
                let refreshed = try await RawHTTP.request(.POST, url + "/v1/installations/acme/refresh", headers: auth)
                #expect(refreshed.status == 200 && refreshed.json["organization_id"] as? String == "org-acme")
                let unknown = try await RawHTTP.request(.GET, url + "/v1/installations/acmee/access-token", headers: auth)
                #expect(unknown.status == 404 && unknown.json["error"] as? String == "not_installed")

                // Two installations with one URL key (a workspace renamed its key, another took it).
                var stale = Fixtures.installation("org-stale", expiresIn: 3600)
                stale.urlKey = "acme"
                try await fixture.vault.save(stale)
                let ambiguous = try await RawHTTP.request(.GET, url + "/v1/installations/acme", headers: auth)
                #expect(ambiguous.status == 409 && ambiguous.json["error"] as? String == "ambiguous_organization")
                #expect(Set(ambiguous.json["candidates"] as? [String] ?? []) == ["org-acme", "org-stale"])
                for (method, path) in [(HTTPMethod.GET, "/access-token"), (.POST, "/refresh"), (.POST, "/reinstate"), (.DELETE, "")] {
                    let answer = try await RawHTTP.request(method, url + "/v1/installations/acme" + path, headers: auth)
                    #expect(answer.status == 409 && answer.json["error"] as? String == "ambiguous_organization", "\(method) \(path)")
                }
                #expect(try await fixture.test.store.load(organizationID: "org-stale") != nil, "nothing was deleted")
                #expect(try await RawHTTP.request(.GET, url + "/v1/installations/org-acme/access-token", headers: auth).status == 200)
                let deleted = try await RawHTTP.request(.DELETE, url + "/v1/installations/other-key-spelling", headers: auth)
                #expect(deleted.status == 404)
            }
        }
    }
}

@Suite("The listing's hand-written JSON", .capturesLogs)
struct MetadataJSONTests {
    @Test("is the object JSONEncoder writes, with every optional present or absent and awkward text")
    func sameAsEncoder() throws {
        var full = InstallationMetadata(
            organizationID: "org-\"1\"", appUserID: "user/1 \u{1F600}", expiresAt: Date(timeIntervalSince1970: 1_800_000_000.123),
            scopes: ["read", "write"], status: .reauthorizationRequired, keyID: "k1", lastRefreshAt: Date(timeIntervalSince1970: 1_799_999_000),
            lastError: "invalid_grant\n\t\\", refreshFailures: 3, clientID: "client", organizationName: "Acme <&> \u{0001}", urlKey: "acme")
        full.createdAt = Date(timeIntervalSince1970: 1_700_000_000)
        full.updatedAt = Date(timeIntervalSince1970: 1_700_000_001)
        full.installedAt = Date(timeIntervalSince1970: 1_700_000_002)
        let bare = InstallationMetadata(organizationID: "org-2", appUserID: "user-2", expiresAt: Date(timeIntervalSince1970: 1_800_000_000))
        func json(_ metadata: InstallationMetadata) -> String {
            var out = ByteBuffer()
            MetadataJSON.append(metadata, to: &out)
            return String(buffer: out)
        }
        for metadata in [full, bare] {
            let ours = json(metadata)
            let encoded = try RFC3339.jsonEncoder().encode(metadata)
            let a = try #require(try JSONSerialization.jsonObject(with: Data(ours.utf8)) as? NSDictionary)
            let b = try #require(try JSONSerialization.jsonObject(with: encoded) as? NSDictionary)
            #expect(a == b, "\(ours)")
        }
        let plain = json(bare)
        #expect(plain == String(decoding: try RFC3339.jsonEncoder().encode(bare), as: UTF8.self), "byte for byte, for plain text")
        let page = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: MetadataJSON.page([bare, bare], next: "org-2")).utf8)) as? [String: Any])
        #expect((page["installations"] as? [Any])?.count == 2 && page["next"] as? String == "org-2")
    }
}

@Suite("JSON written into raw memory")
struct JSONWriterTests {
    @Test("strings come out as JSONText writes them, every ASCII byte and some Unicode, and parse back; escapes as JSON spells them")
    func sameAsJSONText() throws {
        var texts = (0..<128).map { String(UnicodeScalar(UInt8($0))) }
        texts += ["", "plain", "quote \" and \\ backslash", "line\nbreak\ttab\r", "é ✓ \u{1F600}", String(repeating: "\u{0001}", count: 50)]
        for text in texts {
            var expected = ""
            JSONText.appendString(text, to: &expected)
            var buffer = ByteBuffer()
            buffer.writeJSON(bound: JSONWriter.bound(text)) { $0.string(text) }
            let written = String(buffer: buffer)
            #expect(written == expected, "\(Array(text.utf8))")
            let parsed = try JSONSerialization.jsonObject(with: Data("[\(written)]".utf8)) as? [String]
            #expect(parsed == [text], "\(Array(text.utf8))")
        }
        // JSONText shares JSONWriter's escaping, so spell a few out.
        for (text, json) in [("a\"b", #""a\"b""#), ("a\\b", #""a\\b""#), ("\n\r\t", #""\n\r\t""#), ("\u{1}\u{1F}", #""\u0001\u001f""#)] {
            var out = ""
            JSONText.appendString(text, to: &out)
            #expect(out == json)
        }
    }

    @Test("times are written as RFC3339.format writes them, integers in decimal")
    func timesAndIntegers() {
        var buffer = ByteBuffer()
        let date = Date(timeIntervalSince1970: 1_800_000_000.25)
        buffer.writeJSON(bound: JSONWriter.timeBound + JSONWriter.integerBound + 1) { json in
            json.time(date)
            json.byte(UInt8(ascii: ","))
            json.integer(-1234567890123)
        }
        #expect(String(buffer: buffer) == "\"\(RFC3339.format(date))\",-1234567890123")
    }
}

@Suite("RFC 3339 times, written by hand")
struct RFC3339FormatTests {
    @Test("match ISO8601DateFormatter in UTC, with milliseconds only when there are some, and read back the same")
    func sameAsFormatter() throws {
        let whole = ISO8601DateFormatter()
        whole.formatOptions = [.withInternetDateTime]
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SystemRandomNumberGenerator()
        // From 1600 (Foundation's calendar is Julian before 1582, gmtime's proleptic Gregorian) to 9999.
        var seconds: [TimeInterval] = [0, 1, 59, 86_399, 951_782_400, 1_800_000_000, 253_402_300_799, -11_676_096_000]
        for _ in 0..<2_000 { seconds.append(TimeInterval(Int64.random(in: -11_676_096_000...253_402_300_799, using: &generator))) }
        for second in seconds {
            for milliseconds in [0, 1, 10, 123, 999] {
                let date = Date(timeIntervalSince1970: second + Double(milliseconds) / 1000)
                let ours = RFC3339.format(date)
                let theirs = milliseconds == 0 ? whole.string(from: date) : fractional.string(from: date)
                #expect(ours == theirs, "\(second) + \(milliseconds) ms")
                #expect(RFC3339.parse(ours).map { abs($0.timeIntervalSince(date)) < 0.0005 } == true, "\(ours)")
            }
        }
        // Past year 9999 the digits are not cut.
        #expect(RFC3339.format(Date(timeIntervalSince1970: 253_402_300_800)) == "10000-01-01T00:00:00Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 253_402_300_800.25)) == "10000-01-01T00:00:00.250Z")
    }
}
