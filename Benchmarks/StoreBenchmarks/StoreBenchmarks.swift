// Store benchmarks: each measured thing is paired with a bare baseline measured in the same run.
//
//   LINEAR_OAUTH_BENCHMARKS=1 swift package benchmark --target StoreBenchmarks
//
// PostgreSQL: DATABASE_URL when it is a postgres:// URL, else a throwaway cluster on 127.0.0.1.
import Benchmark
import Crypto
import Foundation
import LinearOAuth
import LinearOAuthPostgres
import LinearOAuthSQLite
import LinearOAuthTestSupport
import PostgresNIO
import SQLiteNIO

/// The state the benchmarks share, made once in the setup hooks.
final class Setup: @unchecked Sendable {
    static let shared = Setup()
    let organizationID = "org-bench"
    let keyRing: KeyRing
    let installation: Installation
    let sealed: SealedInstallation
    let columns = """
        organization_id, app_user_id, access_token, refresh_token, expires_at, scopes, key_id, status, \
        last_refresh_at, last_error, refresh_failures, created_at, updated_at
        """
    var sqliteVault: TokenVault!
    var sqliteRaw: SQLiteConnection!
    var postgresVault: TokenVault!
    var postgresClient: PostgresClient!
    var directory: TemporaryDirectory?

    init() {
        keyRing = try! KeyRing(keys: [("bench", SymmetricKey(size: .bits256))])
        // Token lengths as Linear's: "lin_oauth_" + 64 hex characters.
        installation = Installation(
            organizationID: organizationID, appUserID: "app-user-bench",
            accessToken: Secret("lin_oauth_" + String(repeating: "a1b2c3d4", count: 8)),
            refreshToken: Secret("lin_refresh_" + String(repeating: "e5f6a7b8", count: 8)),
            expiresAt: Date().addingTimeInterval(86_400), scopes: ["read", "write"])
        sealed = try! keyRing.seal(installation)
    }

    func startSQLite() async throws {
        guard sqliteVault == nil else { return }
        let directory = try TemporaryDirectory()
        self.directory = directory
        let path = directory.path + "/bench.sqlite"
        let store = try SQLiteTokenStore(path: path)
        try await store.migrate()
        sqliteVault = TokenVault(store: store, keyRing: keyRing)
        try await sqliteVault.save(installation)
        sqliteRaw = try await SQLiteConnection.open(storage: .file(path: path))
    }

    func startPostgres() async throws {
        guard postgresVault == nil else { return }
        let settings = try await PostgresTestServer.shared.createDatabase()
        let store = PostgresTokenStore(settings: settings)
        try await store.migrate()
        postgresVault = TokenVault(store: store, keyRing: keyRing)
        postgresClient = store.client
        try await postgresVault.save(installation)
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 200,
        maxDuration: .seconds(4),
        maxIterations: 50_000)
    let setup = Setup.shared
    // Each benchmark runs in a process of its own: remove its temporary store when it ends.
    Benchmark.teardown = { setup.directory?.remove() }

    // MARK: Encryption

    Benchmark("crypto: bare AES-256-GCM seal+open of two tokens (baseline)") { benchmark in
        let key = SymmetricKey(size: .bits256)
        let access = Array(setup.installation.accessToken.value.utf8)
        let refresh = Array(setup.installation.refreshToken.value.utf8)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let a = try! AES.GCM.seal(access, using: key)
            let r = try! AES.GCM.seal(refresh, using: key)
            blackHole(try! AES.GCM.open(a, using: key))
            blackHole(try! AES.GCM.open(r, using: key))
        }
    }

    Benchmark("crypto: KeyRing seal+open of a token pair") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! setup.keyRing.open(try! setup.keyRing.seal(setup.installation)))
        }
    }

    // MARK: SQLite

    Benchmark(
        "sqlite: bare SELECT of the row (baseline)",
        closure: { benchmark async in
            let sql = "SELECT \(setup.columns) FROM linear_tokens WHERE organization_id = ?"
            for _ in benchmark.scaledIterations {
                blackHole(try! await setup.sqliteRaw.query(sql, [.text(setup.organizationID)]))
            }
        },
        setup: { try await setup.startSQLite() })

    Benchmark(
        "sqlite: load+decrypt of one installation",
        closure: { benchmark async in
            for _ in benchmark.scaledIterations {
                blackHole(try! await setup.sqliteVault.load(organizationID: setup.organizationID))
            }
        },
        setup: { try await setup.startSQLite() })

    // MARK: PostgreSQL

    Benchmark(
        "postgres: bare SELECT of the row (baseline)",
        closure: { benchmark async in
            for _ in benchmark.scaledIterations {
                blackHole(try! await setup.postgresClient.query(
                    "SELECT \(unescaped: setup.columns) FROM linear_tokens WHERE organization_id = \(setup.organizationID)"
                ).collect())
            }
        },
        setup: { try await setup.startPostgres() })

    Benchmark(
        "postgres: load+decrypt of one installation",
        closure: { benchmark async in
            for _ in benchmark.scaledIterations {
                blackHole(try! await setup.postgresVault.load(organizationID: setup.organizationID))
            }
        },
        setup: { try await setup.startPostgres() })
}
