import Foundation
import SwiftProcKit

/// `swiftproc deploy` — the local `fly deploy`: apply a changed fly.toml, Procfile or `.env` to
/// the running app without stopping it.
enum DeployCommand: Command {
    static let name = "deploy"
    static let aliases = ["reload"]
    static let summary = "Apply a changed fly.toml / Procfile / .env to the running app (like `fly deploy`)."
    static let usage = "[options]"
    static let discussion = """
    The running supervisor re-reads its files with the options `start` was given, runs the
    release command, starts added groups, stops removed ones, and rolls over only the groups whose
    effective config changed (command, environment, checks, restart policy, kill settings,
    services, ports): one instance at a time — or [deploy] max_unavailable, or all at once with
    strategy = "immediate" — each replacement ready (its service checks pass, or it accepts
    connections on $PORT, or it keeps running for a second) before the next goes down, within
    [deploy] wait_timeout. Groups that did not change keep their processes. It prints what
    happened to each group. A config that does not load changes nothing.

    `swiftproc start --watch` deploys by itself whenever one of those files changes.
    """
    static let options: [Option] = [CommonOptions.config, CommonOptions.procfile, CommonOptions.socket]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        if let extra = arguments.positionals.first {
            throw UsageError(message: "deploy takes no arguments, not \"\(extra)\"", command: name)
        }
        let reply = try ControlClient.forApp(arguments).send(ControlRequest(command: .deploy))
        guard reply.ok else { throw Failure("swiftproc deploy: \(reply.error ?? "failed")") }
        if let message = reply.message { print(message) }
        return 0
    }
}
