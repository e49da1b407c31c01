// swift-tools-version:6.2
import Foundation
import PackageDescription

/// Benchmarks pull in ordo-one/benchmark and its malloc interposer; they stay out of the default
/// build and are switched on with `LINEAR_OAUTH_BENCHMARKS=1` (see README, "Benchmarks").
let benchmarksEnabled = ProcessInfo.processInfo.environment["LINEAR_OAUTH_BENCHMARKS"] == "1"

var package = Package(
    name: "LinearOAuth",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LinearOAuth", targets: ["LinearOAuth"]),
        .library(name: "LinearOAuthPostgres", targets: ["LinearOAuthPostgres"]),
        .library(name: "LinearOAuthSQLite", targets: ["LinearOAuthSQLite"]),
        .library(name: "LinearEmulator", targets: ["LinearEmulator"]),
        .library(name: "LinearOAuthServer", targets: ["LinearOAuthServer"]),
        .executable(name: "linear-oauth", targets: ["linear-oauth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        .target(
            name: "LinearOAuth",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        /// The HTTP service: the token API, Linear's webhooks, health checks.
        .target(
            name: "LinearOAuthServer",
            dependencies: [
                "LinearOAuth",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        /// A real HTTP server that speaks Linear's OAuth and GraphQL subset, with fault injection.
        /// It shares no code with the client in LinearOAuth, so the two cannot drift together.
        .target(
            name: "LinearEmulator",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "LinearOAuthPostgres",
            dependencies: [
                "LinearOAuth",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "LinearOAuthSQLite",
            dependencies: [
                "LinearOAuth",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ]
        ),
        .executableTarget(
            name: "linear-oauth",
            dependencies: [
                "LinearOAuth",
                "LinearOAuthPostgres",
                "LinearOAuthSQLite",
                "LinearEmulator",
                "LinearOAuthServer",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        /// A helper process for the cross-process tests (holds a refresh lock on command).
        .executableTarget(
            name: "linear-oauth-test-helper",
            dependencies: [
                "LinearOAuth", "LinearOAuthPostgres", "LinearOAuthSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/Helper"
        ),
        /// Test support shared by the tests and the benchmarks: a throwaway PostgreSQL cluster,
        /// temporary SQLite files, child processes.
        .target(
            name: "LinearOAuthTestSupport",
            dependencies: [
                "LinearOAuth", "LinearOAuthPostgres", "LinearOAuthSQLite", "LinearEmulator",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/Support"
        ),
        .testTarget(
            name: "LinearOAuthTests",
            dependencies: [
                "LinearOAuth", "LinearOAuthPostgres", "LinearOAuthSQLite", "LinearOAuthTestSupport", "LinearEmulator",
                "LinearOAuthServer", "linear-oauth", "linear-oauth-test-helper",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        /// The fault suite: outages, crashes, several processes under load (see RELIABILITY.md).
        .testTarget(
            name: "LinearOAuthFaultTests",
            dependencies: [
                "LinearOAuth", "LinearOAuthPostgres", "LinearOAuthSQLite", "LinearOAuthTestSupport", "LinearEmulator",
                "LinearOAuthServer", "linear-oauth", "linear-oauth-test-helper",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/FaultTests"
        ),
    ]
)

if benchmarksEnabled {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"])
    )
    package.targets.append(
        .executableTarget(
            name: "StoreBenchmarks",
            dependencies: [
                "LinearOAuth", "LinearOAuthPostgres", "LinearOAuthSQLite", "LinearOAuthTestSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            path: "Benchmarks/StoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
    package.targets.append(
        .executableTarget(
            name: "TokenBenchmarks",
            dependencies: [
                "LinearOAuth", "LinearOAuthSQLite", "LinearOAuthTestSupport", "LinearEmulator",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            path: "Benchmarks/TokenBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
    package.targets.append(
        .executableTarget(
            name: "ServiceBenchmarks",
            dependencies: [
                "LinearOAuth", "LinearOAuthSQLite", "LinearOAuthServer", "LinearOAuthTestSupport", "LinearEmulator",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Benchmarks/ServiceBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
    // The SQLite cold path in instructions, under valgrind (Scripts/callgrind-cold-path.sh): a plain
    // executable, since valgrind cannot run the test bundle.
    package.targets.append(
        .executableTarget(
            name: "ColdPathCount",
            dependencies: [
                "LinearOAuth", "LinearOAuthSQLite", "LinearOAuthTestSupport",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
            ],
            path: "Benchmarks/ColdPathCount"
        )
    )
    // The cached path over many keys in instructions (Scripts/callgrind-hot-path.sh), for the same reason.
    package.targets.append(
        .executableTarget(
            name: "HotPathCount",
            dependencies: ["LinearOAuth", "LinearOAuthSQLite", "LinearOAuthTestSupport"],
            path: "Benchmarks/HotPathCount"
        )
    )
    // The bare route that Scripts/wrk-token-api.sh loads next to `serve`'s token route.
    package.targets.append(
        .executableTarget(
            name: "BareRoute",
            dependencies: ["LinearOAuthServer", .product(name: "Hummingbird", package: "hummingbird")],
            path: "Benchmarks/BareRoute"
        )
    )
    // The token API's request in instructions (Scripts/callgrind-token-api.sh), for the same reason.
    package.targets.append(
        .executableTarget(
            name: "ServeCount",
            dependencies: [
                "LinearOAuth", "LinearOAuthSQLite", "LinearOAuthServer", "LinearOAuthTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Benchmarks/ServeCount"
        )
    )
    // The storm in instructions (Scripts/callgrind-storm.sh), for the same reason.
    package.targets.append(
        .executableTarget(
            name: "StormCount",
            dependencies: [
                "LinearOAuth", "LinearOAuthSQLite", "LinearOAuthTestSupport", "LinearEmulator",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/StormCount"
        )
    )
    // A PostgreSQL listing page in instructions (Scripts/callgrind-page.sh).
    package.targets.append(
        .executableTarget(
            name: "PageCount",
            dependencies: [
                "LinearOAuth", "LinearOAuthPostgres", "LinearOAuthTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/PageCount"
        )
    )
}
