import Crypto
import Foundation

/// A Linear workspace in the emulator.
public struct EmulatedOrganization: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var urlKey: String
    /// The app's user id in this workspace (what `viewer.id` returns for an `actor=app` token).
    public var appUserID: String

    public init(id: String, name: String, urlKey: String, appUserID: String) {
        self.id = id
        self.name = name
        self.urlKey = urlKey
        self.appUserID = appUserID
    }

    enum CodingKeys: String, CodingKey {
        case id, name
        case urlKey = "url_key"
        case appUserID = "app_user_id"
    }
}
