import Foundation

/// Where the tokens live, parsed from `DATABASE_URL`.
public enum DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    /// A SQLite file (`sqlite:PATH`).
    case sqlite(path: String)
    /// A PostgreSQL server (`postgres://` or `postgresql://`).
    case postgres(PostgresSettings)

    /// The environment variable holding the URL.
    public static let variable = "DATABASE_URL"
    /// The store used when no URL is given: a SQLite file in the working directory.
    public static let defaultURL = DatabaseURL.sqlite(path: "./linear-oauth.sqlite")

    /// Connection settings of a PostgreSQL URL.
    public struct PostgresSettings: Sendable, Equatable {
        /// TLS modes, as libpq's `sslmode`.
        public enum SSLMode: String, Sendable, CaseIterable {
            case disable, allow, prefer, require
            case verifyCA = "verify-ca"
            case verifyFull = "verify-full"
        }
        public var host: String
        public var port: Int
        /// A Unix socket path, from a `host=/dir` query parameter (libpq style); wins over `host`.
        public var unixSocketPath: String?
        public var username: String
        public var password: Secret?
        public var database: String
        public var sslMode: SSLMode

        /// Creates settings for a TCP (or, with `unixSocketPath`, a Unix socket) connection.
        public init(
            host: String, port: Int = 5432, unixSocketPath: String? = nil, username: String, password: Secret? = nil,
            database: String, sslMode: SSLMode = .prefer
        ) {
            self.host = host
            self.port = port
            self.unixSocketPath = unixSocketPath
            self.username = username
            self.password = password
            self.database = database
            self.sslMode = sslMode
        }
    }

    /// Parses a database URL; `nil` or empty gives ``defaultURL``.
    /// - Throws: ``TokenStoreError/invalidDatabaseURL(_:)``; the message never repeats the password.
    public init(parsing text: String?) throws(TokenStoreError) {
        guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
            self = DatabaseURL.defaultURL
            return
        }
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else { throw .invalidDatabaseURL("sqlite: needs a file path, as in sqlite:./linear-oauth.sqlite") }
            self = .sqlite(path: path)
            return
        }
        let scheme = text.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw .invalidDatabaseURL(
                "expected postgres://, postgresql:// or sqlite:PATH, got \(scheme.isEmpty || scheme == text ? "no scheme" : "scheme \"\(scheme)\"")")
        }
        guard let components = URLComponents(string: text) else {
            throw .invalidDatabaseURL("not a valid URL (check that special characters in the password are percent-encoded)")
        }
        var settings = PostgresSettings(
            host: components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost",
            port: components.port ?? 5432,
            unixSocketPath: nil,
            username: components.user ?? "postgres",
            password: components.password.map(Secret.init),
            database: String(components.path.drop(while: { $0 == "/" })),
            sslMode: .prefer)
        if settings.database.isEmpty { settings.database = settings.username }
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(PostgresSettings.SSLMode.init(rawValue:)) else {
                    throw .invalidDatabaseURL(
                        "sslmode must be one of \(PostgresSettings.SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                settings.sslMode = mode
            case "host":
                guard let value = item.value, value.hasPrefix("/") else {
                    throw .invalidDatabaseURL("the host parameter must be a socket directory starting with /")
                }
                settings.unixSocketPath = "\(value)/.s.PGSQL.\(settings.port)"
            case "user": settings.username = item.value ?? settings.username
            case "password": settings.password = item.value.map(Secret.init)
            default:
                throw .invalidDatabaseURL("unsupported parameter \"\(item.name)\" (supported: sslmode, host, user, password)")
            }
        }
        self = .postgres(settings)
    }

    /// The URL with the password left out, for logs and messages.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let s):
            let location = s.unixSocketPath ?? "\(s.host):\(s.port)"
            return "postgres://\(s.username)\(s.password == nil ? "" : ":<redacted>")@\(location)/\(s.database)?sslmode=\(s.sslMode.rawValue)"
        }
    }
}
