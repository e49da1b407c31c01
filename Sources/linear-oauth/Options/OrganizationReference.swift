import LinearOAuth

/// What every command that names one installation accepts: its organization id, or its workspace's
/// URL key (`acme`), resolved exactly (``TokenStore/lookUp(_:)``).
enum OrganizationReference {
    static let help = "The Linear organization id, or the workspace's URL key."

    /// The organization id `reference` names.
    /// - Throws: ``CommandFailure``: not installed (exit 3, with the closest ids and URL keys and where
    ///   to list them), or a URL key several installations have (exit 2, naming their ids).
    static func resolve(_ reference: String, in store: any TokenStore) async throws -> String {
        switch try await store.lookUp(reference) {
        case .found(let metadata):
            return metadata.organizationID
        case .ambiguous(let matches):
            throw CommandFailure(
                description: "\(reference) is the URL key of several installations (\(matches.map(\.organizationID).joined(separator: ", "))): give an organization id",
                status: ExitStatus.usage)
        case .notFound(let suggestions):
            throw CommandFailure.notInstalled(reference, suggestions: suggestions)
        }
    }
}
