import ArgumentParser
import Foundation
import LinearOAuth

extension InstallationsCommand {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import installations from JSON lines on standard input, all or nothing.",
            discussion: """
                One JSON object per line with organization_id, app_user_id, access_token, refresh_token,
                expires_at (RFC 3339), optional scopes (an array, or a space- or comma-separated string) and optional
                client_id (the OAuth client that issued the grant; without it, the next successful refresh records it).
                A bad line is reported with its line number and nothing is imported. An organization that is
                already installed is replaced.
                """)

        @OptionGroup var store: StoreOptions
        @OptionGroup var keys: KeyOptions

        func run() async throws {
            let keyRing = try keys.keyRing()
            let installations = try InstallationImport.parse(FileHandle.standardInput.readDataToEndOfFile())
            try await store.withStore { store in
                try await TokenVault(store: store, keyRing: keyRing).save(installations)
            }
            print("imported \(installations.count) installation\(installations.count == 1 ? "" : "s")")
        }
    }
}
