import Foundation
import SwiftProcKit

/// swiftproc's version, printed by `--version`.
let swiftprocVersion = "0.1.0"

/// Every command, in the order `--help` lists them.
func allCommands() -> [any Command.Type] {
    [StartCommand.self, CheckCommand.self, ScaleCommand.self, StatusCommand.self, LogsCommand.self, ExportCommand.self,
     RestartCommand.self, DeployCommand.self, AttachCommand.self, RunCommand.self, ConsoleCommand.self, StopCommand.self, HelpCommand.self, VersionCommand.self]
}

func findCommand(_ name: String) -> (any Command.Type)? {
    allCommands().first { $0.name == name || $0.aliases.contains(name) }
}

let overview = """
swiftproc runs the [processes] of a fly.toml (or a Procfile) on your machine: each group N times,
their output merged as prefixed, coloured lines, crashed children restarted, and the formation
changed live from another terminal — the way `fly scale`, `fly status` and `fly logs` do on Fly.
"""

func mainHelp() -> String {
    var text = overview + "\n\nUSAGE: swiftproc <command> [options]\n\nCOMMANDS:\n"
    let commands = allCommands()
    let width = (commands.map { $0.name.count }.max() ?? 0) + 2
    for c in commands {
        text += "  " + c.name.padding(toLength: width, withPad: " ", startingAt: 0) + c.summary + "\n"
    }
    text += """

    Run `swiftproc help <command>` or `swiftproc <command> --help` for a command's options.
    Start here: `swiftproc start` in a directory with a fly.toml or Procfile.
    """
    return text
}

func runMain() async -> Int32 {
    var args = Array(CommandLine.arguments.dropFirst())
    guard let first = args.first else {
        print(mainHelp())
        return 0
    }
    if first == "--help" || first == "-h" { print(mainHelp()); return 0 }
    if first == "--version" || first == "-V" { print("swiftproc \(swiftprocVersion)"); return 0 }
    guard let command = findCommand(first) else {
        let names = allCommands().flatMap { [$0.name] + $0.aliases }
        let hint = closestMatch(to: first, in: names).map { " Did you mean `swiftproc \($0)`?" } ?? ""
        printError("swiftproc: unknown command \"\(first)\".\(hint) Run `swiftproc --help` for the list.")
        return 2
    }
    args.removeFirst()
    // For `run CMD --help`, the --help is CMD's.
    let own = command.takesACommand ? Array(args.prefix { $0.hasPrefix("-") }) : args
    if own.contains("--help") || own.contains("-h") {
        print(command.helpText, terminator: "")
        return 0
    }
    do {
        let parsed = try parseArguments(args, options: command.options, command: command.name,
                                        stopAtFirstPositional: command.takesACommand)
        return try await command.run(parsed)
    } catch let error as UsageError {
        printError("swiftproc \(error.command): \(error.message)\nRun `swiftproc \(error.command) --help` for usage.")
        return 2
    } catch let error as Failure {
        printError(error.description)
        return error.status
    } catch let error as ConfigError {
        if case .invalidOption = error {
            printError("swiftproc \(command.name): \(error.message)")
            return 2
        }
        printError(error.rendered)
        if case .syntax(_, let path) = error, URL(fileURLWithPath: path).lastPathComponent.lowercased().hasPrefix("procfile") {
            printError("(that looks like a Procfile: pass it with -f, not -c)")
        }
        return 1
    } catch let error as ControlClientError {
        printError(error.description)
        return 1
    } catch {
        printError("swiftproc: \(error)")
        return 1
    }
}

Platform.survivePipeErrors()
exit(await runMain())
