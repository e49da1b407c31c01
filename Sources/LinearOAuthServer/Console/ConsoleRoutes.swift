import Foundation
import HTTPTypes
import Hummingbird
import LinearOAuth
import Logging
import NIOCore

/// The operator console: `/` (overview), `/console/installations` (search, pages, one installation
/// and its actions), `/console/events`, sign-in and sign-out. Server-rendered, no script; every page
/// but sign-in needs a session (``ConsoleSessions``), and every form that changes something carries
/// the session's CSRF token.
struct ConsoleRoutes {
    let manager: TokenManager
    let configuration: LinearOAuthServerConfiguration
    let sessions: ConsoleSessions
    let events: ConsoleEventLog
    let logger: Logger

    static let pageSize = 50

    init(manager: TokenManager, configuration: LinearOAuthServerConfiguration, logger: Logger) {
        self.manager = manager
        self.configuration = configuration
        self.events = configuration.events
        self.logger = logger
        self.sessions = ConsoleSessions(
            apiKeys: configuration.apiKeys, lifetime: configuration.consoleSessionLifetime.timeInterval,
            secure: configuration.publicURL(redirectURI: manager.linear.configuration.redirectURI)?.lowercased().hasPrefix("https://") ?? false)
    }

    var routes: RouteCollection<LinearOAuthRequestContext> {
        let routes = RouteCollection(context: LinearOAuthRequestContext.self)
        routes.get("/console/style.css") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: ConsoleTemplates.stylesheet)))
        }
        routes.get("/console/icon.svg") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "image/svg+xml", .cacheControl: "public, max-age=86400"],
                body: .init(byteBuffer: ByteBuffer(string: ConsoleTemplates.icon)))
        }
                routes.get("/console/sign-in") { request, _ in signInPage(request, error: nil) }
        routes.post("/console/sign-in") { request, _ in try await signIn(request) }
        routes.post("/console/sign-out") { request, _ in
            try await withForm(request) { _, _ in
                var response = Self.redirect("/console/sign-in")
                response.headers[.setCookie] = sessions.setCookie(ConsoleSessions.cookieName, "", maxAge: 0)
                return response
            }
        }
        routes.get("/") { request, _ in try await page(request) { session in try await overview(session, request) } }
        routes.get("/console") { _, _ in Self.redirect("/") }
        routes.get("/console/installations") { request, _ in try await page(request) { session in try await installations(request, session) } }
        routes.get("/console/installations/:organization") { request, context in
            let organizationID = try context.parameters.require("organization")
            return try await page(request) { session in try await installation(organizationID, request, session) }
        }
        routes.get("/console/installations/:organization/revoke") { request, context in
            let organizationID = try context.parameters.require("organization")
            return try await page(request) { session in try await revokeConfirmation(organizationID, session) }
        }
        for action in ["refresh", "reinstate", "revoke"] {
            routes.post("/console/installations/:organization/\(action)") { request, context in
                let organizationID = try context.parameters.require("organization")
                return try await withForm(request) { _, form in try await act(action, organizationID, form: form) }
            }
        }
        routes.get("/console/events") { request, _ in
            try await page(request) { session in
                var context = base(session, title: "Events")
                context["capacity"] = events.capacity
                // Assigned, not in a literal: a nil must remove the key, or the section would show.
                context["events"] = eventRows(events.recent())
                return html(.ok, "events", context)
            }
        }
        routes.post("/console/breaker/reset") { request, _ in
            try await withForm(request) { _, _ in
                manager.resetDeauthorizationBreaker()
                events.record(.init(organizationID: nil, event: "breaker", outcome: "reset"))
                logger.info("de-authorization breaker reset from the console")
                return Self.redirect("/?done=breaker_reset")
            }
        }
        return routes
    }

    // MARK: Sessions and forms

    private func currentSession(_ request: Request) -> ConsoleSessions.Session? {
        ConsoleSessions.cookie(ConsoleSessions.cookieName, in: request.headers[.cookie])
            .flatMap { sessions.session(fromCookie: $0, now: Date()) }
    }

    /// A page that needs a session: without one, the sign-in page.
    private func page(_ request: Request, _ body: (ConsoleSessions.Session) async throws -> Response) async throws -> Response {
        guard let session = currentSession(request) else { return Self.redirect("/console/sign-in") }
        return try await body(session)
    }

    /// A form that changes something: a session and its CSRF token, else 403 and nothing changes.
    private func withForm(_ request: Request, _ body: (ConsoleSessions.Session, [String: String]) async throws -> Response) async throws -> Response {
        guard let session = currentSession(request) else { return Self.redirect("/console/sign-in") }
        let form = try await Self.form(request)
        guard sessions.isValid(csrfToken: form["csrf"], for: session) else {
            return message(.forbidden, "Form expired", ["This form is no longer valid (signed out, or opened in another session): reload the page and try again."],
                           links: [("Back to the console", "/")], session: session)
        }
        return try await body(session, form)
    }

    private func signInPage(_ request: Request, error: String?, status: HTTPResponse.Status = .ok) -> Response {
        if currentSession(request) != nil, error == nil { return Self.redirect("/") }
        let token = PKCE.base64URL(Data((0..<18).map { _ in UInt8.random(in: 0...255) }))
        var context: [String: Any] = ["title": "Sign in", "signInToken": token]
        if let error { context["error"] = error }
        if let keyFile = configuration.gettingStarted?.apiKeyFile { context["keyFile"] = keyFile }
        var response = html(status, "sign_in", context)
        response.headers[.setCookie] = sessions.setCookie(ConsoleSessions.signInCookieName, token, maxAge: 1800)
        return response
    }

    private func signIn(_ request: Request) async throws -> Response {
        let form = try await Self.form(request)
        // Double submit: the form's token must be the cookie this service set with the form.
        guard let expected = ConsoleSessions.cookie(ConsoleSessions.signInCookieName, in: request.headers[.cookie]),
            let given = form["sign_in"], APIKeyMiddleware.constantTimeEqual(Array(given.utf8), Array(expected.utf8))
        else {
            return signInPage(request, error: "The sign-in form expired; try again.", status: .forbidden)
        }
        guard let apiKey = form["api_key"], let keyIndex = sessions.keyIndex(forAPIKey: apiKey.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            logger.warning("console sign-in refused: not an API key")
            return signInPage(request, error: "That is not one of the service's API keys.", status: .unauthorized)
        }
        let issued = sessions.issue(keyIndex: keyIndex, now: Date())
        var response = Self.redirect("/")
        response.headers[.setCookie] = sessions.setCookie(ConsoleSessions.cookieName, issued.cookie, maxAge: Int(sessions.lifetime))
        logger.info("console sign-in")
        return response
    }

    // MARK: Pages

    private func overview(_ session: ConsoleSessions.Session, _ request: Request) async throws -> Response {
        let store = manager.vault.store
        let counts: [InstallationStatus: Int]
        let soonest: [InstallationMetadata]
        do {
            counts = try await store.installationCounts()
            soonest = try await store.soonestExpiring(limit: 5)
        } catch {
            return databaseDown(session)
        }
        let total = counts.values.reduce(0, +)
        let reauthorization = counts[.reauthorizationRequired] ?? 0
        var context = base(session, title: "Overview")
        if let done = request.uri.queryParameters["done"].map(String.init), let flash = Self.flashes[done] { context["flash"] = flash }
        context["total"] = total
        context["active"] = counts[.active] ?? 0
        context["reauthorization"] = reauthorization
        context["needsAttention"] = reauthorization > 0
        let degraded = manager.degradedReason
        context["breakerState"] = degraded == nil ? "closed" : "open"
        if let degraded { context["breaker"] = ["reason": degraded] }
        context["refreshes"] = Self.table(events.refreshesInLastHour())
        context["webhooks"] = Self.table(events.outcomes(of: "webhook"))
        if !soonest.isEmpty {
            context["expiries"] = ["rows": soonest.map { m in
                ["name": m.organizationName ?? m.urlKey ?? m.organizationID, "organizationID": m.organizationID,
                 "expiresAt": RFC3339.format(m.expiresAt), "href": Self.installationPath(m.organizationID)]
            }]
        }
        context["events"] = eventRows(events.recent(limit: 10))
        if let started = configuration.gettingStarted {
            context["gettingStarted"] = [
                "directory": started.directory, "apiKeyFile": started.apiKeyFile,
                "baseURL": configuration.publicURL(redirectURI: manager.linear.configuration.redirectURI) ?? "http://127.0.0.1:8080",
            ]
        }
        return html(.ok, "overview", context)
    }

    private func installations(_ request: Request, _ session: ConsoleSessions.Session) async throws -> Response {
        let query = request.uri.queryParameters
        let text = (query["q"].map(String.init) ?? "").trimmingCharacters(in: .whitespaces)
        let after = query["after"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        // No organization id, name or URL key holds a NUL (PostgreSQL could not even compare one).
        guard !text.contains("\0"), !(after ?? "").contains("\0") else {
            return message(.badRequest, "Bad search", ["The search or page link holds a character no installation has."],
                           links: [("All installations", "/console/installations")], session: session)
        }
        let statusFilter = query["status"].map(String.init).flatMap(InstallationStatus.init(rawValue:))
        var rows: [InstallationMetadata] = []
        var hasMore = false
        var resumeAfter: String?
        do {
            // A status filter pages through the search's results and keeps the matching ones, at most
            // 20 pages a request (then "next page" goes on from the last row looked at).
            var cursor = after
            var pages = 0
            while rows.count <= Self.pageSize {
                let page = try await manager.vault.store.metadata(
                    matching: text.isEmpty ? .all : .containing(text), after: cursor, limit: Self.pageSize + 1)
                rows += page.filter { statusFilter == nil || $0.status == statusFilter }
                pages += 1
                guard page.count == Self.pageSize + 1, let last = page.last else { break }
                cursor = last.organizationID
                if pages == 20, rows.count <= Self.pageSize {
                    resumeAfter = cursor
                    break
                }
            }
        } catch {
            return databaseDown(session)
        }
        if rows.count > Self.pageSize {
            hasMore = true
            rows = Array(rows.prefix(Self.pageSize))
        }
        var context = base(session, title: "Installations")
        if let done = query["done"].map(String.init), let flash = Self.flashes[done] { context["flash"] = flash }
        context["query"] = text
        // An empty string is a true section in Mustache: the template asks this instead.
        context["hasQuery"] = !text.isEmpty
        context["hasRows"] = !rows.isEmpty
        context["rows"] = rows.map { m in
            ["name": m.organizationName ?? m.urlKey ?? "(name not recorded)", "organizationID": m.organizationID,
             "status": m.status.rawValue, "tone": m.status == .active ? "ok" : "bad", "expiresAt": RFC3339.format(m.expiresAt),
             "lastRefresh": m.lastRefreshAt.map(RFC3339.format) ?? "–", "lastError": m.lastError ?? "–", "keyID": m.keyID,
             "href": Self.installationPath(m.organizationID)] as [String: Any]
        }
        func link(after: String?) -> String {
            var items = [URLQueryItem]()
            if !text.isEmpty { items.append(.init(name: "q", value: text)) }
            if let statusFilter { items.append(.init(name: "status", value: statusFilter.rawValue)) }
            if let after { items.append(.init(name: "after", value: after)) }
            var components = URLComponents()
            components.path = "/console/installations"
            components.queryItems = items.isEmpty ? nil : items
            return components.string ?? "/console/installations"
        }
        if hasMore, let last = rows.last {
            context["next"] = link(after: last.organizationID)
        } else if let resumeAfter {
            context["next"] = link(after: resumeAfter)
        }
        if after != nil { context["first"] = link(after: nil) }
        return html(.ok, "installations", context)
    }

    private func installation(_ reference: String, _ request: Request, _ session: ConsoleSessions.Session) async throws -> Response {
        let found: InstallationLookup
        do {
            found = try await manager.vault.store.lookUp(reference)
        } catch {
            return databaseDown(session)
        }
        guard case .found(let m) = found else { return notFound(reference, found, session) }
        if m.organizationID != reference { return Self.redirect(Self.installationPath(m.organizationID)) }
        var context = base(session, title: m.organizationName ?? m.organizationID)
        if let done = request.uri.queryParameters["done"].map(String.init), let flash = Self.flashes[done] { context["flash"] = flash }
        context.merge([
            "name": m.organizationName ?? m.urlKey ?? m.organizationID, "organizationID": m.organizationID,
            "workspace": m.organizationName ?? "– (recorded at the next install)", "urlKey": m.urlKey ?? "–",
            "status": m.status.rawValue, "tone": m.status == .active ? "ok" : "bad", "expiresAt": RFC3339.format(m.expiresAt),
            "lastRefresh": m.lastRefreshAt.map(RFC3339.format) ?? "never", "lastError": m.lastError ?? "–",
            "refreshFailures": m.refreshFailures, "keyID": m.keyID, "appUserID": m.appUserID, "scopes": m.scopes.joined(separator: " "),
            "installedAt": RFC3339.format(m.installedAt), "clientID": m.clientID ?? "–",
            "needsReauthorization": m.status == .reauthorizationRequired, "base": Self.installationPath(m.organizationID),
        ]) { $1 }
        return html(.ok, "installation", context)
    }

    private func revokeConfirmation(_ organizationID: String, _ session: ConsoleSessions.Session) async throws -> Response {
        let found: InstallationLookup
        do {
            found = try await manager.vault.store.lookUp(organizationID)
        } catch {
            return databaseDown(session)
        }
        guard case .found(let m) = found else { return notFound(organizationID, found, session) }
        if m.organizationID != organizationID { return Self.redirect(Self.installationPath(m.organizationID) + "/revoke") }
        var context = base(session, title: "Revoke")
        context.merge(["name": m.displayName, "organizationID": m.organizationID, "base": Self.installationPath(m.organizationID)]) { $1 }
        return html(.ok, "revoke", context)
    }

    /// Refresh now, reinstate, revoke: each answers with a redirect to the installation's page and a
    /// short message naming what happened.
    private func act(_ action: String, _ reference: String, form: [String: String]) async throws -> Response {
        // A URL key in the path acts on the installation it names, exactly as the pages resolve it.
        let organizationID = (try? await manager.vault.store.lookUp(reference, suggesting: false).organizationID) ?? reference
        let path = Self.installationPath(organizationID)
        switch action {
        case "refresh":
            do throws(TokenManagerError) {
                try await manager.forceRefresh(for: organizationID)
                return Self.redirect(path + "?done=refreshed")
            } catch {
                return actionFailed("Refresh failed", error, organizationID)
            }
        case "reinstate":
            do throws(TokenManagerError) {
                let outcome = try await manager.reinstate(for: organizationID)
                events.record(.init(organizationID: organizationID, event: "reinstate", outcome: Self.name(outcome)))
                return Self.redirect(path + "?done=" + Self.name(outcome))
            } catch {
                return actionFailed("Reinstate failed", error, organizationID)
            }
        case "revoke":
            guard form["confirm"] == "yes" else { return Self.redirect(path + "/revoke") }
            do throws(TokenManagerError) {
                let result = try await manager.revoke(for: organizationID)
                guard result.wasInstalled else {
                    return message(.notFound, "Not installed", ["\(organizationID) was not installed (already revoked?): nothing was done."],
                                   links: [("All installations", "/console/installations")], session: nil)
                }
                logger.info("revoked from the console", metadata: [
                    "organization": .string(organizationID), "linear_failures": .stringConvertible(result.linearFailures.count)])
                return Self.redirect("/console/installations?done=revoked")
            } catch {
                return actionFailed("Revoke failed", error, organizationID)
            }
        default:
            return message(.notFound, "Not found", ["There is no such action."], links: [("Back", path)], session: nil)
        }
    }

    // MARK: Helpers

    static let flashes = [
        "refreshed": "Refreshed: new tokens are stored.",
        "reinstated": "Reinstated: Linear accepted the stored refresh token; the installation is active again.",
        "already_active": "Nothing to reinstate: the installation is active.",
        "still_refused": "Linear still refuses this grant: a workspace admin must install the app again.",
        "revoked": "Revoked: the grant was revoked at Linear and the tokens deleted.",
        "breaker_reset": "The de-authorization breaker was reset.",
    ]

    private static func name(_ outcome: TokenManager.Reinstatement) -> String {
        switch outcome {
        case .reinstated: "reinstated"
        case .alreadyActive: "already_active"
        case .stillRefused: "still_refused"
        }
    }

    private func actionFailed(_ title: String, _ error: TokenManagerError, _ organizationID: String) -> Response {
        let status: HTTPResponse.Status = switch error {
        case .notInstalled: .notFound
        case .reauthorizationRequired: .conflict
        case .configuration, .undecryptable: .internalServerError
        case .temporarilyUnavailable, .clientMismatch: .serviceUnavailable
        }
        return message(status, title, [error.description], links: [("Back to the installation", Self.installationPath(organizationID))], session: nil)
    }

    private func notFound(_ reference: String, _ lookup: InstallationLookup, _ session: ConsoleSessions.Session) -> Response {
        switch lookup {
        case .ambiguous(let matches):
            return message(.conflict, "Several installations", ["“\(reference)” is the URL key of several installations; choose one:"],
                           links: matches.map { ($0.organizationID, Self.installationPath($0.organizationID)) }, session: session)
        case .notFound(let suggestions):
            var text = ["No installation is called “\(reference)”."]
            if !suggestions.isEmpty { text.append("Did you mean " + suggestions.joined(separator: ", ") + "?") }
            return message(.notFound, "Not installed", text,
                           links: suggestions.map { ($0, Self.installationPath($0)) } + [("All installations", "/console/installations")], session: session)
        case .found:
            return message(.notFound, "Not installed", ["No installation is called “\(reference)”."], links: [("All installations", "/console/installations")], session: session)
        }
    }

    private func databaseDown(_ session: ConsoleSessions.Session) -> Response {
        var response = message(.serviceUnavailable, "Database unavailable", ["The database cannot answer now; reload in a moment."], links: [], session: session)
        response.headers[.retryAfter] = "5"
        return response
    }

    private func message(_ status: HTTPResponse.Status, _ title: String, _ paragraphs: [String], links: [(String, String)], session: ConsoleSessions.Session?) -> Response {
        var context: [String: Any] = session.map { base($0, title: title) } ?? ["title": title]
        context["paragraphs"] = paragraphs
        context["tone"] = status.code >= 400 ? "alert" : "notice"
        context["links"] = links.map { ["label": $0.0, "href": $0.1] }
        return html(status, "message", context)
    }

    /// What every signed-in page has: the title, the navigation's CSRF token, the instance.
    private func base(_ session: ConsoleSessions.Session, title: String) -> [String: Any] {
        ["title": title, "signedIn": true, "csrf": sessions.csrfToken(session), "instance": Self.instance]
    }

    private func eventRows(_ entries: [ConsoleEventLog.Entry]) -> [String: Any]? {
        guard !entries.isEmpty else { return nil }
        return ["rows": entries.map { entry in
            var row: [String: Any] = [
                "time": RFC3339.format(entry.time), "organizationID": entry.organizationID ?? "–", "event": entry.event,
                "outcome": entry.outcome, "detail": entry.detail ?? "", "tone": Self.tone(entry.outcome),
            ]
            if let organizationID = entry.organizationID { row["href"] = Self.installationPath(organizationID) }
            return row
        }]
    }

    /// This machine's name, in the footer (several instances may serve one console).
    static let instance = ProcessInfo.processInfo.hostName

    static func tone(_ outcome: String) -> String {
        if ["success", "deleted", "accepted", "installed", "reinstated", "already_active", "newer_install_kept", "reset"].contains(outcome) { return "ok" }
        if outcome.hasPrefix("accepted") { return "ok" }
        if outcome.contains("reauthorization") || outcome == "still_refused" || outcome.hasPrefix("refused") { return "bad" }
        return "warn"
    }

    private static func table(_ counts: [String: Int]) -> [String: Any]? {
        guard !counts.isEmpty else { return nil }
        return ["rows": counts.sorted { $0.key < $1.key }.map { ["name": $0.key, "count": $0.value] }]
    }

    static func installationPath(_ organizationID: String) -> String {
        "/console/installations/" + (organizationID.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? organizationID)
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// An HTML page with the console's headers: no caching, no framing, no script, forms to this origin only.
    func html(_ status: HTTPResponse.Status, _ template: String, _ context: [String: Any]) -> Response {
        Self.html(status, template, context)
    }

    static func html(_ status: HTTPResponse.Status, _ template: String, _ context: [String: Any]) -> Response {
        Response(status: status, headers: securityHeaders, body: .init(byteBuffer: ByteBuffer(string: ConsoleTemplates.render(template, context))))
    }

    static let securityHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
        .contentSecurityPolicy: "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Frame-Options")!: "DENY", HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
    ]

    /// An `application/x-www-form-urlencoded` body (at most 16 KiB).
    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        let body = try await request.collectBody(upTo: 16 * 1024)
        return parseForm(String(buffer: body))
    }

    static func parseForm(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String { part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            guard let name = parts.first else { continue }
            fields[decode(name)] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}
