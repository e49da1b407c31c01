import ArgumentParser
import LinearOAuth

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create encryption keys and move stored tokens to the active key.",
        subcommands: [Generate.self, Rotate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new random 256-bit key as an ID:BASE64 entry.",
            discussion: """
                Put the new entry first in LINEAR_OAUTH_ENCRYPTION_KEYS (or the key file) to make it the active key,
                keep the old entries after it, then run `linear-oauth keys rotate`.
                """)

        @Option(help: "The key id (1 to 64 of A-Z a-z 0-9 . _ -); default: k<date>-<random>.")
        var id: String?

        func validate() throws {
            if let id, !KeyRing.isValidKeyID(id) {
                throw ValidationError("invalid key id: use 1 to 64 of A-Z a-z 0-9 . _ -")
            }
        }

        func run() throws {
            print(KeyRing.generateEntry(id: id))
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-encrypt every stored token not under the active (first) key.",
            discussion: """
                Works in batches, each its own transaction, so it is safe while other processes use the store, and
                it can be interrupted and run again: it continues where it stopped.
                """)

        @OptionGroup var store: StoreOptions
        @OptionGroup var keys: KeyOptions

        @Option(parsing: .unconditional, help: "Rows per transaction.")
        var batchSize = 1_000

        func validate() throws {
            guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        }

        func run() async throws {
            try await store.withVault(keys) { vault in
                let count = try await vault.rotateKeys(batchSize: batchSize)
                print("re-encrypted \(count) installation\(count == 1 ? "" : "s") under key \(vault.keyRing.activeKeyID)")
            }
        }
    }
}
