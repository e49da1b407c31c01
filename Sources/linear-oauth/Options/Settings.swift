import ArgumentParser
import Foundation

/// The one way the command line reads a setting: its flag, else its environment variable (for
/// `serve`, the environment with the secrets directory and the `.env` file filled in underneath,
/// see ``ServiceSettings``). A blank value counts as unset.
struct Settings {
    /// The variables, before flags.
    var environment: [String: String]

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The flag's value, else the variable's; `nil` when both are unset or blank.
    func string(_ variable: String, flag: String?) -> String? {
        (flag ?? environment[variable]).flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
    }

    /// A comma-separated list, entries trimmed, blank entries dropped.
    func list(_ variable: String, flag: String?) -> [String]? {
        string(variable, flag: flag).map {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    /// A number of seconds.
    /// - Parameters:
    ///   - name: What it is, for errors ("the lock timeout").
    ///   - mayBeZero: Whether 0 is allowed (else it must be positive).
    /// - Throws: `ValidationError` naming the variable or the setting.
    func seconds(_ variable: String, flag: Double?, default fallback: Double, name: String, mayBeZero: Bool = false) throws -> Duration {
        var value = flag
        if value == nil, let text = string(variable, flag: nil) {
            guard let seconds = Double(text.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(variable) must be a number of seconds")
            }
            value = seconds
        }
        let seconds = value ?? fallback
        guard seconds.isFinite else { throw ValidationError("\(variable) must be a number of seconds") }
        if mayBeZero {
            guard seconds >= 0 else { throw ValidationError("\(name) cannot be negative") }
        } else {
            guard seconds > 0 else { throw ValidationError("\(name) must be positive") }
        }
        return .milliseconds(Int64(seconds * 1000))
    }

    /// A switch: the flag, else the variable (`1`, `true`, `yes` or `on`; `0`, `false`, `no` or `off`).
    /// - Throws: `ValidationError` naming the variable.
    func isOn(_ variable: String, flag: Bool) throws -> Bool {
        try isOn(variable, flag: flag ? true : nil, default: false)
    }

    /// A switch with both spellings (`--x` / `--no-x`): the flag when given, else the variable, else `fallback`.
    /// - Throws: `ValidationError` when the variable is neither true nor false.
    func isOn(_ variable: String, flag: Bool?, default fallback: Bool) throws -> Bool {
        if let flag { return flag }
        guard let text = string(variable, flag: nil)?.lowercased() else { return fallback }
        if ["1", "true", "yes", "on"].contains(text) { return true }
        if ["0", "false", "no", "off"].contains(text) { return false }
        throw ValidationError("\(variable) must be true or false")
    }

    /// A whole number, 0 or more.
    /// - Throws: `ValidationError` naming the variable.
    func count(_ variable: String, flag: Int?, default fallback: Int) throws -> Int {
        var value = flag
        if value == nil, let text = string(variable, flag: nil) {
            guard let number = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(variable) must be a whole number")
            }
            value = number
        }
        let count = value ?? fallback
        guard count >= 0 else { throw ValidationError("\(variable) cannot be negative") }
        return count
    }

    /// The environment with the given flags written over their variables, for readers that take an
    /// environment (``LinearClientConfiguration/fromEnvironment(_:)``, ``KeyRing/load(keys:keysFile:environment:)``).
    func overlaid(_ flags: [String: String?]) -> [String: String] {
        var environment = self.environment
        for case (let variable, let value?) in flags { environment[variable] = value }
        return environment
    }
}

extension Settings {
    /// Warns (one line on standard error) that a secret given as a flag shows in the process list.
    static func warnSecretFlag(_ flag: String, _ variable: String) {
        FileHandle.standardError.write(Data(
            "linear-oauth: warning: \(flag) shows in the process list (ps, /proc); prefer \(variable) or a file\n".utf8))
    }
}
