import Foundation
import LinearOAuth
import Logging

/// `LINEAR_OAUTH_LOG_FORMAT=json`: one JSON object per line on standard error, for log shippers:
/// `{"time":"2026-11-30T16:02:06.123Z","level":"info","label":"linear-oauth.serve","message":"...","metadata":{...}}`.
/// Times are RFC 3339 in UTC; metadata values are strings, lists and objects as swift-log has them.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        var merged = self.metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit { merged.merge(explicit) { $1 } }
        FileHandle.standardError.write(Data(Self.line(time: Date(), level: level, label: label, message: "\(message)", metadata: merged).utf8))
    }

    /// One record as a line of JSON (keys in a fixed order, so the lines diff and grep well).
    static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var out = "{\"time\":\"\(RFC3339.format(time))\",\"level\":\"\(level.rawValue)\",\"label\":"
        appendString(label, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        out += ",\"metadata\":"
        appendObject(metadata, to: &out)
        out += "}\n"
        return out
    }

    private static func appendObject(_ metadata: Logger.Metadata, to out: inout String) {
        out += "{"
        for (index, key) in metadata.keys.sorted().enumerated() {
            if index > 0 { out += "," }
            appendString(key, to: &out)
            out += ":"
            appendValue(metadata[key]!, to: &out)
        }
        out += "}"
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text): appendString(text, to: &out)
        case .stringConvertible(let value): appendString(value.description, to: &out)
        case .dictionary(let dictionary): appendObject(dictionary, to: &out)
        case .array(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                appendValue(value, to: &out)
            }
            out += "]"
        }
    }

    private static func appendString(_ text: String, to out: inout String) {
        JSONText.appendString(text, to: &out)
    }
}
