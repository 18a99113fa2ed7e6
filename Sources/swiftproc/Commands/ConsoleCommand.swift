import Foundation
import SwiftProcKit

/// `swiftproc console` — `fly console`: fly.toml's `console_command`, in your terminal.
enum ConsoleCommand: Command {
    static let name = "console"
    static let summary = "Run fly.toml's console_command in your terminal (like `fly console`)."
    static let usage = "[options]"
    static let discussion = """
    Runs console_command (for example `/rails/bin/rails console`) once, as `fly console` does on
    a machine of its own: with the app's environment, FLY_PROCESS_GROUP=fly_app_console and
    PS=console, your terminal as its stdin and stdout, its exit status as swiftproc's. Paths
    inside the image that hold the app (`/rails/bin/rails` where the Dockerfile copies the app
    to /rails) run from the app directory. Without a console_command, use `swiftproc run CMD`.
    """
    static let options: [Option] = [CommonOptions.config, CommonOptions.procfile, AppOptions.env, AppOptions.region]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        if let extra = arguments.positionals.first {
            throw UsageError(message: "console takes no arguments, not \"\(extra)\" (to run a command: `swiftproc run`)", command: name)
        }
        let (config, plan) = try RunCommand.oneOffPlan(arguments)
        guard let command = config.consoleCommand, !command.isEmpty else {
            throw Failure("swiftproc console: \(config.configPath) has no console_command; run a console with "
                          + "`swiftproc run CMD`, e.g. `swiftproc run bin/rails console`")
        }
        var environment = plan.oneOffEnvironment(group: config.defaultGroup, name: "console")
        environment["FLY_PROCESS_GROUP"] = "fly_app_console"
        return try RunCommand.launch([config.localConsoleCommand ?? command], environment: environment, plan: plan)
    }
}
