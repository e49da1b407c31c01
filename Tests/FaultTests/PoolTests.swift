import Foundation
import LinearOAuth
@testable import LinearOAuthPostgres
import LinearOAuthTestSupport
import Logging
import PostgresNIO
import NIOCore
import NIOPosix
import Testing

extension FaultSuite {
    /// `serve`'s PostgreSQL pool. PostgresNIO starts a timer each time a connection goes idle (its
    /// idle time-out, and its keep-alive), and a cancelled timer's memory stays until it would have
    /// fired (swiftlang/swift#60441): a `serve` with an on-demand pool grew by 1.5 kB a request,
    /// 232 MB after a minute of cache misses. So `serve` keeps a fixed pool (no idle time-outs) with
    /// a 5 s keep-alive; the scale harness measures the memory itself.
    @Suite("Faults: serve's PostgreSQL connections")
    struct PoolTests {
        @Test("serve opens its whole pool at start, keeps it under load, names it, and checks idle connections every 5 s")
        func fixedPool() async throws {
            try await withWorld(.postgres) { world in
                let organizations = (0..<10).map { String(format: "org-pool-%02d", $0) }
                try await world.install(organizations, expiresIn: 86_400)
                let serve = try await ServeInstance.start(world.environment(["LINEAR_OAUTH_DATABASE_CONNECTIONS": "6", "LINEAR_OAUTH_TOKEN_CACHE_SIZE": "1"]))
                defer { serve.child.kill() }
                let store = try #require(world.vault.store as? PostgresTokenStore)
                // The instance's connections, as PostgreSQL sees them: (state, last statement).
                @Sendable func connections() async throws -> [(state: String, query: String)] {
                    try await store.client.query(
                        "SELECT coalesce(state, ''), query FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'linear-oauth serve'",
                        logger: Logger(label: "linear-oauth.test")
                    ).collect().map { try $0.decode((String, String).self) }
                }
                try await waitUntil("serve to open its six connections") { try await connections().count == 6 }
                // Cache misses (a cache of one) lease and release them; none is closed or added.
                for _ in 0..<5 {
                    for organization in organizations {
                        let answer = try await RawHTTP.request(
                            .GET, serve.url + "/v1/installations/\(organization)/access-token", headers: world.authorization)
                        #expect(answer.status == 200)
                    }
                    _ = try await RawHTTP.request(.GET, serve.url + "/v1/installations?limit=5", headers: world.authorization)
                }
                #expect(try await connections().count == 6)
                // An idle connection runs the keep-alive (PostgresNIO's own default would take 30 s).
                try await waitUntil(timeout: .seconds(25), "a keep-alive on an idle connection") {
                    try await connections().contains { $0.state == "idle" && $0.query.hasPrefix("SELECT 1") }
                }
                #expect(try await connections().count == 6)
            }
        }

        /// A server that accepts connections and never answers: the pool waits for its handshake
        /// forever, so only the store's own deadline (the statement watchdog) gives the caller an answer.
        @Test("a read from a server that never answers fails as unavailable after the connection time-out, and does not cancel the caller")
        func silentServer() async throws {
            let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { _ in MultiThreadedEventLoopGroup.singleton.any().makeSucceededVoidFuture() }
                .bind(host: "127.0.0.1", port: 0).get()
            let port = try #require(silent.localAddress?.port)
            let url = "postgres://app:app@127.0.0.1:\(port)/tokens?sslmode=disable"
            guard case .postgres(let settings) = try DatabaseURL(parsing: url) else { throw TestSupportError("not a postgres URL") }
            let store = PostgresTokenStore(settings: settings, minConnections: 0, connectionTimeout: .milliseconds(300))
            for _ in 0..<3 {
                do {
                    _ = try await store.load(organizationID: "org-silent")
                    Issue.record("a silent server answered")
                } catch {
                    #expect("\(error)".contains("did not answer within 300 ms"), "\(error)")
                }
                #expect(!Task.isCancelled)
            }
            try await store.close()
            // Closing ends the watch: a read in flight fails then, not after its time-out (a minute here).
            let patient = PostgresTokenStore(settings: settings, minConnections: 0, connectionTimeout: .seconds(60))
            let read = Task { try await patient.load(organizationID: "org-silent") }
            try await waitUntil("the read to be watched") { patient.watchdog.watchedCount == 1 }
            try await patient.close()
            await #expect(throws: TokenStoreError.database("the PostgreSQL store was closed before PostgreSQL answered")) {
                _ = try await read.value
            }
            // And a read after closing fails at once.
            await #expect(throws: TokenStoreError.database("the PostgreSQL store was closed before PostgreSQL answered")) {
                _ = try await patient.load(organizationID: "org-silent")
            }
            try await silent.close()
        }
    }
}
