/// JSON written by hand where `JSONEncoder` is too slow (the token route, listings, JSON log lines).
package enum JSONText {
    /// Appends `text` as a JSON string literal: quotes, backslashes and control characters escaped,
    /// everything else as is (UTF-8).
    package static func appendString(_ text: String, to out: inout String) {
        out.append("\"")
        // The usual case, nothing to escape: the whole string at once (a scalar at a time was a
        // quarter of a listing page's time).
        if !needsEscaping(text) {
            out.append(text)
            out.append("\"")
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }

    /// Whether `text` has a quote, a backslash or a control character.
    static func needsEscaping(_ text: String) -> Bool {
        func check(_ bytes: some Sequence<UInt8>) -> Bool { bytes.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C } }
        var text = text
        return text.withUTF8 { check($0) }
    }
}
