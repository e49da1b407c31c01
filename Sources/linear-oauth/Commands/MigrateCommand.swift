import ArgumentParser

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the database schema (idempotent; every command that needs the store also does it).")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await store.withStore { _ in }
        print("schema is up to date")
    }
}
