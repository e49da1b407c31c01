import Foundation

/// Starting child processes with `posix_spawn` and reaping them with `waitpid`. Foundation's
/// `Process` was seen here to miss child exits (its `waitUntilExit` and `terminationHandler` never
/// fired), and its pipes are inherited by every other child: both hang tests. Children here inherit
/// only their three standard streams.
enum Spawn {
    /// What to connect a child's standard stream to.
    enum Stream {
        case file(String, write: Bool)
        case descriptor(Int32)
    }

    static func start(
        _ argv: [String], environment: [String: String]? = nil, directory: String? = nil,
        stdin: Stream, stdout: Stream, stderr: Stream
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (fd, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .file(let path, let write):
                posix_spawn_file_actions_addopen(
                    &actions, fd, path, write ? (O_WRONLY | O_CREAT | O_TRUNC) : O_RDONLY, 0o644)
            case .descriptor(let source):
                posix_spawn_file_actions_adddup2(&actions, source, fd)
            }
        }
        // Nothing else the test process has open reaches the child: an inherited socket would stay open
        // there after the test (or an in-process server) closed it, and an inherited pipe would never end.
        closeFrom(&actions, 3)
        // posix_spawn_file_actions_addchdir_np is not visible from Swift here: change directory in a shell.
        let argv = directory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + argv } ?? argv
        let arguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in arguments { free(pointer) } }
        let variables = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in variables ?? [] { free(pointer) } }
        var pid: pid_t = 0
        let result: Int32 =
            if let variables {
                posix_spawn(&pid, argv[0], &actions, nil, arguments, variables)
            } else {
                posix_spawn(&pid, argv[0], &actions, nil, arguments, environ)
            }
        guard result == 0 else { throw TestSupportError("cannot start \(argv[0]): \(String(cString: strerror(result)))") }
        return pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc module
    /// does not show: looked up once.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    private static func closeFrom(_ actions: inout posix_spawn_file_actions_t, _ lowest: Int32) {
        guard let addCloseFrom else { return }
        _ = withUnsafeMutablePointer(to: &actions) { addCloseFrom($0, lowest) }
    }

    /// Blocks until `pid` exits; its exit status, or 128 + the signal that ended it.
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return exitStatus(status)
    }

    /// The exit status if `pid` has exited, without blocking.
    static func poll(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        return result == pid ? exitStatus(status) : nil
    }

    /// Waits for `pid` on a thread of its own, off the cooperative pool.
    static func exit(of pid: pid_t) async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: wait(pid)) }
        }
    }

    private static func exitStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// A pipe whose ends are closed in children unless passed explicitly.
    static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard Glibc.pipe(&fds) == 0 else { throw TestSupportError("pipe failed") }
        // pipe2(O_CLOEXEC) is not visible from Swift here; a spawn racing these two calls could
        // inherit the pipe, which is why the helper is told to finish by a line, not by end of input.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }
}
