import Hummingbird
import Metrics
import Synchronization

/// Counts HTTP requests by route (the matched path pattern, never the raw URL), method and status.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = LinearOAuthRequestContext
    let counters: RequestCounters

    init(factory: any MetricsFactory) {
        counters = RequestCounters(factory: factory)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            counters.count(route: context.endpointPath, method: request.method, status: (error as? any HTTPResponseError)?.status.code ?? 500)
            throw error
        }
        counters.count(route: context.endpointPath, method: request.method, status: response.status.code)
        return response
    }
}

/// `linear_oauth_http_requests_total` counters, made once per route, method and status and kept: the
/// metrics factory sanitizes labels and looks the counter up under its own lock on every call, which
/// was the largest cost of a cached token answer. Methods other than the usual ones count as `OTHER`,
/// so a client cannot grow the set without bound.
final class RequestCounters: Sendable {
    private struct Key: Hashable {
        var route: String?
        var method: String
        var status: Int
    }

    private static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    private let factory: any MetricsFactory
    private let counters = Mutex<[Key: Counter]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func count(route: String?, method: HTTPRequest.Method, status: Int) {
        let key = Key(route: route, method: Self.methods.contains(method.rawValue) ? method.rawValue : "OTHER", status: status)
        if let counter = counters.withLock({ $0[key] }) {
            counter.increment()
            return
        }
        let counter = Counter(
            label: "linear_oauth_http_requests_total",
            dimensions: [("route", route ?? "unmatched"), ("method", key.method), ("status", String(status))], factory: factory)
        counters.withLock { $0[key] = counter }
        counter.increment()
    }
}
