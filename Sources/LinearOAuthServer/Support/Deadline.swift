import LinearOAuth

/// Work that a route waits for only so long.
enum Deadline {
    /// `work`'s result, or `nil` if it fails or takes longer than `limit` (it is then cancelled and
    /// left to finish on its own).
    static func within<T: Sendable>(_ limit: Duration, _ work: @escaping @Sendable () async throws -> T) async -> T? {
        try? await withCheckedThrowingContinuation { continuation in
            let answer = ResumeOnce(continuation)
            let task = Task {
                do { answer.resume(with: .success(try await work())) } catch { answer.resume(throwing: error) }
            }
            Task {
                try? await Task.sleep(for: limit)
                task.cancel()
                answer.resume(throwing: CancellationError())
            }
        }
    }
}
