import LinearOAuth

/// ``InstallationMetadata`` as JSON, written by hand: the listing route writes up to a thousand of
/// these per request, and `JSONEncoder` on Linux cost more than the database query did. The same
/// object `RFC3339.jsonEncoder()` writes: sorted keys, RFC 3339 times, absent optionals left out
/// (a test compares the two).
enum MetadataJSON {
    static func append(_ m: InstallationMetadata, to out: inout String) {
        func key(_ name: String, first: Bool = false) {
            out.append(first ? "\"" : ",\"")
            out.append(name)
            out.append("\":")
        }
        func string(_ name: String, _ value: String?, first: Bool = false) {
            guard let value else { return }
            key(name, first: first)
            Responses.appendJSONString(value, to: &out)
        }
        out += "{"
        string("app_user_id", m.appUserID, first: true)
        string("client_id", m.clientID)
        string("created_at", RFC3339.format(m.createdAt))
        string("expires_at", RFC3339.format(m.expiresAt))
        string("installed_at", RFC3339.format(m.installedAt))
        string("key_id", m.keyID)
        string("last_error", m.lastError)
        string("last_refresh_at", m.lastRefreshAt.map(RFC3339.format))
        string("organization_id", m.organizationID)
        string("organization_name", m.organizationName)
        key("refresh_failures")
        out += String(m.refreshFailures)
        key("scopes")
        out += "["
        for (index, scope) in m.scopes.enumerated() {
            if index > 0 { out += "," }
            Responses.appendJSONString(scope, to: &out)
        }
        out += "]"
        string("status", m.status.rawValue)
        string("updated_at", RFC3339.format(m.updatedAt))
        string("url_key", m.urlKey)
        out += "}"
    }

    /// `{"installations":[...],"next":...}`.
    static func page(_ rows: [InstallationMetadata], next: String?) -> String {
        var out = "{\"installations\":["
        out.reserveCapacity(rows.count * 420 + 64)
        for (index, row) in rows.enumerated() {
            if index > 0 { out += "," }
            append(row, to: &out)
        }
        out += "]"
        if let next {
            out += ",\"next\":"
            Responses.appendJSONString(next, to: &out)
        }
        out += "}"
        return out
    }
}
