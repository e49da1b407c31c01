import Foundation
import Logging
import Synchronization
import Testing

/// Each test's logs in a file of its own, shown only when the test fails, so a run's output ends
/// with the failures and the summary in view.
///
/// Put `.capturesLogs` on every top-level suite. Inside a test, every `Logger` made (the service's,
/// the token manager's, the emulator's, Hummingbird's) writes to that test's file, and so does the
/// standard error of the child processes it starts (``ChildProcess``). The files are under
/// `.build/test-logs/` (under the secrets check, `AUDIT_DIR/test-logs/`); a failing test prints the
/// tail of its file and the path. `LINEAR_OAUTH_TEST_LOG_LEVEL` sets the level (default `info`).
public struct CapturedLogs: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    /// One scope per test case; a suite gets none of its own.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> CapturedLogs? {
        testCase == nil ? nil : self
    }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        TestLog.bootstrap()
        let log = TestLog(name: test.id.description)
        defer { log.finish() }
        try await TestLog.$current.withValue(log) {
            // Every issue recorded in this test (a failed expectation, a thrown error) marks it failed.
            let watcher: IssueHandlingTrait = .compactMapIssues { issue in
                if issue.isFailure { log.markFailed() }
                return issue
            }
            do {
                try await watcher.provideScope(for: test, testCase: testCase, performing: function)
            } catch {
                log.markFailed()
                throw error
            }
        }
    }
}

extension Trait where Self == CapturedLogs {
    /// Each test's logs go to a file of its own and are printed only if the test fails.
    public static var capturesLogs: CapturedLogs { CapturedLogs() }
}

/// One test's log file.
public final class TestLog: Sendable {
    /// The test running on this task, if any.
    @TaskLocal public static var current: TestLog?

    /// Where loggers made outside any test write (shared fixtures, process-wide clients).
    static let unattributed = TestLog(name: "unattributed")

    public let path: String
    let file: AppendingFile
    private let failed = Atomic<Bool>(false)

    init(name: String) {
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }.prefix(150))
        var path = "\(Self.directory)/\(safe).log"
        var suffix = 2
        while FileManager.default.fileExists(atPath: path) {
            path = "\(Self.directory)/\(safe)-\(suffix).log"
            suffix += 1
        }
        self.path = path
        file = AppendingFile(path)
    }

    /// Appends one line.
    public func write(_ line: String) {
        file.append(line.hasSuffix("\n") ? line : line + "\n")
    }

    func markFailed() { failed.store(true, ordering: .relaxed) }

    /// Prints the tail of the log if the test failed.
    func finish() {
        guard failed.load(ordering: .relaxed) else { return }
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0)
        let shown = lines.suffix(Self.tailLines)
        var out = "──── logs of the failing test (\(shown.count) of \(lines.count) lines; all of them in \(path)) ────\n"
        for line in shown { out += line + "\n" }
        out += "──── end of logs ────\n"
        FileHandle.standardError.write(Data(out.utf8))
    }

    /// Lines of a failing test's log printed at its end.
    static let tailLines = 150

    /// The run's log directory, emptied when the run starts.
    static let directory: String = {
        let root = SecretAudit.directory ?? (packageRoot + "/.build")
        let directory = root + "/test-logs"
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }()

    /// The package's root: this file is Tests/Support/TestLogs.swift.
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Routes the process's logs: each logger to the file of the test it was made in, and, under
    /// the secrets check, every record at every level to the audit's log too. Once per process.
    public static func bootstrap() { _ = bootstrapped }

    private static let bootstrapped: Bool = {
        let level = ProcessInfo.processInfo.environment["LINEAR_OAUTH_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let audit = SecretAudit.directory.map { AppendingFile("\($0)/logs/tests-\(getpid()).log") }
        LoggingSystem.bootstrap { label in
            var test = FileLogHandler(label: label, file: (TestLog.current ?? TestLog.unattributed).file)
            test.logLevel = level
            guard let audit else { return test }
            var everything = FileLogHandler(label: label, file: audit)
            everything.logLevel = .trace
            return MultiplexLogHandler([test, everything])
        }
        return true
    }()
}

/// Writes records, metadata included, to a file (a test's log, the secrets check's log).
struct FileLogHandler: LogHandler {
    let label: String
    let file: AppendingFile
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(metadataProvider?.get() ?? [:]) { $1 }.merging(event.metadata ?? [:]) { $1 }
        let fields = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        file.append("\(Self.timestamp()) \(event.level) \(label): \(event.message)\(fields)\n")
    }

    /// The wall-clock time with milliseconds, UTC.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min, parts.tm_sec, Int(now.tv_nsec / 1_000_000))
    }
}
