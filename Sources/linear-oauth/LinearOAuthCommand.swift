import ArgumentParser
import Foundation
import LinearOAuth
import Logging

/// The operator's command line: storage, keys and installations.
struct LinearOAuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linear-oauth",
        abstract: "Keep a Linear app's OAuth tokens: encrypted at rest, one installation per workspace.",
        discussion: """
            Settings come from flags or, when a flag is not given, from the environment variable named in its help.
            Logs go to standard error at --log-level / LINEAR_OAUTH_LOG_LEVEL (trace, debug, info, notice, warning, error;
            default: none, info for serve and emulator), as text or, with --log-format json / LINEAR_OAUTH_LOG_FORMAT=json, one
            JSON object per line (time, level, label, message, metadata). Both flags work with every command.
            Exit status: 0 success, 1 failure, 2 usage or configuration error, 3 organization not installed,
            4 re-authorization required, 5 Linear unreachable or another temporary failure.
            """,
        subcommands: [
            ServeCommand.self, TokenCommand.self, MigrateCommand.self, KeysCommand.self, InstallationsCommand.self,
            DoctorCommand.self, EmulatorCommand.self,
        ]
    )
}

@main
enum Main {
    static func main() async {
        // --log-level and --log-format apply to every command, anywhere on the line: logging starts
        // before the arguments are parsed, so they are taken out here.
        var arguments = Array(CommandLine.arguments.dropFirst())
        let levelFlag = takeOption("--log-level", from: &arguments)
        let formatFlag = takeOption("--log-format", from: &arguments)
        let settings = Settings()
        // Quiet by default: a failing command prints its one line; LINEAR_OAUTH_LOG_LEVEL=info shows more.
        // Long-running commands (serve, emulator) log at info by default.
        let longRunning = ["serve", "emulator"].contains(arguments.first ?? "")
        var level: Logger.Level = longRunning ? .info : .critical
        if let text = settings.string("LINEAR_OAUTH_LOG_LEVEL", flag: levelFlag) {
            guard let parsed = Logger.Level(rawValue: text.lowercased()) else {
                fail("LINEAR_OAUTH_LOG_LEVEL (--log-level) must be one of trace, debug, info, notice, warning, error, critical", status: ExitStatus.usage)
            }
            level = parsed
        }
        let format = settings.string("LINEAR_OAUTH_LOG_FORMAT", flag: formatFlag)?.lowercased() ?? "text"
        guard ["text", "json"].contains(format) else {
            fail("LINEAR_OAUTH_LOG_FORMAT (--log-format) must be text or json", status: ExitStatus.usage)
        }
        LoggingSystem.bootstrap { label in
            if format == "json" {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let command: any ParsableCommand
        do {
            command = try LinearOAuthCommand.parseAsRoot(arguments)
        } catch {
            let code = LinearOAuthCommand.exitCode(for: error)
            if code == .success {
                print(LinearOAuthCommand.fullMessage(for: error))
                exit(0)
            }
            fail(LinearOAuthCommand.message(for: error) + " (see linear-oauth --help)", status: ExitStatus.usage)
        }
        do {
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                var command = command
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch where LinearOAuthCommand.exitCode(for: error) == .success {
            // A command group run without a subcommand asks for its help.
            print(LinearOAuthCommand.fullMessage(for: error))
            exit(0)
        } catch {
            fail(ExitStatus.message(for: error), status: ExitStatus.code(for: error))
        }
    }

    /// Removes `--name VALUE` or `--name=VALUE` from the arguments (before a `--`), returning the last value.
    static func takeOption(_ name: String, from arguments: inout [String]) -> String? {
        var value: String?
        var index = 0
        while index < arguments.count, arguments[index] != "--" {
            if arguments[index] == name, index + 1 < arguments.count {
                value = arguments[index + 1]
                arguments.removeSubrange(index...(index + 1))
            } else if arguments[index].hasPrefix(name + "=") {
                value = String(arguments[index].dropFirst(name.count + 1))
                arguments.remove(at: index)
            } else {
                index += 1
            }
        }
        return value
    }

    /// Prints one line to standard error and exits.
    static func fail(_ message: String, status: Int32) -> Never {
        let line = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("linear-oauth: error: \(line)\n".utf8))
        exit(status)
    }
}
