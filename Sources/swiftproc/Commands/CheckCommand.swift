import Foundation
import SwiftProcKit

/// `swiftproc check`: load everything and print what `start` would run.
enum CheckCommand: Command {
    static let name = "check"
    static let summary = "Validate fly.toml / Procfile / .env and print the plan `start` would run."
    static let usage = "[GROUP...] [options]"
    static let discussion = """
    Prints each group with its command and where it came from, instance count, ports and restart
    policy, the kill signal and timeout, which groups the services route to, the checks, the
    release command, and the environment keys (values hidden unless --show-env, which prints
    exactly what each instance gets). The plan is the one `start` runs: check refuses what start
    refuses, with the same message.

    Warnings (unknown keys with the closest known one, values read past, groups with no command,
    hard-coded ports) go to stderr as file:line:column. Exits 0 when the app can run (warnings
    or not), 1 with the error otherwise; --strict exits 1 on warnings too.
    """
    static let options: [Option] = [
        CommonOptions.config, CommonOptions.procfile, AppOptions.formation, AppOptions.env, AppOptions.port,
        AppOptions.region,
        .value("restart", nil, "POLICY", "As start: override every group's restart policy."),
        .value("pipes", nil, "GROUPS", "As start: these groups get pipes instead of a pseudo-terminal."),
        .flag("no-tty", nil, "As start: pipes for every group."),
        .flag("no-proxy", nil, "As start: no local proxy."),
        .value("proxy-port", nil, "PORT", "As start: the http service's proxy listens on PORT."),
        .value("idle-timeout", nil, "DURATION", "As start: auto-stop after this long idle."),
        .flag("show-env", nil, "Show each instance's environment, values included, exactly as start gives it."),
        .flag("strict", nil, "Treat warnings as errors (exit 1), like `fly config validate --strict`."),
        CommonOptions.json,
    ]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        let config = try AppOptions.loadConfig(arguments)
        let plan: SupervisorPlan
        do {
            plan = try SupervisorPlan(config: config, options: AppOptions.runOptions(arguments), requireRunnable: false)
        } catch {
            // Why it cannot run, after the warnings that may explain it.
            AppOptions.printWarnings(config)
            throw error
        }
        let report = Plan(config, plan: plan, showEnv: arguments.has("show-env"))
        if arguments.has("json") {
            print(report.jsonText())
        } else {
            print(renderPlan(report, showEnv: arguments.has("show-env")), terminator: "")
        }
        fflush(nil)
        AppOptions.printWarnings(config, plan: plan)
        try config.requireCommands()
        let count = config.warnings.count + (plan.environmentProblem() == nil ? 0 : 1)
        if arguments.has("strict") && count > 0 {
            printError("swiftproc check: \(count) warning\(count == 1 ? "" : "s") (--strict)")
            return 1
        }
        return 0
    }
}
