import Foundation
import Synchronization

/// The built executables of this package (`linear-oauth`, the test helper), next to the test bundle.
public enum BuiltProducts {
    public static var directory: URL {
        if let override = ProcessInfo.processInfo.environment["LINEAR_OAUTH_BIN_DIR"] {
            return URL(fileURLWithPath: override)
        }
        var url = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        // On macOS the tests run inside an .xctest bundle: Contents/MacOS/...
        while url.path.contains(".xctest") { url.deleteLastPathComponent() }
        return url
    }

    public static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }
}

/// What a finished process printed and how it exited.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// An environment for child processes: nothing inherited but PATH and HOME, so a developer's own
/// DATABASE_URL or keys never leak into a test.
public func childEnvironment(_ variables: [String: String]) -> [String: String] {
    var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": "/tmp"]
    // The secrets check follows the tests into their children.
    if let audit = SecretAudit.directory { environment[SecretAudit.variable] = audit }
    environment.merge(variables) { $1 }
    return environment
}

/// Runs a program to completion with `input` on standard input.
public func runProcess(
    _ executable: URL, _ arguments: [String], environment: [String: String], input: Data = Data(),
    currentDirectory: String? = nil
) async throws -> ProcessOutput {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let outPath = directory.path + "/stdout", errPath = directory.path + "/stderr", inPath = directory.path + "/stdin"
    FileManager.default.createFile(atPath: inPath, contents: input)
    let pid = try Spawn.start(
        [executable.path] + arguments, environment: environment, directory: currentDirectory,
        stdin: .file(inPath, write: false), stdout: .file(outPath, write: true), stderr: .file(errPath, write: true))
    let status = await Spawn.exit(of: pid)
    let output = ProcessOutput(
        status: status,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    let log = TestLog.current ?? TestLog.unattributed
    log.write("──── \(executable.lastPathComponent) \(arguments.first ?? "") (arguments not shown: they may hold secrets): exit \(status); standard error follows ────")
    if !output.stderr.isEmpty { log.write(output.stderr) }
    // Error messages and everything printed, except where printing a secret is the command's job
    // (`token` prints an access token, `keys generate` a key).
    let printsSecret = arguments.first == "token" || arguments.prefix(2) == ["keys", "generate"]
    SecretAudit.capture("process-stderr", output.stderr)
    if !printsSecret { SecretAudit.capture("process-stdout", output.stdout) }
    return output
}

/// A running child process whose standard output is read line by line, and whose standard input
/// takes lines from ``send(_:)``.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let input: Int32
    private let lines = LineBuffer()
    private let status = Mutex<Int32?>(nil)

    public init(_ executable: URL, _ arguments: [String], environment: [String: String], directory: String? = nil) throws {
        var environment = environment
        // Under the secrets check, long-running children (the service) log everything they can.
        if SecretAudit.directory != nil, environment["LINEAR_OAUTH_LOG_LEVEL"] == nil { environment["LINEAR_OAUTH_LOG_LEVEL"] = "trace" }
        let stdin = try Spawn.pipe(), stdout = try Spawn.pipe()
        // Its logs (standard error) go to the test's log, shown only if the test fails.
        let log = TestLog.current ?? TestLog.unattributed
        log.write("──── \(executable.lastPathComponent) \(arguments.first ?? "") (arguments not shown: they may hold secrets): standard error follows ────")
        pid = try Spawn.start(
            [executable.path] + arguments, environment: environment, directory: directory,
            stdin: .descriptor(stdin.read), stdout: .descriptor(stdout.write), stderr: .descriptor(log.file.descriptor))
        close(stdin.read)
        close(stdout.write)
        input = stdin.write
        let lines = self.lines, reader = stdout.read
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(reader, &buffer, buffer.count)
                if count > 0 {
                    lines.append(Data(buffer[0..<count]))
                    SecretAudit.capture("child-stdout", String(decoding: buffer[0..<count], as: UTF8.self))
                } else if count == 0 || errno != EINTR {
                    break
                }
            }
            close(reader)
        }
    }

    /// Waits until the child has printed a line equal to `line`.
    public func waitForLine(_ line: String, timeout: Duration = .seconds(60)) async throws {
        try await waitUntil(timeout: timeout, "the child to print \"\(line)\"") {
            self.lines.contains(line)
        }
    }

    /// Waits for a line starting with `prefix` and returns it.
    public func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(60)) async throws -> String {
        try await waitUntil(timeout: timeout, "the child to print a line starting with \"\(prefix)\"") {
            self.lines.all.contains { $0.hasPrefix(prefix) }
        }
        return lines.all.first { $0.hasPrefix(prefix) }!
    }

    /// Every line printed so far.
    public var output: [String] { lines.all }

    /// Writes one line to the child's standard input.
    public func send(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        guard write(input, bytes, bytes.count) == bytes.count else { throw TestSupportError("cannot write to the child") }
    }

    /// Waits for the child to exit and returns its status.
    public func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        try await waitUntil(timeout: timeout, "the child to exit") { self.exitStatus() != nil }
        return exitStatus()!
    }

    /// Whether the child has exited (it is reaped if so).
    public var hasExited: Bool { exitStatus() != nil }

    private func exitStatus() -> Int32? {
        status.withLock { status in
            if status == nil { status = Spawn.poll(pid) }
            return status
        }
    }

    /// Kills the child (SIGKILL) if it still runs, and reaps it.
    public func kill() {
        guard exitStatus() == nil else { return }
        Foundation.kill(pid, SIGKILL)
        let pid = self.pid
        status.withLock { $0 = Spawn.wait(pid) }
    }

    deinit {
        kill()
        close(input)
    }
}

/// Complete lines read from a pipe; a line split across reads is joined.
private final class LineBuffer: Sendable {
    private let state = Mutex<(lines: [String], partial: [UInt8])>(([], []))

    func append(_ data: Data) {
        state.withLock { state in
            for byte in data {
                if byte == UInt8(ascii: "\n") {
                    state.lines.append(String(decoding: state.partial, as: UTF8.self))
                    state.partial.removeAll()
                } else {
                    state.partial.append(byte)
                }
            }
        }
    }

    func contains(_ line: String) -> Bool { state.withLock { $0.lines.contains(line) } }
    var all: [String] { state.withLock { $0.lines } }
}

/// Polls `condition` until it holds or the deadline passes; a test's way to wait for state
/// without sleeping a fixed time.
public func waitUntil(
    timeout: Duration = .seconds(30), _ what: String, _ condition: @Sendable () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(try await condition()) {
        guard ContinuousClock.now < deadline else { throw TestSupportError("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}
