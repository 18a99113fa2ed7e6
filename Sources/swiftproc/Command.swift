import Foundation
import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `swiftproc` subcommand: its name, help and behaviour. One file per command in Commands/.
protocol Command {
    static var name: String { get }
    static var aliases: [String] { get }
    /// One line for the command list.
    static var summary: String { get }
    /// The usage line after `swiftproc NAME`, e.g. `[GROUP...] [options]`.
    static var usage: String { get }
    /// Paragraphs shown by `swiftproc help NAME` after the usage line.
    static var discussion: String { get }
    static var options: [Option] { get }
    /// Whether everything from the first non-option argument on belongs to a command to run
    /// (`swiftproc run rails console --sandbox`).
    static var takesACommand: Bool { get }
    /// Runs the command; returns the process exit status. Errors are printed once, by `main`.
    static func run(_ arguments: ParsedArguments) async throws -> Int32
}

extension Command {
    static var aliases: [String] { [] }
    static var discussion: String { "" }
    static var takesACommand: Bool { false }

    static var helpText: String {
        var text = "\(summary)\n\nUSAGE: swiftproc \(name) \(usage)\n"
        if !discussion.isEmpty { text += "\n" + discussion + "\n" }
        let all = options + [Option.flag("help", "h", "Show this help.")]
        text += "\nOPTIONS:\n"
        let labels = all.map { o -> String in
            var label = o.short.map { "-\($0), " } ?? "    "
            label += "--" + o.long
            if let v = o.value { label += " " + v }
            return label
        }
        let width = (labels.map(\.count).max() ?? 0) + 2
        for (label, o) in zip(labels, all) {
            text += "  " + label.padding(toLength: width, withPad: " ", startingAt: 0) + o.help + "\n"
        }
        if !aliases.isEmpty { text += "\nALIASES: \(aliases.joined(separator: ", "))\n" }
        return text
    }
}

/// Options every command that finds the app shares.
enum CommonOptions {
    static let config = Option.value("config", "c", "PATH", "fly.toml to read (default: ./fly.toml).")
    static let procfile = Option.value("procfile", "f", "PATH", "Procfile to read instead of fly.toml.")
    static let socket = Option.value("socket", nil, "PATH",
                                     "Control socket (default: $SWIFTPROC_SOCKET, else .swiftproc/swiftproc.sock in the app directory).")
    static let json = Option.flag("json", nil, "Print JSON for machines.")

    /// The app directory a client command talks to: where `-c`/`-f` point, else the current directory.
    static func appDirectory(_ args: ParsedArguments) -> String {
        let path = args.value("config") ?? args.value("procfile")
        guard let path else { return FileManager.default.currentDirectoryPath }
        let url = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        return url.deletingLastPathComponent().standardizedFileURL.path
    }
}

/// An error that is only a message for the user (already phrased), with an exit status.
struct Failure: Error, CustomStringConvertible {
    let description: String
    var status: Int32 = 1
    init(_ message: String, status: Int32 = 1) {
        self.description = message
        self.status = status
    }
}

/// Writes to standard error without buffering. A closed stderr (`2>&1 | true`) loses the
/// message but never kills swiftproc (FileHandle's `write` traps on EPIPE).
func printError(_ text: String) {
    Platform.writeAll(STDERR_FILENO, Array((text.hasSuffix("\n") ? text : text + "\n").utf8))
}
