import Foundation

/// Times on the wire and in JSON: RFC 3339, written in UTC.
package enum RFC3339 {
    /// Formats `date` in UTC, with milliseconds only when it has them (`2026-11-25T15:02:15Z`).
    /// Hand-rolled: `ISO8601DateFormatter` costs tens of microseconds per use on Linux, which showed
    /// in the token API's throughput.
    package static func format(_ date: Date) -> String {
        let parts = Parts(date)
        guard parts.hasFourDigitYear else {
            return String(format: "%lld-%02lld-%02lldT%02lld:%02lld:%02lld", parts.year, parts.month, parts.day, parts.hour, parts.minute,
                          parts.second) + (parts.milliseconds != 0 ? String(format: ".%03lld", parts.milliseconds) : "") + "Z"
        }
        return String(unsafeUninitializedCapacity: maxLength) { parts.write(to: UnsafeMutableRawBufferPointer($0)) }
    }

    /// The longest time ``format(_:)`` writes for years 0 to 9999: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    package static let maxLength = 24

    /// The most bytes ``write(_:to:)`` writes, whatever the year.
    package static let maxWrittenLength = 40

    /// Writes what ``format(_:)`` returns into `buffer` (at least ``maxWrittenLength`` bytes),
    /// without making a string; returns its length.
    package static func write(_ date: Date, to buffer: UnsafeMutableRawBufferPointer) -> Int {
        let parts = Parts(date)
        guard parts.hasFourDigitYear else {
            let text = Array(format(date).utf8)
            buffer.copyBytes(from: text)
            return text.count
        }
        return parts.write(to: buffer)
    }

    /// A time's calendar fields in UTC (proleptic Gregorian, as `gmtime`), by arithmetic: `gmtime_r`
    /// converts under the C library's time-zone lock, which showed in the listing's profile.
    private struct Parts {
        var year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, milliseconds: Int64

        init(_ date: Date) {
            let interval = date.timeIntervalSince1970
            var whole = interval.rounded(.down)
            var milliseconds = Int64(((interval - whole) * 1000).rounded())
            if milliseconds == 1000 {
                whole += 1
                milliseconds = 0
            }
            let seconds = Int64(whole)
            let (days, secondOfDay) = Self.floorDivide(seconds, 86_400)
            // Howard Hinnant's civil_from_days: days since 1970-01-01 to year, month and day.
            let z = days + 719_468
            let era = Self.floorDivide(z, 146_097).quotient
            let dayOfEra = z - era * 146_097
            let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
            let shiftedMonth = (5 * dayOfYear + 2) / 153
            self.day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
            self.month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
            self.year = yearOfEra + era * 400 + (self.month <= 2 ? 1 : 0)
            self.hour = secondOfDay / 3_600
            self.minute = secondOfDay % 3_600 / 60
            self.second = secondOfDay % 60
            self.milliseconds = milliseconds
        }

        var hasFourDigitYear: Bool { (0...9999).contains(year) }

        private static func floorDivide(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
            let (q, r) = a.quotientAndRemainder(dividingBy: b)
            return r < 0 ? (q - 1, r + b) : (q, r)
        }

        /// `YYYY-MM-DDTHH:MM:SS[.mmm]Z` into `buffer` (at least ``RFC3339/maxLength`` bytes); returns its length.
        func write(to buffer: UnsafeMutableRawBufferPointer) -> Int {
            var index = 0
            func put(_ value: Int64, width: Int) {
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
            put(year, width: 4)
            put("-")
            put(month, width: 2)
            put("-")
            put(day, width: 2)
            put("T")
            put(hour, width: 2)
            put(":")
            put(minute, width: 2)
            put(":")
            put(second, width: 2)
            if milliseconds != 0 {
                put(".")
                put(milliseconds, width: 3)
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
