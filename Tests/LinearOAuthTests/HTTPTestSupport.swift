import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import LinearEmulator
import LinearOAuth
import NIOCore
import NIOHTTP1
import Synchronization

/// A plain HTTP answer, read whole.
struct HTTPAnswer {
    var status: Int
    var headers: [String: String]
    var body: Data

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Raw HTTP calls to the emulator, without LinearClient: the emulator is tested on its own.
enum RawHTTP {
    /// A client that does not follow redirects (the tests read the `Location`).
    static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))

    static func request(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: Data? = nil
    ) async throws -> HTTPAnswer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 1 << 20)
        var fields: [String: String] = [:]
        for header in response.headers { fields[header.name.lowercased()] = header.value }
        return HTTPAnswer(status: Int(response.status.code), headers: fields, body: Data(collected.readableBytesView))
    }

    static func form(_ url: String, _ fields: [String: String], headers: [(String, String)] = []) async throws -> HTTPAnswer {
        let body = fields.sorted { $0.key < $1.key }.map { "\(encode($0.key))=\(encode($0.value))" }.joined(separator: "&")
        return try await request(
            .POST, url, headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers, body: Data(body.utf8))
    }

    static func json(_ url: String, _ object: [String: Any], headers: [(String, String)] = []) async throws -> HTTPAnswer {
        try await request(
            .POST, url, headers: [("Content-Type", "application/json")] + headers,
            body: try JSONSerialization.data(withJSONObject: object))
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// The query parameters of a `Location`.
    static func query(_ location: String?) -> [String: String] {
        var result: [String: String] = [:]
        for item in URLComponents(string: location ?? "")?.queryItems ?? [] { result[item.name] = item.value ?? "" }
        return result
    }
}

/// Runs `body` with a started emulator, stopped afterwards.
func withEmulator<Result>(
    organizations: [EmulatedOrganization] = LinearEmulator.defaultOrganizations,
    clients: [EmulatedClient] = [LinearEmulator.defaultClient],
    settings: EmulatorSettings = EmulatorSettings(),
    _ body: (LinearEmulator, String) async throws -> Result
) async throws -> Result {
    let emulator = LinearEmulator(organizations: organizations, clients: clients, settings: settings)
    let url = try await emulator.start()
    do {
        let result = try await body(emulator, url)
        await emulator.stop()
        return result
    } catch {
        await emulator.stop()
        throw error
    }
}

/// A LinearClient for the emulator's default application.
func emulatorClient(_ baseURL: String, secret: String = LinearEmulator.defaultClient.secret, timeout: Duration = .seconds(10),
                    authentication: LinearClientConfiguration.ClientAuthentication = .formFields) -> LinearClient {
    LinearClient(configuration: LinearClientConfiguration(
        clientID: LinearEmulator.defaultClient.id, clientSecret: Secret(secret),
        redirectURI: LinearEmulator.defaultClient.redirectURIs[0], apiURL: baseURL,
        authorizeURL: baseURL + "/oauth/authorize", timeout: timeout, clientAuthentication: authentication))
}

/// One request as a capture server saw it.
struct CapturedRequest: Sendable {
    var method: String
    var path: String
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
}

/// A loopback HTTP server that records every request and answers with a canned status and body.
final class CaptureServer: Sendable {
    private let captured = Mutex<[CapturedRequest]>([])
    private let answer = Mutex<(status: Int, body: String, headers: [(String, String)])>((200, "{}", []))
    private let task = Mutex<Task<Void, any Error>?>(nil)

    var requests: [CapturedRequest] { captured.withLock { $0 } }

    func respond(status: Int, body: String, headers: [(String, String)] = []) {
        answer.withLock { $0 = (status, body, headers) }
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
            let (status, text, extra) = self.answer.withLock { $0 }
            var headers: HTTPFields = [.contentType: "application/json"]
            for (name, value) in extra { headers.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0); continuation.finish() })
        task.withLock { $0 = Task { try await app.run() } }
        var iterator = stream.makeAsyncIterator()
        return "http://127.0.0.1:\(await iterator.next() ?? 0)"
    }

    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        _ = try? await running?.value
    }
}

import LinearOAuthTestSupport

/// A port nothing listens on.
enum LinearOAuthTestSupportPort {
    static func free() throws -> Int { try freePort() }
}
