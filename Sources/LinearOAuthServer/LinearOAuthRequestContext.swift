import Hummingbird
import NIOCore

/// The service's request context: Hummingbird's core context, and the address of the peer that
/// opened the connection (for per-client rate limits).
public struct LinearOAuthRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection's peer: the client, or the proxy in front of the service.
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
