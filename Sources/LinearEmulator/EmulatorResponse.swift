import Crypto
import Foundation

/// An answer of the emulator, independent of the HTTP server that sends it.
struct EmulatorResponse: Sendable {
    var status: Int
    var body: Data
    var contentType = "application/json; charset=utf-8"
    var headers: [(String, String)] = []
    /// Close the connection instead of answering (a response lost on the way back).
    var drop = false
    /// Answer only once the test releases held responses (a response still on its way when the caller dies).
    var hold = false

    static func json(_ status: Int, _ object: [String: Any], headers: [(String, String)] = []) -> EmulatorResponse {
        EmulatorResponse(
            status: status, body: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(),
            headers: headers)
    }

    static func oauthError(_ status: Int, _ error: String, _ description: String) -> EmulatorResponse {
        json(status, ["error": error, "error_description": description])
    }
}
