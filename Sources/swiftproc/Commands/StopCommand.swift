import Foundation
import SwiftProcKit

/// `swiftproc stop` — what Ctrl-C does, from another terminal (or to a daemon).
enum StopCommand: Command {
    static let name = "stop"
    static let summary = "Stop the running supervisor and all its processes, as Ctrl-C would."
    static let usage = "[options]"
    static let options: [Option] = [
        CommonOptions.config, CommonOptions.procfile, CommonOptions.socket,
        .flag("no-wait", nil, "Return once the stop was requested instead of when everything is gone."),
    ]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        let client = ControlClient.forApp(arguments, timeout: 10)
        let status = try client.send(ControlRequest(command: .status)).status
        let reply = try client.send(ControlRequest(command: .stop))
        guard reply.ok else { throw Failure("swiftproc stop: \(reply.error ?? "failed")") }
        if arguments.has("no-wait") { print("stopping"); return 0 }
        // Done when the supervisor has exited (its socket no longer answers). It gives every
        // process kill_timeout (at most 300 s) before SIGKILL, so that bounds the wait.
        let deadline = Date().addingTimeInterval(330)
        while Date() < deadline {
            if (try? client.send(ControlRequest(command: .ping))) == nil {
                print("stopped\(status.map { " (supervisor pid \($0.pid))" } ?? "")")
                return 0
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        throw Failure("swiftproc stop: the supervisor\(status.map { " (pid \($0.pid))" } ?? "") is still running after 330s")
    }
}
