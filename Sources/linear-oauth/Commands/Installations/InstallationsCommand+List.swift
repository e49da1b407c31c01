import ArgumentParser
import Foundation
import LinearOAuth

extension InstallationsCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List installations: organization, URL key, name, app user, status, expiry, key id, last refresh, last error.",
            discussion: """
                Streams: reads 1,000 installations at a time by organization id and prints each batch as it comes, so memory
                stays flat however many there are. The table's columns are as wide as the first batch needs.
                """)

        @OptionGroup var store: StoreOptions

        @Flag(help: "Print a JSON array instead of a table.")
        var json = false

        /// Rows read and printed at a time.
        static let batchSize = 1000

        func run() async throws {
            let json = self.json
            let count = try await store.withStore { store in
                var printer = Printer(json: json)
                var after: String?
                while true {
                    let batch = try await store.metadata(matching: .all, after: after, limit: Self.batchSize)
                    try printer.print(batch)
                    guard batch.count == Self.batchSize, let last = batch.last else { break }
                    after = last.organizationID
                }
                printer.finish()
                return printer.count
            }
            if count == 0, !json { print("no installations") }
        }
    }

    /// Prints batches of rows as a table (widths from the first batch) or one JSON array.
    struct Printer {
        let json: Bool
        private(set) var count = 0
        private var widths: [Int]?
        private let encoder = RFC3339.jsonEncoder(pretty: true)

        init(json: Bool) { self.json = json }

        static let header = ["ORGANIZATION", "URL KEY", "NAME", "APP USER", "STATUS", "EXPIRES AT", "KEY", "LAST REFRESH", "LAST ERROR"]

        static func cells(_ m: InstallationMetadata) -> [String] {
            [m.organizationID, m.urlKey ?? "-", m.organizationName ?? "-", m.appUserID, m.status.rawValue, RFC3339.format(m.expiresAt),
             m.keyID, m.lastRefreshAt.map(RFC3339.format) ?? "-", m.lastError ?? "-"]
        }

        mutating func print(_ batch: [InstallationMetadata]) throws {
            var out = ""
            if json {
                for m in batch {
                    let object = String(decoding: try encoder.encode(m), as: UTF8.self)
                        .split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
                    out += (count == 0 ? "[\n" : ",\n") + object
                    count += 1
                }
            } else {
                guard !batch.isEmpty else { return }
                let rows = batch.map(Self.cells)
                if widths == nil {
                    var widths = Self.header.map(\.count)
                    for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
                    self.widths = widths
                    out += line(Self.header)
                }
                for row in rows { out += line(row) }
                count += batch.count
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        }

        mutating func finish() {
            guard json else { return }
            FileHandle.standardOutput.write(Data((count == 0 ? "[]\n" : "\n]\n").utf8))
        }

        private func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: max(widths?[index] ?? 0, cell.count), withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }
    }
}
