import Foundation
import LinearOAuth
import Logging
import PostgresNIO

/// A PostgreSQL server for tests: the one named by `DATABASE_URL` when it is a `postgres://` URL,
/// otherwise a throwaway cluster (initdb + pg_ctl in a temporary directory, on a free port on
/// 127.0.0.1) started once per test process and removed by a watchdog when that process ends.
/// Each test gets a database of its own.
public actor PostgresTestServer {
    public static let shared = PostgresTestServer()

    /// One start for every caller: the actor is re-entered while the first caller waits for it.
    private var starting: Task<DatabaseURL.PostgresSettings, any Error>?

    /// The server's connection settings, starting the throwaway cluster on first use.
    public func settings() async throws -> DatabaseURL.PostgresSettings {
        if let starting { return try await starting.value }
        let task = Task<DatabaseURL.PostgresSettings, any Error> {
            if let url = ProcessInfo.processInfo.environment["DATABASE_URL"], url.hasPrefix("postgres") {
                guard case .postgres(let parsed) = try DatabaseURL(parsing: url) else { fatalError("unreachable") }
                return parsed
            }
            // Starting a cluster blocks for a few seconds: keep it off the cooperative thread pool.
            return try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread { continuation.resume(with: Result { try ThrowawayCluster.start() }) }
            }
        }
        starting = task
        return try await task.value
    }

    /// Creates an empty database and returns settings pointing at it.
    public func createDatabase() async throws -> DatabaseURL.PostgresSettings {
        var settings = try await settings()
        let name = "linear_oauth_test_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        try await Self.admin(settings) { connection in
            try await connection.query("CREATE DATABASE \(unescaped: name)", logger: Self.logger)
        }
        settings.database = name
        return settings
    }

    /// Drops a database made by ``createDatabase()``, closing connections still open to it.
    public func dropDatabase(_ settings: DatabaseURL.PostgresSettings) async throws {
        let base = try await self.settings()
        try await Self.admin(base) { connection in
            try await connection.query("DROP DATABASE IF EXISTS \(unescaped: settings.database) WITH (FORCE)", logger: Self.logger)
        }
    }

    static let logger = Logger(label: "linear-oauth.test.postgres")

    private static func admin(
        _ settings: DatabaseURL.PostgresSettings, _ body: (PostgresConnection) async throws -> Void
    ) async throws {
        let configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password?.value,
            database: settings.database, tls: .disable)
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: configuration.host!, port: configuration.port!, username: configuration.username,
                password: configuration.password, database: configuration.database, tls: .disable),
            id: 1, logger: logger)
        do {
            try await body(connection)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

/// A PostgreSQL cluster of one test's own, which the test may stop and start again (on the same
/// port) to play an outage. Removed by a watchdog when the test process ends, and by ``remove()``.
public final class PostgresTestCluster: Sendable {
    /// Connection settings (database `postgres`).
    public let settings: DatabaseURL.PostgresSettings
    private let cluster: ThrowawayCluster.Started

    /// initdb and start, off the cooperative thread pool (it blocks for a few seconds).
    public static func start() async throws -> PostgresTestCluster {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try ThrowawayCluster.startCluster() }.map(PostgresTestCluster.init))
            }
        }
    }

    private init(_ cluster: ThrowawayCluster.Started) {
        self.cluster = cluster
        self.settings = cluster.settings
    }

    /// `postgres://` URL for child processes.
    public var url: String {
        "postgres://\(settings.username)@\(settings.host):\(settings.port)/\(settings.database)?sslmode=disable"
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are closed, as in a restart or failover).
    public func stop() async throws {
        try await blocking { try self.cluster.pgctl(["-m", "fast", "stop"]) }
    }

    /// Starts the stopped server again on the same port.
    public func restart() async throws {
        try await blocking { try self.cluster.pgctl(["-o", self.cluster.options, "start"]) }
    }

    /// Stops the server at once and deletes its files.
    public func remove() async {
        _ = try? await blocking { try self.cluster.pgctl(["-m", "immediate", "stop"]) }
        try? FileManager.default.removeItem(atPath: cluster.root)
    }

    private func blocking(_ work: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
        }
    }
}

