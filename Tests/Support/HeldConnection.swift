import Foundation

/// A TCP connection to 127.0.0.1 that the test holds open and feeds by hand (slow clients): it
/// sends what it is told, and tells whether the server has closed it.
public final class HeldConnection: @unchecked Sendable {
    // Used by one test task at a time.
    private let descriptor: Int32

    /// Opens `count` connections from a thread of its own: `connect` blocks (a full accept queue makes
    /// the kernel retry for seconds), and must not block the tests' cooperative threads.
    public static func open(_ count: Int, port: Int) async throws -> [HeldConnection] {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try (0..<count).map { _ in try HeldConnection(port: port) } })
            }
        }
    }

    private init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw TestSupportError("cannot connect to 127.0.0.1:\(port)")
        }
    }

    /// Sends `text` (a part of a request, byte by byte if the test wants); `false` if the connection is gone.
    @discardableResult
    public func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Foundation.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Whether the server has closed the connection (reads what is waiting without blocking).
    public var isClosedByServer: Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 { return true }
            if count < 0 { return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR }
        }
    }

    deinit { close(descriptor) }
}
