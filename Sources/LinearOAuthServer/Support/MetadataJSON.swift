import Foundation
import LinearOAuth
import NIOCore

/// ``InstallationMetadata`` as JSON, written by hand: the listing route writes up to a thousand of
/// these per request, and `JSONEncoder` on Linux cost more than the database query did. The same
/// object `RFC3339.jsonEncoder()` writes: sorted keys, RFC 3339 times, absent optionals left out
/// (a test compares the two). Written straight into the response's buffer (``JSONWriter``):
/// appending to a `String` was a tenth of a listing page's time.
enum MetadataJSON {
    /// Keys, punctuation, five times and the refresh count: more than they take.
    private static let fixedBound = 512

    static func append(_ m: InstallationMetadata, to out: inout ByteBuffer) {
        var bound = fixedBound + m.scopes.count + JSONWriter.bound(m.appUserID) + JSONWriter.bound(m.clientID)
        bound += JSONWriter.bound(m.keyID) + JSONWriter.bound(m.lastError) + JSONWriter.bound(m.organizationID)
        bound += JSONWriter.bound(m.organizationName) + JSONWriter.bound(m.status.rawValue) + JSONWriter.bound(m.urlKey)
        for scope in m.scopes { bound += JSONWriter.bound(scope) }
        out.writeJSON(bound: bound) { json in
            func string(_ key: StaticString, _ value: String?) {
                guard let value else { return }
                json.raw(key)
                json.string(value)
            }
            func time(_ key: StaticString, _ value: Date?) {
                guard let value else { return }
                json.raw(key)
                json.time(value)
            }
            string("{\"app_user_id\":", m.appUserID)
            string(",\"client_id\":", m.clientID)
            time(",\"created_at\":", m.createdAt)
            time(",\"expires_at\":", m.expiresAt)
            time(",\"installed_at\":", m.installedAt)
            string(",\"key_id\":", m.keyID)
            string(",\"last_error\":", m.lastError)
            time(",\"last_refresh_at\":", m.lastRefreshAt)
            string(",\"organization_id\":", m.organizationID)
            string(",\"organization_name\":", m.organizationName)
            json.raw(",\"refresh_failures\":")
            json.integer(m.refreshFailures)
            json.raw(",\"scopes\":[")
            for (index, scope) in m.scopes.enumerated() {
                if index > 0 { json.byte(UInt8(ascii: ",")) }
                json.string(scope)
            }
            json.byte(UInt8(ascii: "]"))
            string(",\"status\":", m.status.rawValue)
            time(",\"updated_at\":", m.updatedAt)
            string(",\"url_key\":", m.urlKey)
            json.byte(UInt8(ascii: "}"))
        }
    }

    /// `{"installations":[...],"next":...}`.
    static func page(_ rows: [InstallationMetadata], next: String?) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: rows.count * 420 + 64)
        out.writeStaticString("{\"installations\":[")
        for (index, row) in rows.enumerated() {
            if index > 0 { out.writeInteger(UInt8(ascii: ",")) }
            append(row, to: &out)
        }
        out.writeJSON(bound: JSONWriter.bound(next) + 16) { json in
            json.byte(UInt8(ascii: "]"))
            if let next {
                json.raw(",\"next\":")
                json.string(next)
            }
            json.byte(UInt8(ascii: "}"))
        }
        return out
    }
}
