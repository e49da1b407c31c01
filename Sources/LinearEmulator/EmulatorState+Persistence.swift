import Foundation

/// The emulator's world in a file, so a development setup (`serve --emulator`) survives a restart:
/// its workspaces, clients, grants and tokens. The file holds tokens: it is written with mode 0600,
/// through a temporary file renamed over it, and never read if others can read it.
extension EmulatorState {
    struct Snapshot: Codable {
        var organizations: [EmulatedOrganization]
        var clients: [EmulatedClient]
        var settings: EmulatorSettings
        var codes: [String: AuthorizationCode]
        var grants: [Int: Grant]
        var nextGrantID: Int
        var accessTokens: [String: AccessToken]
        var refreshTokens: [String: RefreshToken]
    }

    var snapshot: Snapshot {
        Snapshot(
            organizations: organizations, clients: Array(clients.values).sorted { $0.id < $1.id }, settings: settings, codes: codes,
            grants: grants, nextGrantID: nextGrantID, accessTokens: accessTokens, refreshTokens: refreshTokens)
    }

    func restore(_ snapshot: Snapshot) {
        organizations = snapshot.organizations
        clients = Dictionary(uniqueKeysWithValues: snapshot.clients.map { ($0.id, $0) })
        settings = snapshot.settings
        codes = snapshot.codes
        grants = snapshot.grants
        nextGrantID = snapshot.nextGrantID
        accessTokens = snapshot.accessTokens
        refreshTokens = snapshot.refreshTokens
        for client in snapshot.clients { SecretLedger.record(client) }
    }

    /// Writes the world to `path` (mode 0600, atomically).
    func save(to path: String) throws {
        let data = try JSONEncoder().encode(snapshot)
        let temporary = path + ".tmp"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw EmulatorError("cannot write the emulator state file \(temporary)") }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == data.count, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw EmulatorError("cannot write the emulator state file \(path)")
        }
    }

    /// Reads the world from `path`, if the file exists and only its owner can read it.
    /// - Returns: Whether there was a file.
    func load(from path: String) throws -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        guard info.st_mode & 0o077 == 0 else {
            throw EmulatorError("the emulator state file \(path) is readable by group or others; run chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw EmulatorError("cannot read \(path)") }
        do {
            restore(try JSONDecoder().decode(Snapshot.self, from: data))
        } catch {
            throw EmulatorError("the emulator state file \(path) is not readable JSON: delete it to start afresh")
        }
        return true
    }
}
