import Foundation
import HTTPTypes
import Hummingbird
import LinearOAuth
import NIOCore

/// Every answer the service writes: JSON bodies, the token API's errors, and the install flow's pages.
enum Responses {
    /// A JSON object, never cached.
    static func json(_ status: HTTPResponse.Status, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// An `Encodable` value as JSON, times in RFC 3339.
    static func encoded<T: Encodable>(_ status: HTTPResponse.Status, _ value: T) throws -> Response {
        let data = try RFC3339.jsonEncoder().encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `{"error": CODE, "message": ...}`: 404 `not_installed`, 409 `reauthorization_required`,
    /// 503 `unavailable` (with `Retry-After`), 500 `configuration_error`, 503 `client_mismatch`.
    static func error(_ error: TokenManagerError, installURL: String? = nil) -> Response {
        switch error {
        case .notInstalled:
            return json(.notFound, ["error": "not_installed", "message": error.description])
        case .reauthorizationRequired:
            var body: [String: Any] = ["error": "reauthorization_required", "message": error.description]
            if let installURL { body["install_url"] = installURL }
            return json(.conflict, body)
        case .temporarilyUnavailable(_, _, let retryAfter):
            let seconds = max(1, Int(retryAfter?.components.seconds ?? 5))
            return json(.serviceUnavailable, ["error": "unavailable", "message": error.description],
                        headers: [.retryAfter: String(seconds)])
        case .configuration:
            return json(.internalServerError, ["error": "configuration_error", "message": error.description])
        case .undecryptable:
            // The key ring, not the request, is at fault; nothing was changed.
            return json(.internalServerError, ["error": "undecryptable", "message": error.description])
        case .clientMismatch:
            // The service's configuration, not the request, is at fault; the installation is intact.
            return json(.serviceUnavailable, ["error": "client_mismatch", "message": error.description], headers: [.retryAfter: "60"])
        }
    }

    /// 409 `ambiguous_organization`: a URL key several installations have; `candidates` lists their ids.
    static func ambiguous(_ reference: String, _ matches: [InstallationMetadata]) -> Response {
        json(.conflict, [
            "error": "ambiguous_organization",
            "message": "\(reference) is the URL key of several installations: use an organization id",
            "candidates": matches.map(\.organizationID),
        ])
    }

    /// 503 `unavailable` with `Retry-After`: the database is down or busy.
    static func databaseUnavailable() -> Response {
        json(.serviceUnavailable, ["error": "unavailable", "message": "the database cannot answer now; try again"], headers: [.retryAfter: "5"])
    }

    /// 500 `internal_error`, without details (they are logged, never sent).
    static func internalError() -> Response {
        json(.internalServerError, ["error": "internal_error", "message": "the request failed; see the service log"])
    }

    /// A small HTML page for a person in a browser (the install flow), its text escaped.
    static func page(_ status: HTTPResponse.Status, _ title: String, _ text: String) -> Response {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let html = """
            <!doctype html><html><head><meta charset="utf-8"><title>\(escape(title))</title></head>
            <body><h1>\(escape(title))</h1><p>\(escape(text))</p></body></html>
            """
        return Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}
