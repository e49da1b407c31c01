import Foundation

/// A free TCP port on the host (bound, read, released).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CommandFailure(description: "cannot open a socket") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard ok else { throw CommandFailure(description: "cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

import NIOCore
import NIOPosix

/// Fails with one clear line when `host:port` cannot be listened on (another process has it, or a
/// privileged port), before anything else starts: the server's own failure would come as a stack of
/// secondary errors from the service group.
func checkCanListen(host: String, port: Int) async throws {
    guard port != 0 else { return }
    do {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port).get()
        try await channel.close()
    } catch let error as IOError where error.errnoCode == EADDRINUSE {
        throw CommandFailure(description: "\(host):\(port) is already in use (another linear-oauth serve?): stop it, or choose another port with --port")
    } catch let error as IOError where error.errnoCode == EACCES {
        throw CommandFailure(description: "may not listen on \(host):\(port) (ports below 1024 need privileges): choose another with --port")
    } catch let error as IOError where error.errnoCode == EADDRNOTAVAIL {
        throw CommandFailure(description: "\(host) is not an address of this machine: choose another with --host")
    } catch {
        throw CommandFailure(description: "cannot listen on \(host):\(port): \(String(describing: error).prefix(200)); choose another --host or --port")
    }
}
