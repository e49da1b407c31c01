// The token API's request in instructions, for Scripts/callgrind-token-api.sh (valgrind crashes
// in an async `main`, so `linear-oauth serve` cannot be counted; this runs serve's router on serve's
// HTTP server under `runBlockingMain`). Built only with LINEAR_OAUTH_BENCHMARKS=1:
//
//   ServeCount bare|ours|none REQUESTS
//
// The set-up starts both servers, as ServiceBenchmarks does: `LinearOAuthServer.router()` with
// Prometheus and refresh-ahead on a SQLite store holding one installation (its token cached by a
// first request), and a bare route at the same path (its parameter too) answering as many bytes with
// the same request context; both on
// `LinearOAuthServer.httpServer()`. Then REQUESTS sequential keep-alive GETs from one
// AsyncHTTPClient go to the token route (`ours`), the bare route (`bare`) or nowhere (`none`).
// Each run's total less the `none` run's, divided by REQUESTS, is a request's instructions, the
// client's included (the same for both routes); the difference is the route's own work.
import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import LinearOAuth
import LinearOAuthServer
import LinearOAuthSQLite
import LinearOAuthTestSupport
import NIOCore
import Prometheus

let arguments = CommandLine.arguments
guard arguments.count == 3, ["bare", "ours", "none"].contains(arguments[1]), let requests = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: ServeCount bare|ours|none REQUESTS\n".utf8))
    exit(2)
}
let mode = arguments[1]

@Sendable func serve(_ router: Router<LinearOAuthRequestContext>) async throws -> String {
    let (stream, continuation) = AsyncStream<Int>.makeStream()
    let app = Application(
        router: router, server: LinearOAuthServer.httpServer(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { continuation.yield($0.localAddress?.port ?? 0); continuation.finish() })
    Task { try await app.run() }
    var iterator = stream.makeAsyncIterator()
    return "http://127.0.0.1:\(await iterator.next() ?? 0)"
}

/// The whole run (on a detached task: see `runBlockingMain`).
@Sendable func run() async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let store = try SQLiteTokenStore(path: directory.path + "/serve.sqlite", maxConnections: 8)
    try await store.migrate()
    let vault = TokenVault(store: store, keyRing: try KeyRing(keys: [("count", SymmetricKey(size: .bits256))]))
    try await vault.save(Installation(
        organizationID: "org-acme", appUserID: "app-user-acme", accessToken: Secret("lin_oauth_" + String(repeating: "a", count: 64)),
        refreshToken: Secret("lin_refresh_" + String(repeating: "r", count: 64)), expiresAt: Date().addingTimeInterval(86_400), scopes: ["read", "write"]))
    // As serve: the manager's metrics go to the registry GET /metrics shows.
    let registry = PrometheusCollectorRegistry()
    var managerConfiguration = TokenManager.Configuration()
    managerConfiguration.metricsFactory = PrometheusMetricsFactory(registry: registry)
    managerConfiguration.refreshAhead = true
    let manager = TokenManager(vault: vault, linear: LinearClient(configuration: LinearClientConfiguration(
        clientID: "count", clientSecret: Secret("count-secret"), apiURL: "http://127.0.0.1:9")), configuration: managerConfiguration)
    var configuration = LinearOAuthServerConfiguration(apiKeys: [Secret("count-key")], webhookSecret: Secret("count"))
    configuration.prometheus = registry
    let tokenURL = try await serve(LinearOAuthServer(manager: manager, configuration: configuration).router()) + "/v1/installations/org-acme/access-token"
    let http = HTTPClient(eventLoopGroupProvider: .singleton)
    func get(_ url: String) async throws -> ByteBuffer {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer count-key")
        let response = try await http.execute(request, timeout: .seconds(60))
        guard response.status == .ok else { fatalError("\(url) answered \(response.status)") }
        return try await response.body.collect(upTo: 1 << 16)
    }
    let size = try await get(tokenURL).readableBytes
    let constant = ByteBuffer(repeating: UInt8(ascii: "x"), count: size)
    let bare = Router(context: LinearOAuthRequestContext.self)
    // At the token route's path, with its parameter: the same request bytes, parsed and routed alike.
    bare.get("/v1/installations/:organization/access-token") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: constant)) }
    let bareURL = try await serve(bare) + "/v1/installations/org-acme/access-token"
    // Both warmed, whatever the mode, so that the set-up is the same in every run.
    for _ in 0..<10 {
        _ = try await get(tokenURL)
        _ = try await get(bareURL)
    }
    var bytes = 0
    switch mode {
    case "bare": for _ in 0..<requests { bytes += try await get(bareURL).readableBytes }
    case "ours": for _ in 0..<requests { bytes += try await get(tokenURL).readableBytes }
    default: bytes = requests * size
    }
    precondition(bytes == requests * size)
    try await http.shutdown()
    try await store.close()
    print("\(mode): \(requests) requests")
}

runBlockingMain("ServeCount", run)
