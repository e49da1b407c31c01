import Foundation
import NIOCore

/// JSON written by hand where `JSONEncoder` is too slow (the token route, listings, JSON log lines).
package enum JSONText {
    /// Appends `text` as a JSON string literal: quotes, backslashes and control characters escaped,
    /// everything else as is (UTF-8).
    package static func appendString(_ text: String, to out: inout String) {
        // The usual case, nothing to escape: the whole string at once (a scalar at a time was a
        // quarter of a listing page's time).
        guard needsEscaping(text) else {
            out.append("\"")
            out.append(text)
            out.append("\"")
            return
        }
        // Escaped as ``JSONWriter`` escapes: one implementation of the rules.
        out += String(unsafeUninitializedCapacity: JSONWriter.bound(text)) { buffer in
            var writer = JSONWriter(UnsafeMutableRawBufferPointer(buffer))
            writer.string(text)
            return writer.count
        }
    }

    /// Whether `text` has a quote, a backslash or a control character.
    static func needsEscaping(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { $0.contains(where: mustEscape) }
    }

    /// A quote, a backslash or a control character: escaped in a JSON string.
    static func mustEscape(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x22 || byte == 0x5C }
}

/// JSON written straight into raw memory, for the listing and the token route: the caller reserves
/// an upper bound once per object (``JSONWriter/bound(_:)``), and each piece is a copy. Writing each
/// piece to a `ByteBuffer` checked capacity, uniqueness and exclusivity every time (a tenth of a
/// listing page); appending to a `String` cost more still.
package struct JSONWriter {
    private let buffer: UnsafeMutableRawBufferPointer
    /// The bytes written so far.
    package private(set) var count = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
    }

    /// The most bytes ``string(_:)`` writes for `text`: every byte escaped as `\u00XX`, and quotes.
    package static func bound(_ text: String?) -> Int { (text?.utf8.count ?? 0) * 6 + 2 }

    /// The most bytes ``time(_:)`` writes.
    package static let timeBound = RFC3339.maxWrittenLength + 2

    /// Literal JSON text (keys, punctuation).
    package mutating func raw(_ text: StaticString) {
        precondition(count + text.utf8CodeUnitCount <= buffer.count, "JSONWriter: the reserved bound was too small")
        (buffer.baseAddress! + count).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        count += text.utf8CodeUnitCount
    }

    package mutating func byte(_ byte: UInt8) {
        precondition(count < buffer.count, "JSONWriter: the reserved bound was too small")
        buffer[count] = byte
        count += 1
    }

    /// `text` as a JSON string literal: quotes, backslashes and control characters escaped,
    /// everything else as is (UTF-8).
    package mutating func string(_ text: String) {
        precondition(count + Self.bound(text) <= buffer.count, "JSONWriter: the reserved bound was too small")
        byte(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            if !bytes.contains(where: JSONText.mustEscape) {
                if let source = bytes.baseAddress { (buffer.baseAddress! + count).copyMemory(from: source, byteCount: bytes.count) }
                count += bytes.count
                return
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case UInt8(ascii: "\n"): raw("\\n")
                case UInt8(ascii: "\r"): raw("\\r")
                case UInt8(ascii: "\t"): raw("\\t")
                case ..<0x20:
                    let digits: StaticString = "0123456789abcdef"
                    raw("\\u00")
                    self.byte(digits.utf8Start[Int(byte >> 4)])
                    self.byte(digits.utf8Start[Int(byte & 0xF)])
                default: self.byte(byte)
                }
            }
        }
        byte(UInt8(ascii: "\""))
    }

    /// A time as a JSON string (RFC 3339, UTC).
    package mutating func time(_ date: Date) {
        precondition(count + Self.timeBound <= buffer.count, "JSONWriter: the reserved bound was too small")
        byte(UInt8(ascii: "\""))
        count += RFC3339.write(date, to: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
        byte(UInt8(ascii: "\""))
    }

    /// The most bytes ``integer(_:)`` writes.
    package static let integerBound = 20

    package mutating func integer(_ value: Int) {
        for byte in String(value).utf8 { self.byte(byte) }
    }
}

extension ByteBuffer {
    /// Writes JSON of at most `bound` bytes with a ``JSONWriter``.
    package mutating func writeJSON(bound: Int, _ body: (inout JSONWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { memory in
            var writer = JSONWriter(memory)
            body(&writer)
            return writer.count
        }
    }
}
