import SwiftProcKit

/// `swiftproc restart [GROUP | GROUP.N ...]` — a rolling restart.
enum RestartCommand: Command {
    static let name = "restart"
    static let summary = "Restart instances one at a time (all when none are named)."
    static let usage = "[GROUP | GROUP.N | MACHINE_ID]... [options]"
    static let options: [Option] = [CommonOptions.config, CommonOptions.procfile, CommonOptions.socket]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        let reply = try ControlClient.forApp(arguments).send(ControlRequest(command: .restart, arguments: arguments.positionals))
        guard reply.ok else { throw Failure("swiftproc restart: \(reply.error ?? "failed")") }
        let names = reply.status?.instances.filter { i in
            arguments.positionals.isEmpty || arguments.positionals.contains(i.group) || arguments.positionals.contains(i.name)
                || arguments.positionals.contains(i.machineID)
        }.map(\.name) ?? []
        print("restarted \(names.isEmpty ? "nothing" : names.joined(separator: ", "))")
        return 0
    }
}
