// The bare route of Scripts/wrk-token-api.sh: a Hummingbird route answering a constant body of a
// given size, on the HTTP server `serve` runs (`LinearOAuthServer.httpServer`: its connection limit
// and slow-client guard) with serve's request context, so that what separates it from `serve`'s
// token route is the route's own work (the API key check, the token manager, the JSON, metrics).
// Built only with LINEAR_OAUTH_BENCHMARKS=1.
//
//   BareRoute PORT BYTES      (listens on 127.0.0.1:PORT, answers GET /v1/installations/ORG/access-token until stopped)
import Foundation
import Hummingbird
import LinearOAuthServer
import NIOCore

let arguments = CommandLine.arguments
guard arguments.count == 3, let port = Int(arguments[1]), let bytes = Int(arguments[2]), (1...65_535).contains(port), bytes >= 0 else {
    FileHandle.standardError.write(Data("usage: BareRoute PORT BYTES\n".utf8))
    exit(2)
}
let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: bytes)
let router = Router(context: LinearOAuthRequestContext.self)
// At the token route's path, with its parameter: the same request bytes, parsed and routed alike.
router.get("/v1/installations/:organization/access-token") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body)) }
let app = Application(router: router, server: LinearOAuthServer.httpServer(), configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
