// Service benchmarks on loopback, each against a baseline in the same run.
//
//   LINEAR_OAUTH_BENCHMARKS=1 swift package benchmark --target ServiceBenchmarks
//
// 1. GET /v1/installations/{org}/access-token against a bare Hummingbird route at the same path
//    returning a constant body of the same size, with the same client and concurrency: throughput and p99 latency. Both
//    on the HTTP server `serve` runs (`LinearOAuthServer.httpServer`: its connection limit and slow
//    client guard), and the token route with `serve`'s Prometheus metrics.
// 2. Resident memory of a TokenManager holding 100,000 cached installations.
import AsyncHTTPClient
import Benchmark
import Crypto
import Foundation
import Hummingbird
import LinearEmulator
import LinearOAuth
import LinearOAuthServer
import LinearOAuthSQLite
import LinearOAuthTestSupport
import NIOCore
import Prometheus

final class ServiceSetup: @unchecked Sendable {
    static let shared = ServiceSetup()
    let apiKey = "bench-key"
    var emulator: LinearEmulator!
    var manager: TokenManager!
    var vault: TokenVault!
    var serviceURL = ""
    var bareURL = ""
    var tokenBodySize = 0
    var directory: TemporaryDirectory?
    let http = HTTPClient(eventLoopGroupProvider: .singleton)

    func start() async throws {
        guard manager == nil else { return }
        emulator = LinearEmulator()
        let url = try await emulator.start()
        let linear = LinearClient(configuration: LinearClientConfiguration(
            clientID: LinearEmulator.defaultClient.id, clientSecret: Secret(LinearEmulator.defaultClient.secret), apiURL: url))
        let directory = try TemporaryDirectory()
        self.directory = directory
        let store = try SQLiteTokenStore(path: directory.path + "/bench.sqlite", maxConnections: 8)
        try await store.migrate()
        vault = TokenVault(store: store, keyRing: try KeyRing(keys: [("bench", SymmetricKey(size: .bits256))]))
        // As serve: the manager's metrics go to the registry GET /metrics shows.
        let registry = PrometheusCollectorRegistry()
        var managerConfiguration = TokenManager.Configuration()
        managerConfiguration.metricsFactory = PrometheusMetricsFactory(registry: registry)
        managerConfiguration.refreshAhead = true
        manager = TokenManager(vault: vault, linear: linear, configuration: managerConfiguration)
        let grant = try await emulator.mintGrant(organizationID: "org-acme")
        try await vault.save(Installation(
            organizationID: "org-acme", appUserID: "app-user-acme", accessToken: Secret(grant.accessToken),
            refreshToken: Secret(grant.refreshToken!), expiresAt: Date().addingTimeInterval(86_400), scopes: ["read", "write"]))
        var configuration = LinearOAuthServerConfiguration(apiKeys: [Secret(apiKey)], webhookSecret: Secret("bench"))
        configuration.prometheus = registry
        let server = LinearOAuthServer(manager: manager, configuration: configuration)
        serviceURL = try await Self.run(server.router()) + "/v1/installations/org-acme/access-token"
        // The bare route answers a body of the same size as the token answer.
        let sample = try await get(serviceURL)
        tokenBodySize = sample.readableBytes
        let constant = ByteBuffer(repeating: UInt8(ascii: "x"), count: tokenBodySize)
        let bare = Router(context: LinearOAuthRequestContext.self)
        // At the token route's path, with its parameter: the same request bytes, parsed and routed alike.
        bare.get("/v1/installations/:organization/access-token") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: constant)) }
        bareURL = try await Self.run(bare) + "/v1/installations/org-acme/access-token"
    }

    static func run(_ router: Router<LinearOAuthRequestContext>) async throws -> String {
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, server: LinearOAuthServer.httpServer(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0); continuation.finish() })
        Task { try await app.run() }
        var iterator = stream.makeAsyncIterator()
        return "http://127.0.0.1:\(await iterator.next() ?? 0)"
    }

    func get(_ url: String) async throws -> ByteBuffer {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        let response = try await http.execute(request, timeout: .seconds(10))
        return try await response.body.collect(upTo: 1 << 16)
    }

    /// `total` requests from `concurrency` loops; returns (requests per second, p99 latency in microseconds).
    func load(_ url: String, total: Int = 20_000, concurrency: Int = 32) async -> (Double, Int) {
        let start = ContinuousClock.now
        let latencies = await withTaskGroup(of: [Int].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Int] = []
                    for _ in 0..<(total / concurrency) {
                        let begin = ContinuousClock.now
                        _ = try? await self.get(url)
                        let elapsed = ContinuousClock.now - begin
                        latencies.append(Int(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
                    }
                    return latencies
                }
            }
            var all: [Int] = []
            for await part in group { all += part }
            return all.sorted()
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return (Double(latencies.count) / seconds, latencies[latencies.count * 99 / 100])
    }
}

