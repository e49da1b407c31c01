import Synchronization

/// A continuation resumed by whichever of several tasks comes first (a result or a deadline);
/// later resumes are ignored.
package final class ResumeOnce<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, any Error>?>

    package init(_ continuation: CheckedContinuation<Value, any Error>) { self.continuation = Mutex(continuation) }

    package func resume(with result: Result<Value, any Error>) {
        continuation.withLock { continuation in
            continuation?.resume(with: result)
            continuation = nil
        }
    }

    package func resume(throwing error: any Error) { resume(with: .failure(error)) }
}
