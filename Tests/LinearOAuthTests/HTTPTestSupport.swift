import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import LinearEmulator
import LinearOAuth
import NIOCore
import Logging
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// One request as a capture server saw it.
struct CapturedRequest: Sendable {
    var method: String
    var path: String
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
}

/// A loopback HTTP server that records every request and answers with a canned status and body
/// (after any queued answers, in order).
final class CaptureServer: Sendable {
    private let captured = Mutex<[CapturedRequest]>([])
    private let answer = Mutex<(status: Int, body: String, headers: [(String, String)])>((200, "{}", []))
    private let queued = Mutex<[(status: Int, body: String, headers: [(String, String)])]>([])
    /// Stopped by a graceful shutdown of its group: cancelling the server's task drops connections it
    /// has accepted but not yet handled, which SwiftNIO traps (apple/swift-nio#3481).
    private let running = Mutex<(task: Task<Void, any Error>, group: ServiceGroup)?>(nil)

    var requests: [CapturedRequest] { captured.withLock { $0 } }

    func respond(status: Int, body: String, headers: [(String, String)] = []) {
        answer.withLock { $0 = (status, body, headers) }
    }

    /// The next request gets this answer instead of the canned one (several queue up in order).
    func queue(status: Int, body: String, headers: [(String, String)] = []) {
        queued.withLock { $0.append((status, body, headers)) }
    }

    func start() async throws -> String {
        let router = Router()
        router.on("**", method: .post) { [self] request, context -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            self.captured.withLock {
                $0.append(CapturedRequest(
                    method: request.method.rawValue, path: request.uri.string,
                    headers: request.headers.map { ($0.name.rawName, $0.value) }, body: String(buffer: body)))
            }
            let (status, text, extra) = self.queued.withLock { $0.isEmpty ? nil : $0.removeFirst() } ?? self.answer.withLock { $0 }
            var headers: HTTPFields = [.contentType: "application/json"]
            for (name, value) in extra { headers.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0); continuation.finish() })
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "capture-server")))
        running.withLock { $0 = (Task { try await group.run() }, group) }
        var iterator = stream.makeAsyncIterator()
        return "http://127.0.0.1:\(await iterator.next() ?? 0)"
    }

    func stop() async {
        guard let (task, group) = running.withLock({ $0 }) else { return }
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

import LinearOAuthTestSupport

/// A port nothing listens on.
enum LinearOAuthTestSupportPort {
    static func free() throws -> Int { try freePort() }
}