func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
        let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

let benchmarks: @Sendable () -> Void = {
    let setup = ServiceSetup.shared
    Benchmark.teardown = { setup.directory?.remove() }
    let throughput = BenchmarkMetric.custom("requests per second", polarity: .prefersLarger, useScalingFactor: false)
    let p99 = BenchmarkMetric.custom("p99 latency (us)", useScalingFactor: false)
    let configuration = Benchmark.Configuration(metrics: [throughput, p99], warmupIterations: 1, maxDuration: .seconds(120), maxIterations: 3)

    Benchmark("load: bare route with a constant body of the same size (baseline)", configuration: configuration, closure: { benchmark async in
        for _ in benchmark.scaledIterations {
            let (rate, latency) = await setup.load(setup.bareURL)
            benchmark.measurement(throughput, Int(rate))
            benchmark.measurement(p99, latency)
        }
    }, setup: { try await setup.start() })

    Benchmark("load: GET /v1/installations/{org}/access-token", configuration: configuration, closure: { benchmark async in
        for _ in benchmark.scaledIterations {
            let (rate, latency) = await setup.load(setup.serviceURL)
            benchmark.measurement(throughput, Int(rate))
            benchmark.measurement(p99, latency)
        }
    }, setup: { try await setup.start() })

    // The two above run one after the other, so the machine's mood can favour either. Here they
    // alternate within each iteration, and the figure is their ratio (goal: at least 0.9x).
    let ratio = BenchmarkMetric.custom("token route / bare route requests per second (x100)", polarity: .prefersLarger, useScalingFactor: false)
    Benchmark("load: the token route against the bare route, alternated", configuration: .init(
        metrics: [ratio], warmupIterations: 1, maxDuration: .seconds(300), maxIterations: 6
    ), closure: { benchmark async in
        for iteration in benchmark.scaledIterations {
            // Which goes first alternates too.
            var rates: [String: Double] = [:]
            for url in iteration % 2 == 0 ? [setup.bareURL, setup.serviceURL] : [setup.serviceURL, setup.bareURL] {
                rates[url] = await setup.load(url).0
            }
            benchmark.measurement(ratio, Int(rates[setup.serviceURL]! / rates[setup.bareURL]! * 100))
        }
    }, setup: { try await setup.start() })

    let megabytes = BenchmarkMetric.custom("resident memory growth (MB)", useScalingFactor: false)
    let perInstallation = BenchmarkMetric.custom("bytes per cached installation", useScalingFactor: false)
    Benchmark("memory: 100,000 installations cached", configuration: .init(
        metrics: [megabytes, perInstallation], warmupIterations: 0, maxDuration: .seconds(600), maxIterations: 1
    ), closure: { benchmark async in
        let ring = setup.vault.keyRing
        let organizations = (0..<100_000).map { String(format: "org-%06d", $0) }
        for batch in stride(from: 0, to: organizations.count, by: 1_000) {
            let sealed = organizations[batch..<min(batch + 1_000, organizations.count)].map { id in
                try! ring.seal(Installation(
                    organizationID: id, appUserID: "app-user-\(id)", accessToken: Secret("lin_oauth_" + String(repeating: "a", count: 64)),
                    refreshToken: Secret("lin_refresh_" + String(repeating: "b", count: 64)),
                    expiresAt: Date().addingTimeInterval(86_400), scopes: ["read", "write"]))
            }
            try! await setup.vault.store.save(sealed)
        }
        let before = residentBytes()
        for id in organizations { _ = try! await setup.manager.accessToken(for: id) }
        let growth = residentBytes() - before
        benchmark.measurement(megabytes, growth / 1_000_000)
        benchmark.measurement(perInstallation, growth / organizations.count)
    }, setup: { try await setup.start() })
}
