import Foundation
import LinearOAuth

/// Parses `installations import` input: one JSON object per line, validated whole before anything
/// is written. Errors name the line and the field, never a value.
enum InstallationImport {
    private struct Line: Decodable {
        var organization_id: String
        var app_user_id: String
        var access_token: String
        var refresh_token: String
        var expires_at: String
        var scopes: Scopes?
        var client_id: String?
    }

    private enum Scopes: Decodable {
        case list([String])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let list = try? container.decode([String].self) {
                self = .list(list)
            } else {
                let text = try container.decode(String.self)
                self = .list(text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init))
            }
        }
    }

    static func parse(_ data: Data) throws -> [Installation] {
        var installations: [Installation] = []
        var firstLine: [String: Int] = [:]
        let decoder = JSONDecoder()
        for (index, rawLine) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let text = rawLine.filter { $0 != UInt8(ascii: "\r") }
            guard text.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) else { continue }
            let line: Line
            do {
                line = try decoder.decode(Line.self, from: Data(text))
            } catch let error as DecodingError {
                throw CommandFailure(description: "line \(number): \(describe(error)); nothing was imported")
            }
            for (name, value) in [("organization_id", line.organization_id), ("app_user_id", line.app_user_id),
                                  ("access_token", line.access_token), ("refresh_token", line.refresh_token)]
            where value.trimmingCharacters(in: .whitespaces).isEmpty {
                throw CommandFailure(description: "line \(number): \(name) is empty; nothing was imported")
            }
            guard let expiresAt = RFC3339.parse(line.expires_at) else {
                throw CommandFailure(
                    description: "line \(number): expires_at is not an RFC 3339 time (like 2026-11-25T15:00:00Z); nothing was imported")
            }
            if let previous = firstLine.updateValue(number, forKey: line.organization_id) {
                throw CommandFailure(
                    description: "line \(number): organization \(line.organization_id) already appears on line \(previous); nothing was imported")
            }
            var scopes: [String] = []
            if case .list(let list) = line.scopes { scopes = list }
            installations.append(Installation(
                organizationID: line.organization_id, appUserID: line.app_user_id,
                accessToken: Secret(line.access_token), refreshToken: Secret(line.refresh_token),
                expiresAt: expiresAt, scopes: scopes,
                clientID: line.client_id.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }))
        }
        return installations
    }

    private static func describe(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
            ((path.map(\.stringValue)) + (key.map { [$0.stringValue] } ?? [])).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing field \(field(context.codingPath, key))"
        case .valueNotFound(_, let context): return "field \(field(context.codingPath)) is null"
        case .typeMismatch(_, let context):
            return context.codingPath.isEmpty ? "not a JSON object" : "field \(field(context.codingPath)) has the wrong type"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "field \(field(context.codingPath)) is invalid"
        @unknown default: return "not a valid installation"
        }
    }
}
