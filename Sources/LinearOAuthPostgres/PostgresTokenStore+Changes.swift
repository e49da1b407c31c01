import LinearOAuth
import PostgresNIO

extension PostgresTokenStore {
    /// The LISTEN/NOTIFY channel that carries the ids of organizations whose tokens changed.
    static let changesChannel = "linear_oauth_token_changes"

    public func watchChanges(_ onChange: @escaping @Sendable (String) -> Void) async throws {
        try await watchChanges(whenListening: {}, onChange)
    }

    public func watchChanges(whenListening: @escaping @Sendable () -> Void, _ onChange: @escaping @Sendable (String) -> Void) async throws {
        try await client.withConnection { connection in
            // PostgresNIO calls the closure once the server has confirmed LISTEN.
            try await connection.listen(on: Self.changesChannel) { notifications in
                whenListening()
                for try await notification in notifications { onChange(notification.payload) }
            }
        }
    }
}
