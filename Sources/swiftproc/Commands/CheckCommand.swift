import Foundation
import SwiftProcKit

/// `swiftproc check`: load everything and print what `start` would run.
enum CheckCommand: Command {
    static let name = "check"
    static let summary = "Validate fly.toml / Procfile / .env and print the plan `start` would run."
    static let usage = "[GROUP...] [options]"
    static let discussion = """
    Prints each group with its command, instance count, ports and restart policy, the kill signal
    and timeout, which groups the http service routes to, the checks, the release command, and the
    environment keys (values hidden unless --show-env). Exits 0 when the config is valid, 1 with
    the error (file:line:column) otherwise.
    """
    static let options: [Option] = [
        CommonOptions.config, CommonOptions.procfile, AppOptions.formation, AppOptions.env, AppOptions.port,
        .flag("show-env", nil, "Show environment values, not only their names."),
        CommonOptions.json,
    ]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        let config = try AppOptions.loadConfig(arguments)
        let formation = try AppOptions.formation(config, arguments, command: name)
        let ports = try AppOptions.ports(config, arguments, command: name)
        let showEnv = arguments.has("show-env")
        if arguments.has("json") {
            print(Plan(config, formation: formation, ports: ports, showEnv: showEnv).jsonText())
        } else {
            print(renderPlan(config, formation: formation, ports: ports, showEnv: showEnv), terminator: "")
        }
        // The plan first, then (on stderr) why it cannot run.
        fflush(nil)
        try config.requireCommands()
        return 0
    }
}
