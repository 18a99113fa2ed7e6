import Foundation
import SwiftProcKit

/// How `start` and `check` turn `-c/-f/-e/-m/-p` and group arguments into a config, a
/// formation and ports — one place, so `check` prints exactly what `start` would run.
enum AppOptions {
    static let formation = Option.value("formation", "m", "FORMATION",
                                        "Instances per group: app=3,worker=2 (or \"app=3 worker=2\", all=2).")
    static let env = Option.value("env", "e", "FILES", "Comma-separated .env files to load, later ones winning (default: .env).")
    static let port = Option.value("port", "p", "BASE", "Base port for $PORT (default: PORT from .env or the environment, else 5000).")
    static let region = Option.value("region", nil, "REGION", "Act as a machine in REGION (FLY_REGION; default: primary_region, else local).")

    static func loadConfig(_ arguments: ParsedArguments) throws -> AppConfig {
        let envFiles = arguments.all("env").flatMap { $0.split(separator: ",").map(String.init) }
        return try ConfigLoader.load(configPath: arguments.value("config"), procfilePath: arguments.value("procfile"),
                                     envFiles: envFiles.isEmpty ? nil : envFiles,
                                     in: FileManager.default.currentDirectoryPath)
    }

    /// The options `start` and `check` share, as the plan takes them.
    static func runOptions(_ arguments: ParsedArguments) -> RunOptions {
        var options = RunOptions()
        options.formation = arguments.all("formation")
        options.onlyGroups = arguments.positionals
        options.portBase = arguments.value("port")
        options.restart = arguments.value("restart")
        options.stopWhenAnyExits = arguments.has("no-restart")
        options.noTTY = arguments.has("no-tty")
        options.pipeGroups = arguments.all("pipes").flatMap { $0.split(separator: ",").map(String.init) }
        options.proxy = !arguments.has("no-proxy")
        options.proxyPort = arguments.value("proxy-port")
        options.idleTimeout = arguments.value("idle-timeout")
        options.region = arguments.value("region")
        options.inheritedEnvironment = ProcessInfo.processInfo.environment
        return options
    }

    /// The one plan for config + options: what `check` prints and `start` runs.
    static func plan(_ config: AppConfig, _ arguments: ParsedArguments) throws -> SupervisorPlan {
        try SupervisorPlan(config: config, options: runOptions(arguments))
    }

    /// Prints the config's warnings to stderr, once, in file order, then the plan's.
    static func printWarnings(_ config: AppConfig, plan: SupervisorPlan? = nil) {
        for warning in config.warnings { printError(warning.rendered) }
        if let problem = plan?.environmentProblem() { printError("warning: \(problem)") }
    }
}
