import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// A real HTTP server that behaves as Linear's OAuth and GraphQL endpoints do, with switches for
/// the faults that matter (lost responses, outages, rate limits, uninstalls). For this project's
/// tests, your own test suites, and trying things out without a Linear account.
///
/// ```swift
/// let emulator = LinearEmulator()              // 127.0.0.1, a free port
/// let baseURL = try await emulator.start()     // e.g. http://127.0.0.1:49152
/// // point LINEAR_API_URL and LINEAR_AUTHORIZE_URL (baseURL + "/oauth/authorize") at it
/// await emulator.stop()
/// ```
public final class LinearEmulator: Sendable {
    /// The workspaces the emulator starts with.
    public static let defaultOrganizations = [
        EmulatedOrganization(id: "org-acme", name: "Acme (emulated)", urlKey: "acme", appUserID: "app-user-acme"),
        EmulatedOrganization(id: "org-globex", name: "Globex (emulated)", urlKey: "globex", appUserID: "app-user-globex"),
    ]
    /// The OAuth application the emulator starts with.
    public static let defaultClient = EmulatedClient(
        id: "emulator-client", secret: "emulator-secret", name: "Emulated App",
        redirectURIs: ["http://127.0.0.1:8080/oauth/callback", "http://localhost:8080/oauth/callback"])

    let state: EmulatorState
    private let host: String
    private let requestedPort: Int
    /// Where the emulator keeps its world between runs, if anywhere.
    public let stateFile: String?
    /// The server's task, the service group it runs in (stopped by a graceful shutdown: cancelling
    /// the task instead drops connections accepted but not yet handed to the server, which SwiftNIO
    /// traps, "Deinited NIOAsyncWriter without calling finish()", apple/swift-nio#3481) and its port.
    private let running = Mutex<(task: Task<Void, any Error>?, group: ServiceGroup?, port: Int?)>((nil, nil, nil))

    /// Creates an emulator; nothing listens until ``start()``.
    /// - Parameters:
    ///   - host: The address to bind (loopback by default).
    ///   - port: The port; 0 picks a free one (read it from ``port`` after ``start()``).
    public init(
        host: String = "127.0.0.1", port: Int = 0,
        organizations: [EmulatedOrganization] = LinearEmulator.defaultOrganizations,
        clients: [EmulatedClient] = [LinearEmulator.defaultClient],
        settings: EmulatorSettings = EmulatorSettings()
    ) {
        self.host = host
        self.requestedPort = port
        self.stateFile = nil
        self.state = EmulatorState(organizations: organizations, clients: clients, settings: settings)
    }

    /// An emulator that keeps its world (workspaces, clients, grants, tokens) in `stateFile`: read
    /// now if it exists, written after every request that changes something and when it stops, so
    /// that installs survive a restart. Development only: the file holds tokens (mode 0600).
    /// - Throws: ``EmulatorError`` if the file exists and cannot be used.
    public init(
        host: String = "127.0.0.1", port: Int = 0, stateFile: String,
        organizations: [EmulatedOrganization] = LinearEmulator.defaultOrganizations, settings: EmulatorSettings = EmulatorSettings()
    ) async throws {
        self.host = host
        self.requestedPort = port
        self.stateFile = stateFile
        self.state = EmulatorState(organizations: organizations, clients: [], settings: settings)
        if try await !state.load(from: stateFile) { try await state.save(to: stateFile) }
    }

    /// Writes the world to ``stateFile`` now (no-op without one).
    public func persist() async throws {
        guard let stateFile else { return }
        try await state.save(to: stateFile)
    }

    /// The client with this id, if the emulator knows it.
    public func client(_ id: String) async -> EmulatedClient? { await state.client(id) }

    /// The bound port, once started.
    public var port: Int? { running.withLock { $0.port } }

    /// `http://HOST:PORT`, once started: use it as `LINEAR_API_URL`.
    public var baseURL: String? { port.map { "http://\(host):\($0)" } }

