import Foundation
import LinearOAuth
import LinearOAuthTestSupport
import Testing

/// The exact requests the client sends, pinned to ../shared/LINEAR-OAUTH.md (not to the emulator),
/// so the client cannot drift from Linear while the emulator drifts with it.
@Suite("Linear client: the bytes on the wire", .capturesLogs)
struct LinearClientGoldenTests {
    static let tokenAnswer = #"{"access_token":"lin_oauth_new","token_type":"Bearer","expires_in":86399,"scope":"read write","refresh_token":"lin_refresh_new"}"#

    func withCapture(_ answer: String = tokenAnswer, status: Int = 200, authentication: LinearClientConfiguration.ClientAuthentication = .formFields,
                     _ body: (LinearClient, CaptureServer) async throws -> Void) async throws {
        for secret in ["s3cr&t+=", "lin_oauth_new", "lin_refresh_new", "lin_refresh_old", "lin_oauth_app", "lin_oauth_abc", "lin_refresh_x"] {
            TestSecrets.record(secret, kind: "golden-token")
        }
        let server = CaptureServer()
        server.respond(status: status, body: answer)
        let url = try await server.start()
        let client = LinearClient(configuration: LinearClientConfiguration(
            clientID: "client id/1", clientSecret: Secret("s3cr&t+="), redirectURI: "https://app.example/oauth/callback?x=1",
            apiURL: url, timeout: .seconds(5), clientAuthentication: authentication))
        do {
            try await body(client, server)
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }

    func expectFormPost(_ request: CapturedRequest, path: String, body: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(request.method == "POST", sourceLocation: sourceLocation)
        #expect(request.path == path, sourceLocation: sourceLocation)
        #expect(request.header("Content-Type") == ["application/x-www-form-urlencoded"], sourceLocation: sourceLocation)
        #expect(request.header("Accept") == ["application/json"], sourceLocation: sourceLocation)
        #expect(request.body == body, sourceLocation: sourceLocation)
    }

    @Test("refresh: grant_type, refresh_token, then the client's id and secret as form fields")
    func refreshWithFormCredentials() async throws {
        try await withCapture { client, server in
            let tokens = try await client.refresh(Secret("lin_refresh_old"))
            #expect(tokens.accessToken == Secret("lin_oauth_new") && tokens.refreshToken == Secret("lin_refresh_new"))
            let request = try #require(server.requests.first)
            expectFormPost(request, path: "/oauth/token",
                           body: "grant_type=refresh_token&refresh_token=lin_refresh_old&client_id=client%20id%2F1&client_secret=s3cr%26t%2B%3D")
            #expect(request.header("Authorization").isEmpty)
        }
    }

    @Test("refresh with HTTP Basic: base64 of the form-encoded id and secret, and no credentials in the body")
    func refreshWithBasic() async throws {
        try await withCapture(authentication: .basic) { client, server in
            _ = try await client.refresh(Secret("lin_refresh_old"))
            let request = try #require(server.requests.first)
            expectFormPost(request, path: "/oauth/token", body: "grant_type=refresh_token&refresh_token=lin_refresh_old")
            let expected = "Basic " + Data("client%20id%2F1:s3cr%26t%2B%3D".utf8).base64EncodedString()
            #expect(request.header("Authorization") == [expected])
        }
    }

    @Test("authorization_code: code, redirect_uri, code_verifier, client credentials")
    func exchangeCode() async throws {
        try await withCapture { client, server in
            _ = try await client.exchangeCode("code-123", codeVerifier: "verifier-456")
            expectFormPost(try #require(server.requests.first), path: "/oauth/token", body: """
                grant_type=authorization_code&code=code-123&redirect_uri=https%3A%2F%2Fapp.example%2Foauth%2Fcallback%3Fx%3D1\
                &code_verifier=verifier-456&client_id=client%20id%2F1&client_secret=s3cr%26t%2B%3D
                """)
        }
    }

    @Test("client_credentials: comma-separated scope")
    func clientCredentials() async throws {
        let answer = #"{"access_token":"lin_oauth_app","token_type":"Bearer","expires_in":2591999,"scope":"read write"}"#
        try await withCapture(answer) { client, server in
            let token = try await client.clientCredentials(scopes: ["read", "write"])
            #expect(token.refreshToken == nil && token.expiresIn == 2_591_999)
            expectFormPost(try #require(server.requests.first), path: "/oauth/token",
                           body: "grant_type=client_credentials&scope=read%2Cwrite&client_id=client%20id%2F1&client_secret=s3cr%26t%2B%3D")
        }
    }

    @Test("revoke: token and token_type_hint only, as Linear documents it: no client credentials, no Authorization header")
    func revoke() async throws {
        for authentication in [LinearClientConfiguration.ClientAuthentication.formFields, .basic] {
            try await withCapture("", authentication: authentication) { client, server in
                #expect(try await client.revoke(Secret("lin_refresh_x"), hint: .refreshToken) == .revoked)
                let request = try #require(server.requests.first)
                expectFormPost(request, path: "/oauth/revoke", body: "token=lin_refresh_x&token_type_hint=refresh_token")
                #expect(request.header("Authorization").isEmpty)
            }
        }
    }

    @Test("GraphQL: POST /graphql, Bearer token, JSON body with query and variables")
    func graphQL() async throws {
        try await withCapture(#"{"data":{"viewer":{"id":"u1"}}}"#) { client, server in
            _ = try await client.graphQL("query { viewer { id } }", accessToken: Secret("lin_oauth_abc"))
            let request = try #require(server.requests.first)
            #expect(request.method == "POST" && request.path == "/graphql")
            #expect(request.header("Authorization") == ["Bearer lin_oauth_abc"])
            #expect(request.header("Content-Type") == ["application/json"])
            #expect(request.body == #"{"query":"query { viewer { id } }","variables":{}}"#)
        }
        // A 200 that carries errors beside data is an error, with Linear's message and code.
        let partial = #"{"data":{"viewer":null},"errors":[{"message":"Entity not found","extensions":{"code":"INPUT_ERROR","type":"invalid input"}}]}"#
        try await withCapture(partial) { client, _ in
            do {
                _ = try await client.graphQL("query { viewer { id } }", accessToken: Secret("lin_oauth_abc"))
                Issue.record("a 200 with errors was taken as an answer")
            } catch {
                #expect(error as? LinearAPIError == .graphQL(messages: ["Entity not found"], codes: ["INPUT_ERROR"], status: 200))
            }
        }
    }

    @Test("the authorize URL: client_id, redirect_uri, response_type=code, comma scopes, state, actor=app, PKCE S256, prompt=consent unless turned off")
    func authorizationURL() throws {
        let client = LinearClient(configuration: LinearClientConfiguration(
            clientID: "cid", clientSecret: Secret("x"), redirectURI: "http://127.0.0.1:8080/oauth/callback"))
        let pkce = PKCE(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        #expect(pkce.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")  // RFC 7636, appendix B
        #expect(try client.authorizationURL(state: "st", pkce: pkce, scopes: ["read", "write", "app:assignable"]) == """
            https://linear.app/oauth/authorize?client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Foauth%2Fcallback\
            &response_type=code&scope=read,write,app%3Aassignable&state=st&actor=app\
            &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&prompt=consent
            """)
        #expect(try client.authorizationURL(state: "st", pkce: pkce, promptConsent: false) == """
            https://linear.app/oauth/authorize?client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Foauth%2Fcallback\
            &response_type=code&scope=read,write&state=st&actor=app\
            &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256
            """)
    }

    @Test("an unreadable 200 and an HTML 502 are transient; a token answer never reaches an error message")
    func unreadableAnswers() async throws {
        try await withCapture("<html>oops</html>") { client, _ in
            await expectKind(.transient, code: nil, status: 200) { _ = try await client.refresh(Secret("lin_refresh_old")) }
        }
        try await withCapture("<html>bad gateway</html>", status: 502) { client, _ in
            await expectKind(.transient, code: nil, status: 502) { _ = try await client.refresh(Secret("lin_refresh_old")) }
        }
        try await withCapture(#"{"error":"invalid_request","error_description":"Refresh token expired"}"#, status: 400) { client, _ in
            await expectKind(.reauthorization, code: "invalid_request", status: 400) { _ = try await client.refresh(Secret("lin_refresh_old")) }
        }
        try await withCapture(#"{"error":"invalid_client","error_description":"secret s3cr&t+= is wrong"}"#, status: 401) { client, _ in
            do {
                _ = try await client.refresh(Secret("lin_refresh_old"))
                Issue.record("no error")
            } catch {
                #expect("\(error)".contains("secret <redacted> is wrong"))
            }
        }
        try await withCapture(#"{"error":"invalid_grant","error_description":"token lin_refresh_old is dead"}"#, status: 400) { client, _ in
            do {
                _ = try await client.refresh(Secret("lin_refresh_old"))
                Issue.record("no error")
            } catch {
                #expect("\(error)".contains("token <redacted> is dead"))
            }
        }
    }
}
