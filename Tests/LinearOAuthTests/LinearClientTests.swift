import Foundation
import LinearEmulator
import LinearOAuth
import LinearOAuthTestSupport
import Testing

/// Runs an install through the emulator's consent (auto-approve) and returns the code.
private func authorizationCode(_ client: LinearClient, pkce: PKCE, state: String = "s-1") async throws -> String {
    let url = try client.authorizationURL(state: state, pkce: pkce)
    let answer = try await RawHTTP.request(.GET, url)
    #expect(answer.status == 302)
    let query = RawHTTP.query(answer.header("location"))
    #expect(query["state"] == state)
    return try #require(query["code"])
}

private func autoApprove() -> EmulatorSettings {
    var settings = EmulatorSettings()
    settings.autoApprove = true
    return settings
}

@Suite("Linear client against the emulator", .capturesLogs)
struct LinearClientTests {
    @Test("the install flow: authorize with PKCE, exchange the code, read viewer and organization")
    func installFlow() async throws {
        try await withEmulator(settings: autoApprove()) { _, url in
            let client = emulatorClient(url)
            let pkce = PKCE()
            let code = try await authorizationCode(client, pkce: pkce)
            let tokens = try await client.exchangeCode(code, codeVerifier: pkce.verifier)
            #expect(tokens.accessToken.value.hasPrefix("lin_oauth_"))
            #expect(tokens.refreshToken != nil)
            #expect(tokens.expiresIn == 86_399)
            #expect(tokens.scopes == ["read", "write"])
            #expect(tokens.expiresAt > Date().addingTimeInterval(86_000))
            struct Answer: Decodable {
                struct Viewer: Decodable { var id: String }
                struct Organization: Decodable { var id: String; var name: String; var urlKey: String }
                var viewer: Viewer
                var organization: Organization
            }
            let answer = try await client.graphQL(
                "query { viewer { id } organization { id name urlKey } }", accessToken: tokens.accessToken
            ).decode(Answer.self)
            #expect(answer.viewer.id == "app-user-acme")
            #expect(answer.organization.urlKey == "acme")
            // A second exchange of the same code is a dead grant.
            await #expect(throws: LinearOAuthError.self) { _ = try await client.exchangeCode(code, codeVerifier: pkce.verifier) }
        }
    }

    @Test("refresh returns the rotated pair; scope as a string or a JSON array; Basic or form client authentication")
    func refresh() async throws {
        var legacy = LinearEmulator.defaultClient
        legacy.legacyScopeArray = true
        try await withEmulator(clients: [legacy]) { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            for authentication in [LinearClientConfiguration.ClientAuthentication.formFields, .basic] {
                let client = emulatorClient(url, authentication: authentication)
                let current = try await emulator.mintGrant(organizationID: "org-acme")
                let refreshed = try await client.refresh(Secret(current.refreshToken!))
                #expect(refreshed.refreshToken != nil && refreshed.refreshToken != current.refreshToken.map(Secret.init))
                #expect(refreshed.accessToken != Secret(current.accessToken))
                #expect(refreshed.scopes == ["read", "write"])
            }
            _ = grant
        }
    }

    @Test("client_credentials: the app token, 30 days, no refresh token")
    func clientCredentials() async throws {
        try await withEmulator { _, url in
            let token = try await emulatorClient(url).clientCredentials(scopes: ["read", "write"])
            #expect(token.refreshToken == nil)
            #expect(token.expiresIn == 2_591_999)
            #expect(token.scopes == ["read", "write"])
        }
    }

