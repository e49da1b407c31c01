import Foundation
import LinearOAuth
import NIOSSL
import PostgresNIO

extension PostgresTokenStore {
    /// Connects once outside the pool, so that an unreachable server or a refused login fails at
    /// once with a clear error. (The pool itself waits for the server to come back: right for a
    /// running service, wrong for a command that has just started.) ``migrate()`` calls it first.
    public func checkConnection() async throws {
        guard let settings else { return }
        let configuration: PostgresConnection.Configuration
        if let socket = settings.unixSocketPath {
            configuration = .init(
                unixSocketPath: socket, username: settings.username, password: settings.password?.value,
                database: settings.database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch Self.tls(settings.sslMode) {
            case .disable: tls = .disable
            case .prefer(let tlsConfiguration): tls = .prefer(try NIOSSLContext(configuration: tlsConfiguration))
            case .require(let tlsConfiguration): tls = .require(try NIOSSLContext(configuration: tlsConfiguration))
            }
            configuration = .init(
                host: settings.host, port: settings.port, username: settings.username,
                password: settings.password?.value, database: settings.database, tls: tls)
        }
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try await connection.close()
        } catch {
            let location = settings.unixSocketPath ?? "\(settings.host):\(settings.port)"
            let reason = (Self.mapError(error, organizationID: nil) as? TokenStoreError).map { error in
                if case .database(let message) = error { return message }
                return error.description
            } ?? "\(error)"
            throw TokenStoreError.database("cannot connect to \(location) as \(settings.username): \(reason)")
        }
    }

    private enum TLSChoice {
        case disable
        case prefer(TLSConfiguration)
        case require(TLSConfiguration)
    }

    /// libpq's `sslmode` meanings: `prefer` and `require` encrypt without checking the certificate,
    /// `verify-ca` checks the chain, `verify-full` also the host name.
    private static func tls(_ mode: DatabaseURL.PostgresSettings.SSLMode) -> TLSChoice {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable:
            return .disable
        case .allow, .prefer:
            configuration.certificateVerification = .none
            return .prefer(configuration)
        case .require:
            configuration.certificateVerification = .none
            return .require(configuration)
        case .verifyCA:
            configuration.certificateVerification = .noHostnameVerification
            return .require(configuration)
        case .verifyFull:
            return .require(configuration)
        }
    }

    /// The `PostgresClient` configuration for URL settings, with libpq's `sslmode` meanings; the
    /// connections show `applicationName` in `pg_stat_activity`.
    public static func configuration(
        _ settings: DatabaseURL.PostgresSettings, applicationName: String = defaultApplicationName
    ) -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socket = settings.unixSocketPath {
            configuration = PostgresClient.Configuration(
                unixSocketPath: socket, username: settings.username, password: settings.password?.value,
                database: settings.database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch Self.tls(settings.sslMode) {
            case .disable: tls = .disable
            case .prefer(let configuration): tls = .prefer(configuration)
            case .require(let configuration): tls = .require(configuration)
            }
            configuration = PostgresClient.Configuration(
                host: settings.host, port: settings.port, username: settings.username, password: settings.password?.value,
                database: settings.database, tls: tls)
        }
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        return configuration
    }

    /// The `application_name` of the store's connections unless told otherwise.
    public static let defaultApplicationName = "linear-oauth"
}
