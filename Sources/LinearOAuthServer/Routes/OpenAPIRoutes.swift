import Hummingbird
import NIOCore

/// `GET /openapi.json`: ``OpenAPIDocument``.
struct OpenAPIRoutes {
    var routes: RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        return routes
    }
}