    /// Starts listening and returns the base URL once the server accepts connections.
    /// - Parameter gracefulShutdownSignals: Signals that stop the server gracefully (``run(onListening:)``,
    ///   the command's, takes SIGTERM and SIGINT; none by default, so a test process keeps its own).
    @discardableResult
    public func start(gracefulShutdownSignals: [UnixSignal] = []) async throws -> String {
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: EmulatorRoutes(state: state, stateFile: stateFile).router(),
            configuration: .init(address: .hostname(host, port: requestedPort), serverName: "linear-emulator"),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            })
        let group = ServiceGroup(configuration: .init(
            services: [app], gracefulShutdownSignals: gracefulShutdownSignals, logger: Logger(label: "linear-emulator")))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else {
            _ = try await task.value
            throw EmulatorError("the emulator stopped before it was listening")
        }
        running.withLock { $0 = (task, group, port) }
        return "http://\(host):\(port)"
    }

    /// Runs until the surrounding task is cancelled (the `linear-oauth emulator` command).
    public func run(onListening: @Sendable (String) -> Void = { _ in }) async throws {
        let url = try await start(gracefulShutdownSignals: [.sigterm, .sigint])
        onListening(url)
        let (task, group) = running.withLock { ($0.task, $0.group) }
        try await withTaskCancellationHandler {
            try await task?.value
        } onCancel: {
            Task { await group?.triggerGracefulShutdown() }
        }
    }

    /// Stops the server.
    public func stop() async {
        await state.releaseHeldResponses()
        try? await persist()
        let (task, group) = running.withLock { state in
            defer { state = (nil, nil, nil) }
            return (state.task, state.group)
        }
        // Held responses are released above, so no request keeps the shutdown waiting.
        await group?.triggerGracefulShutdown()
        _ = try? await task?.value
    }

    // MARK: - Control from Swift (the same as the /_emulator/ routes)

    /// Replaces the run-time settings (lifetimes, grace, latency, rate limit, auto-approve).
    public func configure(_ settings: EmulatorSettings) async { await state.update(settings) }

    /// The current run-time settings.
    public func settings() async -> EmulatorSettings { await state.settings }

    /// Makes the next `count` token calls fail with `status` (and `Retry-After`, if given).
    public func failNextTokenCalls(_ count: Int, status: Int, retryAfter: Int? = nil) async {
        await state.armFailures(count: count, status: status, retryAfter: retryAfter)
    }

    /// The next refresh is carried out (the refresh token rotates) but its response is lost:
    /// the connection closes without an answer.
    public func dropNextRefreshResponse() async { await state.armDropNextRefresh() }

    /// The next refresh is carried out (the refresh token rotates) but its response is held back
    /// until ``releaseHeldResponses()``: a caller that dies meanwhile never learns the new tokens.
    public func holdNextRefreshResponse() async { await state.armHoldNextRefresh() }

    /// How many responses have been held back so far (the refresh behind each one has rotated).
    public func responsesHeld() async -> Int { await state.responsesHeld }

    /// Sends the held responses (to whoever is still listening).
    public func releaseHeldResponses() async { await state.releaseHeldResponses() }

    /// Every token, revoke and GraphQL call so far.
    public func requests() async -> [EmulatorRequestRecord] { await state.requests() }

    /// Token calls received so far, counted when they arrive (before any injected latency), so a
    /// test can tell that a call is in flight.
    public func tokenCallsArrived() async -> Int { await state.tokenCallsArrived }

    /// Forgets the request log.
    public func clearRequests() async { await state.clearRequests() }

    /// Adds (or replaces) a workspace.
    public func add(_ organization: EmulatedOrganization) async { await state.add(organization) }

    /// Adds (or replaces) an OAuth application.
    public func add(_ client: EmulatedClient) async { await state.add(client) }

    /// Issues tokens as an install would, without the browser: the token endpoint's JSON answer.
    public func mintGrant(
        clientID: String = LinearEmulator.defaultClient.id, organizationID: String, scopes: [String] = ["read", "write"],
        actor: String = "app"
    ) async throws -> EmulatedTokenResponse {
        guard let response = await state.mintGrant(clientID: clientID, organizationID: organizationID, scopes: scopes, actor: actor, now: Date())
        else { throw EmulatorError("unknown client \(clientID) or organization \(organizationID)") }
        return response
    }

    /// What a refresh token would get now (`current`, `replayable` within the grace period, ...):
    /// a test's proof that a stored grant is still alive.
    public func check(refreshToken: String) async -> RefreshTokenCheck {
        await state.check(refreshToken: refreshToken, now: Date())
    }

    /// What an access token would get now (`live`, `expired`, `revoked`, `unknown`): why Linear
    /// refused a call made with it.
    public func check(accessToken: String) async -> AccessTokenCheck {
        await state.check(accessToken: accessToken, now: Date())
    }

    /// Live grants per organization of a client (an install that was not lost has exactly one).
    public func liveGrants(clientID: String = LinearEmulator.defaultClient.id) async -> [String: Int] {
        await state.liveGrants(clientID: clientID)
    }

    /// Expires every access token of a workspace now.
    @discardableResult
    public func expireAccessTokens(organizationID: String) async -> Int {
        await state.expireAccessTokens(organizationID: organizationID, now: Date())
    }

    /// Uninstalls the app from a workspace on Linear's side: revokes its grants and, if the client
    /// has a webhook URL, sends the signed `OAuthApp`/`revoked` webhook.
    /// - Returns: The webhook's HTTP status, or `nil` if no webhook was sent.
    @discardableResult
    public func uninstall(organizationID: String, clientID: String = LinearEmulator.defaultClient.id) async throws -> Int? {
        _ = await state.revokeGrants(clientID: clientID, organizationID: organizationID)
        guard let client = await state.client(clientID), let url = client.webhookURL, let secret = client.webhookSecret else {
            return nil
        }
        return try await Self.sendRevokedWebhook(to: url, secret: secret, clientID: clientID, organizationID: organizationID)
    }

    /// Posts an `OAuthApp`/`revoked` webhook as Linear does: `linear-signature` is the hex
    /// HMAC-SHA256 of the raw body, keyed by the webhook secret; `webhookTimestamp` is Unix ms.
    static func sendRevokedWebhook(to url: String, secret: String, clientID: String, organizationID: String) async throws -> Int {
        let now = Date()
        let payload: [String: Any] = [
            "type": "OAuthApp", "action": "revoked", "organizationId": organizationID, "oauthClientId": clientID,
            "createdAt": ISO8601DateFormatter().string(from: now), "webhookId": UUID().uuidString.lowercased(),
            "webhookTimestamp": Int64(now.timeIntervalSince1970 * 1000),
        ]
        let body = try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])
        let signature = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json; charset=utf-8")
        request.headers.add(name: "linear-signature", value: signature)
        request.headers.add(name: "linear-event", value: "OAuthApp")
        request.headers.add(name: "linear-delivery", value: UUID().uuidString.lowercased())
        request.headers.add(name: "user-agent", value: "Linear-Webhook")
        request.body = .bytes(ByteBuffer(data: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return Int(response.status.code)
    }
}

/// A misuse of the emulator itself.
public struct EmulatorError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
