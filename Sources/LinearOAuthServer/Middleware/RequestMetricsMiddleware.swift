import Hummingbird
import Metrics

/// Counts HTTP requests by route (the matched path pattern, never the raw URL) and status.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = LinearOAuthRequestContext
    let factory: any MetricsFactory

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            count(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500)
            throw error
        }
        count(request, context, status: response.status.code)
        return response
    }

    private func count(_ request: Request, _ context: Context, status: Int) {
        Counter(
            label: "linear_oauth_http_requests_total",
            dimensions: [("route", context.endpointPath ?? "unmatched"), ("method", request.method.rawValue), ("status", String(status))],
            factory: factory
        ).increment()
    }
}
