import Foundation

/// A file that holds a secret (an encryption key file, a development API key). Read through its
/// symlinks, as Kubernetes and Docker mount secrets, and judged by the file finally opened: not
/// readable or writable by group or others, and owned by this process's user or by root.
/// Created with `O_EXCL` and mode 0600, so there is no moment when another user could read it.
package enum SecretFile {
    /// Why a secret file was not read.
    package enum Problem: Error, Equatable, Sendable {
        /// Missing, not a regular file, or not readable.
        case unreadable
        /// Group or others may read or write it (the file's mode).
        case tooOpen(mode: Int)
        /// Owned by another user (the owner's uid).
        case wrongOwner(uid: Int)
    }

    /// The file's contents, if the file passes the checks.
    package static func read(_ path: String) throws(Problem) -> Data {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .unreadable }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw .unreadable }
        let mode = Int(info.st_mode & 0o7777)
        guard mode & 0o077 == 0 else { throw .tooOpen(mode: mode) }
        guard info.st_uid == geteuid() || info.st_uid == 0 else { throw .wrongOwner(uid: Int(info.st_uid)) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = Foundation.read(descriptor, &buffer, buffer.count)
            if count < 0 { if errno == EINTR { continue }; throw .unreadable }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
            guard data.count <= 1 << 20 else { throw .unreadable }
        }
    }

    /// Creates `path` with `contents`, mode 0600, unless it exists.
    /// - Returns: `false` if the file already existed (it is left as it is).
    /// - Throws: `CocoaError` when the file cannot be created or written.
    package static func create(_ path: String, contents: Data) throws -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor < 0 {
            if errno == EEXIST { return false }
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        defer { close(descriptor) }
        var written = 0
        let bytes = Array(contents)
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 { if errno == EINTR { continue }; throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
            written += count
        }
        guard fsync(descriptor) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        return true
    }
}
