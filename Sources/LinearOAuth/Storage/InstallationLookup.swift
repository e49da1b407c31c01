import Foundation

/// What an organization reference given by a person (an organization id or a workspace's URL key)
/// names: exactly one installation, none, or several.
public enum InstallationLookup: Sendable, Equatable {
    /// The reference is this installation's organization id, or its URL key and no other's.
    case found(InstallationMetadata)
    /// Nothing matches exactly; `suggestions` are the closest organization ids and URL keys.
    case notFound(suggestions: [String])
    /// The reference is the URL key of several installations (a workspace renamed its key and
    /// another took it): only their organization ids can tell them apart.
    case ambiguous([InstallationMetadata])

    /// The organization id found, if exactly one.
    public var organizationID: String? {
        if case .found(let metadata) = self { return metadata.organizationID }
        return nil
    }
}

extension TokenStore {
    /// Resolves an organization id, else a URL key, exactly: `acme` names `org-acme` only if `org-acme`'s
    /// URL key is `acme` and no installation has the organization id `acme`.
    ///
    /// An organization id is looked up first and wins: organization ids are Linear's UUIDs and URL
    /// keys are short names, so the two do not meet in practice.
    /// - Parameter suggesting: Whether a miss computes ``suggestions(for:limit:)`` (a listing: for
    ///   people, not for an API's hot path).
    public func lookUp(_ reference: String, suggesting: Bool = true) async throws -> InstallationLookup {
        if let row = try await load(organizationID: reference) { return .found(row.metadata) }
        let byKey = try await metadata(matching: .urlKey(reference), after: nil, limit: 10)
        switch byKey.count {
        case 1: return .found(byKey[0])
        case 0: return .notFound(suggestions: suggesting ? try await suggestions(for: reference) : [])
        default: return .ambiguous(byKey)
        }
    }

    /// Up to three organization ids or URL keys close to `reference` (a typo, a prefix, another
    /// case), closest first. Not computed over more than `limit` installations: a large store
    /// answers only with those that contain the reference.
    public func suggestions(for reference: String, limit: Int = 10_000) async throws -> [String] {
        let total = try await installationCounts().values.reduce(0, +)
        let candidates: [InstallationMetadata]
        if total <= limit {
            candidates = try await listMetadata()
        } else {
            candidates = try await metadata(matching: .containing(reference), after: nil, limit: 3)
        }
        let needle = InstallationSearch.lowercasedASCII(reference)
        var scored: [(name: String, distance: Int)] = []
        for candidate in candidates {
            for name in [candidate.organizationID, candidate.urlKey].compactMap({ $0 }) {
                let lowered = InstallationSearch.lowercasedASCII(name)
                let distance = lowered.contains(needle) || needle.contains(lowered)
                    ? abs(lowered.count - needle.count) / 4
                    : Self.editDistance(needle, lowered)
                if distance <= max(2, needle.count / 3) { scored.append((name, distance)) }
            }
        }
        var seen = Set<String>()
        return scored.sorted { ($0.distance, $0.name) < ($1.distance, $1.name) }.map(\.name)
            .filter { seen.insert($0).inserted }.prefix(3).map { $0 }
    }

    /// Levenshtein distance of two strings, by characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
