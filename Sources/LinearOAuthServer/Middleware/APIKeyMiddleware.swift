import Hummingbird
import LinearOAuth

/// `Authorization: Bearer KEY` against the configured keys, compared in constant time.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = LinearOAuthRequestContext
    /// The keys' bytes, read once (not per request).
    private let keys: [[UInt8]]

    init(keys: [Secret]) {
        self.keys = keys.map { Array($0.value.utf8) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], Self.hasBearerPrefix(header.utf8) else {
            return Responses.json(.unauthorized, ["error": "unauthorized", "message": "an API key is required: Authorization: Bearer KEY"])
        }
        let given = header.utf8.dropFirst(7)
        // Check every key, so the time taken does not tell which one came close.
        var matched = false
        for key in keys where Self.constantTimeEqual(given, key) { matched = true }
        guard matched else {
            return Responses.json(.unauthorized, ["error": "unauthorized", "message": "the API key is not valid"])
        }
        return try await next(request, context)
    }

    /// Whether the header starts with `Bearer ` in any case.
    static func hasBearerPrefix(_ header: String.UTF8View) -> Bool {
        var index = header.startIndex
        for expected in "bearer ".utf8 {
            guard index != header.endIndex else { return false }
            let byte = header[index]
            // ASCII letters compare case-insensitively; the space exactly.
            guard byte == expected || (expected != 0x20 && byte | 0x20 == expected) else { return false }
            index = header.index(after: index)
        }
        return true
    }

    static func constantTimeEqual<Given: Collection<UInt8>>(_ a: Given, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
