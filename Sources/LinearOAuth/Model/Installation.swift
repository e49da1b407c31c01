import Foundation

/// Whether an installation's grant still works.
public enum InstallationStatus: String, Sendable, Codable, CaseIterable {
    /// The tokens can be used and refreshed.
    case active
    /// Linear refused the refresh token (`invalid_grant`): a workspace admin must install the app again.
    case reauthorizationRequired = "reauthorization_required"
}

/// Everything stored about an installation except its tokens: safe to list, print and serialize.
public struct InstallationMetadata: Sendable, Equatable, Codable {
    /// The Linear organization (workspace) id; one installation per organization.
    public var organizationID: String
    /// The app's own user id in that workspace (`viewer.id` of an `actor=app` token).
    public var appUserID: String
    /// When the access token expires.
    public var expiresAt: Date
    /// The scopes Linear granted.
    public var scopes: [String]
    /// The status of the grant.
    public var status: InstallationStatus
    /// The id of the key the tokens are encrypted under (set by the store on write).
    public var keyID: String
    /// When the tokens were last refreshed, if ever.
    public var lastRefreshAt: Date?
    /// A short code for the last refresh failure (never a token).
    public var lastError: String?
    /// Refresh failures since the last success.
    public var refreshFailures: Int
    /// When the row was created (kept by the store across re-installs).
    public var createdAt: Date
    /// When the row was last written (set by the store on write).
    public var updatedAt: Date
    /// When the current grant was installed (a new install, or a re-install, sets it; a refresh
    /// keeps it). An uninstall webhook signed before this time is about an earlier grant.
    public var installedAt: Date
    /// The OAuth application (client id) that issued the grant: only that client can refresh or
    /// revoke it. `nil` for rows stored before it was recorded; they adopt the client id of their
    /// next successful refresh.
    public var clientID: String?
    /// The workspace's name when it was installed (`organization.name`); `nil` for rows stored before
    /// it was recorded.
    public var organizationName: String?
    /// The workspace's URL key when it was installed (`linear.app/URLKEY`, `organization.urlKey`): the
    /// CLI and the API take it wherever they take an organization id. `nil` for older rows.
    public var urlKey: String?

    /// Creates metadata; the store sets `keyID`, `createdAt` and `updatedAt` when it writes.
    public init(
        organizationID: String,
        appUserID: String,
        expiresAt: Date,
        scopes: [String] = [],
        status: InstallationStatus = .active,
        keyID: String = "",
        lastRefreshAt: Date? = nil,
        lastError: String? = nil,
        refreshFailures: Int = 0,
        createdAt: Date = Date(),
        updatedAt: Date = Date(),
        installedAt: Date = Date(),
        clientID: String? = nil,
        organizationName: String? = nil,
        urlKey: String? = nil
    ) {
        self.organizationID = organizationID
        self.appUserID = appUserID
        self.expiresAt = expiresAt
        self.scopes = scopes
        self.status = status
        self.keyID = keyID
        self.lastRefreshAt = lastRefreshAt
        self.lastError = lastError
        self.refreshFailures = refreshFailures
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.installedAt = installedAt
        self.clientID = clientID
        self.organizationName = organizationName
        self.urlKey = urlKey
    }

    /// The workspace as a person knows it: "Acme (acme)", else its organization id.
    public var displayName: String {
        switch (organizationName, urlKey) {
        case let (name?, key?): "\(name) (\(key))"
        case let (name?, nil): name
        case let (nil, key?): key
        case (nil, nil): organizationID
        }
    }

    enum CodingKeys: String, CodingKey {
        case organizationID = "organization_id"
        case appUserID = "app_user_id"
        case expiresAt = "expires_at"
        case scopes
        case status
        case keyID = "key_id"
        case lastRefreshAt = "last_refresh_at"
        case lastError = "last_error"
        case refreshFailures = "refresh_failures"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case installedAt = "installed_at"
        case clientID = "client_id"
        case organizationName = "organization_name"
        case urlKey = "url_key"
    }
}

/// One workspace's installation with its tokens decrypted. Only ever in memory.
@dynamicMemberLookup
public struct Installation: Sendable, Equatable {
    /// The non-secret part.
    public var metadata: InstallationMetadata
    /// The current access token.
    public var accessToken: Secret
    /// The current refresh token (Linear rotates it on every refresh).
    public var refreshToken: Secret

    /// Creates an installation from its metadata and tokens.
    public init(metadata: InstallationMetadata, accessToken: Secret, refreshToken: Secret) {
        self.metadata = metadata
        self.accessToken = accessToken
        self.refreshToken = refreshToken
    }

    /// Creates a new, active installation.
    public init(
        organizationID: String,
        appUserID: String,
        accessToken: Secret,
        refreshToken: Secret,
        expiresAt: Date,
        scopes: [String] = [],
        clientID: String? = nil,
        organizationName: String? = nil,
        urlKey: String? = nil
    ) {
        self.init(
            metadata: InstallationMetadata(
                organizationID: organizationID, appUserID: appUserID, expiresAt: expiresAt, scopes: scopes, clientID: clientID,
                organizationName: organizationName, urlKey: urlKey),
            accessToken: accessToken,
            refreshToken: refreshToken
        )
    }

    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<InstallationMetadata, Value>) -> Value {
        get { metadata[keyPath: keyPath] }
        set { metadata[keyPath: keyPath] = newValue }
    }
}