/// Starts a private PostgreSQL cluster. PostgreSQL refuses to run as root, so as root the server
/// runs as the `postgres` user (Debian's package creates it) through `runuser`.
enum ThrowawayCluster {
    /// A running cluster's files and how to control it.
    struct Started: Sendable {
        let bin: String
        let root: String
        let data: String
        let options: String
        let asPostgres: Bool
        let settings: DatabaseURL.PostgresSettings

        func pgctl(_ arguments: [String]) throws {
            try ThrowawayCluster.run(
                bin + "/pg_ctl", ["-D", data, "-l", root + "/server.log", "-w", "-t", "60"] + arguments,
                asPostgres: asPostgres, log: root + "/pg_ctl.log")
        }
    }

    static func start() throws -> DatabaseURL.PostgresSettings { try startCluster().settings }

    static func startCluster() throws -> Started {
        let bin = try binDirectory()
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("linear-oauth-pg-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let asPostgres = geteuid() == 0
        if asPostgres {
            guard let user = getpwnam("postgres") else {
                throw TestSupportError("running as root and there is no postgres user to run PostgreSQL as")
            }
            chown(root, user.pointee.pw_uid, user.pointee.pw_gid)
        }
        let data = "\(root)/data"
        let log = "\(root)/server.log"
        try run(bin + "/initdb", ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            asPostgres: asPostgres, log: "\(root)/initdb.log")
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try freePort()
            let options = "-p \(port) -k \(root) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                + "-c full_page_writes=off -c max_connections=300"
            do {
                try run(bin + "/pg_ctl", ["-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start"],
                    asPostgres: asPostgres, log: "\(root)/pg_ctl.log")
                try startWatchdog(bin: bin, data: data, root: root, asPostgres: asPostgres)
                return Started(
                    bin: bin, root: root, data: data, options: options, asPostgres: asPostgres,
                    settings: DatabaseURL.PostgresSettings(
                        host: "127.0.0.1", port: port, unixSocketPath: nil, username: "postgres", password: nil,
                        database: "postgres", sslMode: .disable))
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    /// Where initdb and pg_ctl live: on PATH, or Debian's /usr/lib/postgresql/VERSION/bin.
    static func binDirectory() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: "\(directory)/initdb")
            if FileManager.default.isExecutableFile(atPath: candidate.path) {
                return candidate.resolvingSymlinksInPath().deletingLastPathComponent().path
            }
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let directory = "/usr/lib/postgresql/\(version)/bin"
            if FileManager.default.isExecutableFile(atPath: "\(directory)/initdb") { return directory }
        }
        throw TestSupportError("initdb not found on PATH or in /usr/lib/postgresql/*/bin: install PostgreSQL or set DATABASE_URL")
    }

    /// Stops the cluster and deletes its directory once the test process is gone, however it ends.
    private static func startWatchdog(bin: String, data: String, root: String, asPostgres: Bool) throws {
        let stop = (asPostgres ? "runuser -u postgres -- " : "") + "'\(bin)/pg_ctl' -D '\(data)' -m immediate stop"
        let script = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; \(stop) >/dev/null 2>&1; rm -rf '\(root)'"
        _ = try Spawn.start(
            ["/bin/sh", "-c", script], stdin: .file("/dev/null", write: false), stdout: .file("/dev/null", write: true),
            stderr: .file("/dev/null", write: true))
    }

    /// Runs a program to completion with its output in `log`.
    static func run(_ executable: String, _ arguments: [String], asPostgres: Bool, log: String) throws {
        let argv = asPostgres ? ["/usr/sbin/runuser", "-u", "postgres", "--", executable] + arguments : [executable] + arguments
        let pid = try Spawn.start(argv, stdin: .file("/dev/null", write: false), stdout: .file(log, write: true), stderr: .descriptor(1))
        let status = Spawn.wait(pid)
        guard status == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw TestSupportError("\(URL(fileURLWithPath: executable).lastPathComponent) failed (\(status)): \(text.suffix(2000))")
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestSupportError("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestSupportError("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A failure of the test support itself (not of the code under test).
public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
