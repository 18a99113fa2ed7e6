import Foundation
import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftproc logs` — `fly logs` for a running `swiftproc start`.
enum LogsCommand: Command {
    static let name = "logs"
    static let summary = "Print recent lines of the running app, then follow new ones."
    static let usage = "[GROUP | GROUP.N]... [options]"
    static let discussion = """
    Prints the last lines the supervisor kept (all groups, or the ones named), then follows live
    output until Ctrl-C. A reader too slow to keep up is skipped ahead, with a
    `[swiftproc: N lines dropped]` marker, so it never slows the app down.
    """
    static let options: [Option] = [
        CommonOptions.config, CommonOptions.procfile, CommonOptions.socket,
        .value("lines", "n", "N", "How many recent lines to print first (default: 100)."),
        .flag("no-follow", nil, "Print the recent lines and exit."),
        .flag("no-color", nil, "Do not colour the output."),
        .flag("no-timestamps", nil, "Do not print the time on each line."),
    ]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        var lines = 100
        if let text = arguments.value("lines") {
            guard let n = Int(text), n >= 0 else {
                throw UsageError(message: "--lines needs a number, not \"\(text)\"", command: name)
            }
            lines = n
        }
        var style = LogStyle.automatic(for: STDOUT_FILENO)
        if arguments.has("no-color") { style.color = false }
        if arguments.has("no-timestamps") { style.timestamps = false }
        let writer = LogWriter(fd: STDOUT_FILENO)
        let printer = LogPrinter(style: style, writer: writer)
        let follow = !arguments.has("no-follow")
        let request = ControlRequest(command: .logs, arguments: arguments.positionals, lines: lines, follow: follow)
        let client = ControlClient.forApp(arguments, timeout: 10)
        if follow {
            let stop = SignalSource(SIGINT) { client.cancel() }
            defer { withExtendedLifetime(stop) {} }
            try client.followLogs(request, onBacklog: printer.registerNames) { line in
                printer.print(line)
                return !writer.isBroken
            }
        } else {
            let reply = try client.send(request)
            guard reply.ok else { throw Failure("swiftproc logs: \(reply.error ?? "failed")") }
            printer.registerNames(reply.lines ?? [])
            for line in reply.lines ?? [] { printer.print(line) }
        }
        writer.flush()
        return 0
    }
}

/// Formats lines received over the socket exactly as `start` prints them.
final class LogPrinter: @unchecked Sendable {
    private var formatter: LogFormatter
    private let writer: LogWriter

    init(style: LogStyle, writer: LogWriter) {
        self.formatter = LogFormatter(style: style)
        self.writer = writer
    }

    /// Sizes the name column for every name in `lines` before the first is printed, so the
    /// first line is aligned with the last (the column used to widen as wider names appeared).
    func registerNames(_ lines: [ControlLogLine]) {
        for name in Set(lines.map(\.source)) { _ = formatter.register(name: name) }
    }

    func print(_ line: ControlLogLine) {
        let record: LogRecord
        if let dropped = line.dropped {
            record = LogRecord(time: line.time, source: "system", group: "system", colorIndex: -1,
                               text: Array("[swiftproc: \(dropped) lines dropped]".utf8))
        } else {
            record = LogRecord(time: line.time, source: line.source, group: line.group, colorIndex: line.colorIndex,
                               text: Array(line.text.utf8))
        }
        _ = formatter.register(name: record.source)
        writer.write(formatter.format(record))
    }
}
