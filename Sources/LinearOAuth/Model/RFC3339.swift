import Foundation

/// Times on the wire and in JSON: RFC 3339, written in UTC.
package enum RFC3339 {
    /// Formats `date` in UTC, with milliseconds only when it has them (`2026-11-25T15:02:15Z`).
    /// Hand-rolled: `ISO8601DateFormatter` costs tens of microseconds per use on Linux, which showed
    /// in the token API's throughput.
    package static func format(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var whole = interval.rounded(.down)
        var milliseconds = Int(((interval - whole) * 1000).rounded())
        if milliseconds == 1000 {
            whole += 1
            milliseconds = 0
        }
        var seconds = time_t(whole)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        guard (0...9999).contains(parts.tm_year + 1900) else {
            return String(format: "%d-%02d-%02dT%02d:%02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                          parts.tm_hour, parts.tm_min, parts.tm_sec) + (milliseconds != 0 ? String(format: ".%03d", Int32(milliseconds)) : "") + "Z"
        }
        // Written into the string's own storage: `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
        return String(unsafeUninitializedCapacity: 24) { buffer in
            var index = 0
            func put(_ value: Int32, width: Int) {
                var value = value
                for offset in stride(from: width - 1, through: 0, by: -1) {
                    buffer[index + offset] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10)
                    value /= 10
                }
                index += width
            }
            func put(_ byte: Unicode.Scalar) {
                buffer[index] = UInt8(ascii: byte)
                index += 1
            }
            put(parts.tm_year + 1900, width: 4)
            put("-")
            put(parts.tm_mon + 1, width: 2)
            put("-")
            put(parts.tm_mday, width: 2)
            put("T")
            put(parts.tm_hour, width: 2)
            put(":")
            put(parts.tm_min, width: 2)
            put(":")
            put(parts.tm_sec, width: 2)
            if milliseconds != 0 {
                put(".")
                put(Int32(milliseconds), width: 3)
            }
            put("Z")
            return index
        }
    }

    /// Parses an RFC 3339 time with any offset, with or without fractional seconds.
    package static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// A JSON encoder writing dates as RFC 3339 UTC strings, keys sorted.
    package static func jsonEncoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(format(date))
        }
        return encoder
    }
}
