import NIOCore
import Synchronization

/// Keeps the number of open connections under a ceiling, so a flood of connections cannot use up
/// the process's file descriptors (which the database and the calls to Linear need too): a
/// connection past the ceiling is closed as soon as it is accepted.
final class ConnectionLimiter: Sendable {
    let maximum: Int
    private let open = Atomic<Int>(0)

    init(maximum: Int) { self.maximum = max(1, maximum) }

    /// Connections open now.
    var count: Int { open.load(ordering: .relaxed) }

    /// A handler for one connection.
    func handler() -> Handler { Handler(limiter: self) }

    final class Handler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        let limiter: ConnectionLimiter
        private var counted = false

        init(limiter: ConnectionLimiter) { self.limiter = limiter }

        // Counted once the connection is active (Hummingbird has finished setting it up), so closing it
        // is the ordinary case of a client that went away.
        func channelActive(context: ChannelHandlerContext) {
            let now = limiter.open.wrappingAdd(1, ordering: .relaxed).newValue
            counted = true
            context.fireChannelActive()
            if now > limiter.maximum { context.close(promise: nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            release()
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            release()
        }

        private func release() {
            if counted {
                counted = false
                limiter.open.wrappingSubtract(1, ordering: .relaxed)
            }
        }
    }
}
