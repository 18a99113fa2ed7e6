import Foundation
import SwiftProcKit

/// `swiftproc scale worker=3` — `fly scale count` for a running `swiftproc start`.
enum ScaleCommand: Command {
    static let name = "scale"
    static let summary = "Change how many instances of each group run (like `fly scale count`)."
    static let usage = "[count] [GROUP=N | GROUP=+N | GROUP=-N | N | +N | -N]... [options]"
    static let discussion = """
    Starts missing instances at the next free indexes and ports, and stops surplus ones highest
    index first with the kill signal and timeout. A bare number (3, +1, -1) scales the default
    group, or the group named by --process-group, as `fly scale count` does. At most 100
    instances per group, the same limit `start -m` and `check` apply. Without arguments, prints
    the current counts. Examples:
      swiftproc scale worker=3
      swiftproc scale count app=2 worker=+1
      swiftproc scale count 3 --process-group worker
      swiftproc scale +1
    """
    static let options: [Option] = [
        CommonOptions.config, CommonOptions.procfile, CommonOptions.socket,
        .value("process-group", "g", "GROUP", "Bare counts (3, +1, -1) scale GROUP instead of the default group."),
    ]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        var words = arguments.positionals
        if let group = arguments.value("process-group") {
            // flyctl's `fly scale count 3 --process-group worker`: bare counts name the group.
            words = words.map { word in
                let digits = word.first == "+" || word.first == "-" ? word.dropFirst() : Substring(word)
                return !digits.isEmpty && digits.allSatisfy(\.isNumber) ? "\(group)=\(word)" : word
            }
        }
        let reply = try ControlClient.forApp(arguments).send(ControlRequest(command: .scale, arguments: words))
        guard reply.ok else { throw Failure("swiftproc scale: \(reply.error ?? "failed")") }
        if let message = reply.message { print(message) }
        return 0
    }
}

extension ControlClient {
    /// The client for the supervisor of the app that `-c`/`-f`/`--socket` (or the current directory) names.
    /// The default timeout is long: a scale-down or rolling restart drains and stops instances one
    /// `kill_timeout` (up to 300 s) at a time.
    static func forApp(_ arguments: ParsedArguments, timeout: TimeInterval = 3600) -> ControlClient {
        ControlClient(path: ControlSocket.path(appDirectory: CommonOptions.appDirectory(arguments),
                                               override: arguments.value("socket"),
                                               environment: ProcessInfo.processInfo.environment),
                      timeout: timeout)
    }
}