    @Test("revoke both tokens; a second revoke is an answer (not revoked), not an error")
    func revoke() async throws {
        try await withEmulator { emulator, url in
            let client = emulatorClient(url)
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            #expect(try await client.revoke(Secret(grant.refreshToken!), hint: .refreshToken) == .revoked)
            #expect(try await client.revoke(Secret(grant.accessToken), hint: .accessToken) == .notRevoked("The token could not be revoked"))
            await #expect(throws: LinearAPIError.authenticationFailed(message: "Authentication required, not authenticated")) {
                _ = try await client.graphQL("{ viewer { id } }", accessToken: Secret(grant.accessToken))
            }
        }
    }

    @Test("invalid_grant is re-authorization; its message keeps Linear's description and no token")
    func reauthorization() async throws {
        try await withEmulator { emulator, url in
            let client = emulatorClient(url)
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            _ = try await client.revoke(Secret(grant.refreshToken!), hint: .refreshToken)
            do {
                _ = try await client.refresh(Secret(grant.refreshToken!))
                Issue.record("refresh of a revoked token succeeded")
            } catch {
                guard case .reauthorizationRequired(let details)? = error as? LinearOAuthError else { Issue.record("\(error)"); return }
                #expect(details.code == "invalid_grant" && details.status == 400)
                #expect(details.message == "The refresh token has been revoked")
                #expect(!"\(error)".contains(grant.refreshToken!))
            }
        }
    }

    @Test("configuration errors: wrong secret, client_credentials off, redirect URI mismatch, missing settings")
    func configurationErrors() async throws {
        var off = LinearEmulator.defaultClient
        off.clientCredentialsEnabled = false
        try await withEmulator(clients: [off], settings: autoApprove()) { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            await expectKind(.configuration, code: "invalid_client", status: 401) {
                _ = try await emulatorClient(url, secret: "wrong-secret").refresh(Secret(grant.refreshToken!))
            }
            await expectKind(.configuration, code: "Error", status: 400) {
                _ = try await emulatorClient(url).clientCredentials()
            }
            let pkce = PKCE()
            let code = try await authorizationCode(emulatorClient(url), pkce: pkce)
            var other = emulatorClient(url).configuration
            other.redirectURI = LinearEmulator.defaultClient.redirectURIs[1]
            await expectKind(.configuration, code: "invalid_request", status: 400) {
                _ = try await LinearClient(configuration: other).exchangeCode(code, codeVerifier: pkce.verifier)
            }
            // A wrong API URL: nothing there.
            await expectKind(.configuration, code: nil, status: 404) {
                var wrong = emulatorClient(url).configuration
                wrong.apiURL = url + "/nothing-here"
                _ = try await LinearClient(configuration: wrong).refresh(Secret(grant.refreshToken!))
            }
        }
        #expect(throws: LinearOAuthError.configuration(.init(message: "LINEAR_CLIENT_ID is not set"))) {
            try LinearClientConfiguration.fromEnvironment([:])
        }
        #expect(throws: LinearOAuthError.configuration(.init(message: "LINEAR_CLIENT_SECRET is not set"))) {
            try LinearClientConfiguration.fromEnvironment(["LINEAR_CLIENT_ID": "x"])
        }
        #expect(throws: LinearOAuthError.configuration(.init(message: "LINEAR_API_URL is not an http(s) URL"))) {
            try LinearClientConfiguration.fromEnvironment(["LINEAR_CLIENT_ID": "x", "LINEAR_CLIENT_SECRET": "y", "LINEAR_API_URL": "ftp://x"])
        }
        let configuration = try LinearClientConfiguration.fromEnvironment(["LINEAR_CLIENT_ID": "x", "LINEAR_CLIENT_SECRET": "y"])
        #expect(configuration.apiURL == "https://api.linear.app")
        #expect(configuration.authorizeURL == "https://linear.app/oauth/authorize")
    }

    @Test("transient errors: 5xx, 429 with Retry-After, a time-out, a refused connection, a lost response")
    func transientErrors() async throws {
        try await withEmulator { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            let refreshToken = Secret(grant.refreshToken!)
            for status in [500, 503] {
                await emulator.failNextTokenCalls(1, status: status)
                await expectKind(.transient, code: "server_error", status: status) { _ = try await emulatorClient(url).refresh(refreshToken) }
            }
            await emulator.failNextTokenCalls(1, status: 429, retryAfter: 7)
            do {
                _ = try await emulatorClient(url).refresh(refreshToken)
                Issue.record("no error")
            } catch {
                guard case .transient(let details)? = error as? LinearOAuthError else { Issue.record("\(error)"); return }
                #expect(details.retryAfter == .seconds(7) && details.status == 429)
            }

            var settings = await emulator.settings()
            settings.latencyMilliseconds = 2_000
            await emulator.configure(settings)
            let refreshesBefore = await emulator.requests().filter { $0.grantType == "refresh_token" }.count
            await expectKind(.transient, code: nil, status: nil) {
                _ = try await emulatorClient(url, timeout: .milliseconds(300)).refresh(refreshToken)
            }
            settings.latencyMilliseconds = 0
            await emulator.configure(settings)
            // The emulator still carries out the refresh the client gave up on (it rotates that grant):
            // wait for it, and lose an answer on a grant of its own.
            try await waitUntil("the abandoned refresh to be carried out") {
                await emulator.requests().filter { $0.grantType == "refresh_token" }.count > refreshesBefore
            }
            let other = Secret(try await emulator.mintGrant(organizationID: "org-acme").refreshToken!)

            await emulator.dropNextRefreshResponse()
            await expectKind(.transient, code: nil, status: nil) { _ = try await emulatorClient(url).refresh(other) }
            // The lost answer is recovered by replaying the same refresh token (Linear's grace).
            let recovered = try await emulatorClient(url).refresh(other)
            #expect(recovered.refreshToken != nil)

            // AsyncHTTPClient retries a refused connection until the deadline: a short one keeps the test quick.
            let closed = "http://127.0.0.1:\(try freePortNumber())"
            await expectKind(.transient, code: nil, status: nil) {
                _ = try await emulatorClient(closed, timeout: .milliseconds(500)).refresh(refreshToken)
            }
        }
    }

    @Test("GraphQL: RATELIMITED surfaces with the reset time; other errors keep their messages")
    func graphQLErrors() async throws {
        var settings = EmulatorSettings()
        settings.rateLimitRequests = 1
        try await withEmulator(settings: settings) { emulator, url in
            let client = emulatorClient(url)
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            let token = Secret(grant.accessToken)
            let first = try await client.graphQL("{ viewer { id } }", accessToken: token)
            #expect(first.requestsRemaining == 0)
            do {
                _ = try await client.graphQL("{ viewer { id } }", accessToken: token)
                Issue.record("not rate limited")
            } catch {
                guard case .rateLimited(let resetAt, _)? = error as? LinearAPIError else { Issue.record("\(error)"); return }
                #expect(try #require(resetAt) > Date())
            }
        }
        try await withEmulator { emulator, url in
            let grant = try await emulator.mintGrant(organizationID: "org-acme")
            await #expect(throws: LinearAPIError.self) {
                _ = try await emulatorClient(url).graphQL("{ issues { nodes { id } } }", accessToken: Secret(grant.accessToken))
            }
        }
    }

    @Test("scopes parse from a space- or comma-separated string or a JSON array")
    func scopes() {
        #expect(LinearClient.parseScopes("read write") == ["read", "write"])
        #expect(LinearClient.parseScopes("read,write,app:assignable") == ["read", "write", "app:assignable"])
        #expect(LinearClient.parseScopes(["read", "admin"]) == ["read", "admin"])
        #expect(LinearClient.parseScopes(nil) == [])
    }
}

enum ErrorKind { case reauthorization, configuration, transient }

func expectKind(
    _ kind: ErrorKind, code: String?, status: Int?, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("no error", sourceLocation: sourceLocation)
    } catch let error as LinearOAuthError {
        let actual: ErrorKind = switch error {
        case .reauthorizationRequired: .reauthorization
        case .configuration: .configuration
        case .transient: .transient
        }
        #expect(actual == kind, "\(error)", sourceLocation: sourceLocation)
        #expect(error.details.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.details.status == status, "\(error)", sourceLocation: sourceLocation)
        #expect(!error.description.contains("lin_"), sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}

func freePortNumber() throws -> Int { try LinearOAuthTestSupportPort.free() }
