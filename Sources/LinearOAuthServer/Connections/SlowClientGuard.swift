import NIOCore

import NIOHTTPTypes

/// Disconnects a client that starts a request and does not finish its head in time (a slow-loris
/// sending a header byte every few seconds). Connections that send nothing at all are left to the
/// idle time-out. Two handlers share one state on the connection's event loop: one at the front of
/// the pipeline sees raw bytes (a head has begun), one after Hummingbird's HTTP codec sees complete
/// heads and finished responses.
final class SlowClientGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The state both handlers share (event-loop bound).
    final class State {
        let timeout: TimeAmount
        /// Requests whose head arrived and whose response has not ended.
        var inFlight = 0
        var timer: Scheduled<Void>?

        init(timeout: TimeAmount) { self.timeout = timeout }

        func headBegan(_ context: ChannelHandlerContext) {
            guard inFlight == 0, timer == nil else { return }
            // Closed from this handler's context, at the front of the pipeline: straight to the socket, as
            // Hummingbird closes idle connections (a close from the channel's tail would pass through the
            // async channel's handler first).
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { context.close(promise: nil) }
        }

        func headArrived() {
            inFlight += 1
            timer?.cancel()
            timer = nil
        }

        func responseEnded() { inFlight = max(0, inFlight - 1) }

        func stop() {
            timer?.cancel()
            timer = nil
        }
    }

    /// Sees the connection's raw bytes.
    final class ByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        let state: State

        init(state: State) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            state.headBegan(context)
            context.fireChannelRead(data)
        }
    }

    private let state: State

    init(headerTimeout: TimeAmount) {
        state = State(timeout: headerTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // The byte watcher goes in front of the HTTP decoder, which sees a head only once it is whole.
        try? context.pipeline.syncOperations.addHandler(ByteWatcher(state: state), position: .first)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        state.stop()
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { state.headArrived() }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { state.responseEnded() }
        context.write(data, promise: promise)
    }
}
