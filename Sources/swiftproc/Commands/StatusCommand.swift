import Foundation
import SwiftProcKit

/// `swiftproc status` (alias `ps`) — `fly status` for a running `swiftproc start`.
enum StatusCommand: Command {
    static let name = "status"
    static let aliases = ["ps"]
    static let summary = "Show every instance of the running app: pid, state, restarts, port."
    static let usage = "[options]"
    static let options: [Option] = [CommonOptions.config, CommonOptions.procfile, CommonOptions.socket, CommonOptions.json]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        let reply = try ControlClient.forApp(arguments, timeout: 10).send(ControlRequest(command: .status))
        guard reply.ok, let status = reply.status else { throw Failure("swiftproc status: \(reply.error ?? "no status in reply")") }
        if arguments.has("json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
        } else {
            print(StatusTable.render(status, now: Date().timeIntervalSince1970), terminator: "")
        }
        return 0
    }
}
