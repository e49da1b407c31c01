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
            Logs go to standard error at LINEAR_OAUTH_LOG_LEVEL (trace, debug, info, notice, warning, error; default: none,
            info for serve and emulator).
            Exit status: 0 success, 1 failure, 2 usage or configuration error, 3 organization not installed,
            4 re-authorization required, 5 Linear unreachable or another temporary failure.
            """,
        subcommands: [
            ServeCommand.self, TokenCommand.self, MigrateCommand.self, KeysCommand.self, InstallationsCommand.self,
            EmulatorCommand.self,
        ]
    )
}

@main
enum Main {
    static func main() async {
        // Quiet by default: a failing command prints its one line; LINEAR_OAUTH_LOG_LEVEL=info shows more.
        // Long-running commands (serve, emulator) log at info by default.
        let longRunning = ["serve", "emulator"].contains(CommandLine.arguments.dropFirst().first ?? "")
        let level = Settings().string("LINEAR_OAUTH_LOG_LEVEL", flag: nil).flatMap(Logger.Level.init(rawValue:))
            ?? (longRunning ? .info : .critical)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let command: any ParsableCommand
        do {
            command = try LinearOAuthCommand.parseAsRoot()
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

    /// Prints one line to standard error and exits.
    static func fail(_ message: String, status: Int32) -> Never {
        let line = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("linear-oauth: error: \(line)\n".utf8))
        exit(status)
    }
}
