import Hummingbird
import NIOCore

/// `GET /openapi.json`: ``OpenAPIDocument``.
struct OpenAPIRoutes {
    var routes: RouteCollection<LinearOAuthRequestContext> {
        let routes = RouteCollection(context: LinearOAuthRequestContext.self)
        routes.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        return routes
    }
}
