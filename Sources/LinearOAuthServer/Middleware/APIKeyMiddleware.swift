import Hummingbird
import LinearOAuth

/// `Authorization: Bearer KEY` against the configured keys, compared in constant time.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = LinearOAuthRequestContext
    let keys: [Secret]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            return Responses.json(.unauthorized, ["error": "unauthorized", "message": "an API key is required: Authorization: Bearer KEY"])
        }
        let given = Array(header.utf8.dropFirst(7))
        // Check every key, so the time taken does not tell which one came close.
        var matched = false
        for key in keys where Self.constantTimeEqual(given, Array(key.value.utf8)) { matched = true }
        guard matched else {
            return Responses.json(.unauthorized, ["error": "unauthorized", "message": "the API key is not valid"])
        }
        return try await next(request, context)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
