/// A storage failure. Messages carry no token and no database password.
public enum TokenStoreError: Error, Equatable, CustomStringConvertible {
    /// Another holder kept the organization's refresh lock past the lock timeout. Transient: try again.
    case lockTimeout(organizationID: String)
    /// `DATABASE_URL` (or `--database-url`) is not a supported database URL.
    case invalidDatabaseURL(String)
    /// The database has migrations this build does not know: it was migrated by a newer version.
    case schemaTooNew(databaseVersion: Int, supportedVersion: Int)
    /// The database reported an error.
    case database(String)

    public var description: String {
        switch self {
        case .lockTimeout(let organizationID):
            "timed out waiting for the refresh lock of organization \(organizationID)"
        case .invalidDatabaseURL(let reason):
            "invalid DATABASE_URL: \(reason)"
        case .schemaTooNew(let databaseVersion, let supportedVersion):
            "the database schema is at version \(databaseVersion), newer than this build supports (\(supportedVersion)); upgrade linear-oauth"
        case .database(let message):
            "database error: \(message)"
        }
    }
}
