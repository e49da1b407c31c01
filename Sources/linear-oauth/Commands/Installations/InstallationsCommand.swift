import ArgumentParser
import LinearOAuth

/// `linear-oauth installations ...`: one file per subcommand beside this one.
struct InstallationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "installations",
        abstract: "List, inspect, import, refresh, reinstate, revoke and delete installations. Never prints a token.",
        subcommands: [Import.self, List.self, Show.self, Delete.self, Refresh.self, Reinstate.self, Revoke.self])
}

extension TokenStore {
    /// One organization's metadata without opening its tokens (no key needed).
    func metadata(organizationID: String) async throws -> InstallationMetadata? {
        try await load(organizationID: organizationID)?.metadata
    }
}
