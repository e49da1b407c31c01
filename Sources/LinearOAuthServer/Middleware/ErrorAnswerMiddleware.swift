import Hummingbird
import LinearOAuth
import Logging

/// Answers an error that a route let through as JSON: a storage failure is 503 `unavailable` with
/// `Retry-After` (the database is down or busy: try again), Hummingbird's own HTTP errors keep their
/// status, anything else is 500 `internal_error` without details (they are logged, never sent).
struct ErrorAnswerMiddleware: RouterMiddleware {
    typealias Context = LinearOAuthRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as TokenStoreError {
            logger.warning("storage failure", metadata: ["route": .string(context.endpointPath ?? "unmatched"), "error": .string(error.description)])
            return Responses.databaseUnavailable()
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            logger.error("request failed", metadata: ["route": .string(context.endpointPath ?? "unmatched"), "error": .string("\(error)")])
            return Responses.internalError()
        }
    }
}
