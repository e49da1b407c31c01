import Foundation
import Synchronization

/// Runs `body` on a detached task while the main thread waits on a semaphore, then exits 1 with
/// the error, if any, on standard error (prefixed with `program`). For the executables valgrind
/// counts (Benchmarks/*Count): valgrind 3.19 crashes in the `rt_sigsuspend` an async `main` parks
/// the main thread in.
public func runBlockingMain(_ program: String, _ body: @escaping @Sendable () async throws -> Void) {
    let done = DispatchSemaphore(value: 0)
    let failure = Mutex<(any Error)?>(nil)
    Task.detached {
        do { try await body() } catch { failure.withLock { $0 = error } }
        done.signal()
    }
    done.wait()
    if let error = failure.withLock({ $0 }) {
        FileHandle.standardError.write(Data("\(program): \(error)\n".utf8))
        exit(1)
    }
}
