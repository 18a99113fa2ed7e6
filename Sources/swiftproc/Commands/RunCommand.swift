import Foundation
import SwiftProcKit

/// `swiftproc run CMD [ARGS...]` — foreman's `run`: a one-off command with the app's environment.
enum RunCommand: Command {
    static let name = "run"
    static let summary = "Run a one-off command with a group's environment, in your terminal (like `foreman run`)."
    static let usage = "[-g GROUP] [-p PORT] [--] CMD [ARGS...]"
    static let discussion = """
    Runs CMD once in the app directory with the environment an instance of GROUP (default: the
    default group) gets — swiftproc's own, [env], the .env files, Fly's FLY_* variables — and
    PS=GROUP.run. PORT is set only with -p. Your terminal is its stdin, stdout and stderr: a REPL,
    a debugger or a prompt works, Ctrl-C goes to it, and its exit status is swiftproc's. Works
    whether or not `swiftproc start` is running. One argument is a shell command line; several
    are run as they are, without a shell. Examples:
      swiftproc run bin/rails db:migrate
      swiftproc run -g worker bundle exec sidekiq -q mailers
      swiftproc run "bin/rake assets:clean && bin/rake assets:precompile"
    """
    static let options: [Option] = [
        CommonOptions.config, CommonOptions.procfile, AppOptions.env, AppOptions.region,
        .value("process-group", "g", "GROUP", "Whose environment: this group's (default: the default group)."),
        .value("port", "p", "PORT", "Set PORT to this (by default a one-off process gets none)."),
    ]
    static let takesACommand = true

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        guard !arguments.positionals.isEmpty else {
            throw UsageError(message: "what should it run? e.g. `swiftproc run bin/rails console`", command: name)
        }
        let (config, plan) = try oneOffPlan(arguments)
        let group = arguments.value("process-group") ?? config.defaultGroup
        guard config.groupNames.contains(group) else {
            throw ConfigError.unknownProcess(group, suggestions: Suggestions.closest(to: group, among: config.groupNames),
                                             known: config.groupNames)
        }
        var port: Int?
        if let text = arguments.value("port") {
            guard let p = Int(text), (1...65535).contains(p) else {
                throw UsageError(message: "--port needs a port number (1-65535), not \"\(text)\"", command: name)
            }
            port = p
        }
        return try launch(arguments.positionals, environment: plan.oneOffEnvironment(group: group, port: port), plan: plan)
    }

    /// The config and plan a one-off process takes its environment from.
    static func oneOffPlan(_ arguments: ParsedArguments) throws -> (AppConfig, SupervisorPlan) {
        let config = try AppOptions.loadConfig(arguments)
        var options = RunOptions()
        options.region = arguments.value("region")
        options.proxy = false
        options.inheritedEnvironment = ProcessInfo.processInfo.environment
        return (config, try SupervisorPlan(config: config, options: options, requireRunnable: false))
    }

    static func launch(_ words: [String], environment: [String: String], plan: SupervisorPlan) throws -> Int32 {
        do {
            return try OneOffProcess.run(words, environment: environment, directory: plan.directory,
                                         killSignal: plan.killSignal, killTimeout: plan.killTimeout)
        } catch {
            throw Failure("swiftproc \(name): cannot run \(words.joined(separator: " ")): \(error.localizedDescription)")
        }
    }
}
