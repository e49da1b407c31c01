import Foundation
import HTTPTypes
import Hummingbird

/// Limits anonymous routes (the install flow) per client: 429 with `Retry-After` past the limit.
/// The client is the connection's peer, or, only when the service is told it sits behind a proxy
/// (`trustProxy`), the last address of `X-Forwarded-For` (the one that proxy added).
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = LinearOAuthRequestContext
    let limiter: RateLimiter
    let trustProxy: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let wait = limiter.take(client(of: request, context)) {
            var response = Responses.page(
                .tooManyRequests, "Too many requests", "Too many install attempts from your address; try again in a minute.")
            response.headers[.retryAfter] = String(max(1, Int(wait.rounded(.up))))
            return response
        }
        return try await next(request, context)
    }

    func client(of request: Request, _ context: Context) -> String {
        if trustProxy, let forwarded = request.headers[values: HTTPField.Name("X-Forwarded-For")!].last,
            let last = forwarded.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !last.isEmpty
        {
            return last
        }
        return context.remoteAddress?.ipAddress ?? "unknown"
    }
}
