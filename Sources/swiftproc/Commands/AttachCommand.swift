import Foundation
import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftproc attach GROUP.N` — overmind's `connect`: your terminal on a running instance's
/// pseudo-terminal, for a debugger prompt (byebug, binding.irb, pry) or a REPL.
enum AttachCommand: Command {
    static let name = "attach"
    static let aliases = ["connect"]
    static let summary = "Connect your terminal to a running instance (debuggers, prompts); Ctrl-] detaches."
    static let usage = "GROUP.N | MACHINE_ID [options]"
    static let discussion = """
    Shows the instance's output as it is, without prefixes, and sends your keystrokes to its
    input: a `binding.irb`, `byebug` or `pry` breakpoint hit in a request waits at its prompt
    (shown in the merged log too) until you attach and answer. Ctrl-C and Ctrl-\\ reach the
    process as in a terminal; the window size follows yours. Ctrl-] detaches; so does closing
    the terminal. Either way the instance keeps running.

    Only instances on a pseudo-terminal can be attached (not with --no-tty or --pipes), one
    terminal at a time: a second attach is refused until the first detaches. The merged log says
    when a terminal attaches and detaches.
    """
    static let options: [Option] = [CommonOptions.config, CommonOptions.procfile, CommonOptions.socket]

    /// Ctrl-]: telnet's escape, which programs rarely need.
    static let detachKey: UInt8 = 0x1d

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        guard arguments.positionals.count == 1, let target = arguments.positionals.first else {
            throw UsageError(message: "name one instance, like app.1", command: name)
        }
        guard isatty(STDIN_FILENO) == 1 else {
            throw Failure("swiftproc attach: needs a terminal (stdin is not one); to run a command with the app's "
                          + "environment use `swiftproc run`")
        }
        let size = Terminal.windowSize(STDOUT_FILENO) ?? Terminal.windowSize(STDIN_FILENO) ?? (0, 0)
        let connection = try open(ControlClient.forApp(arguments), target, size)
        let fd = connection.fd
        defer { close(fd) }
        printError("attached to \(target) — Ctrl-] detaches")

        // SIGWINCH → a byte on a pipe the loop polls.
        var winch: [Int32] = [-1, -1]
        guard pipe(&winch) == 0 else { throw Failure("swiftproc attach: cannot create a pipe") }
        defer { close(winch[0]); close(winch[1]) }
        let winchWrite = winch[1]
        let resize = SignalSource(SIGWINCH) { var b: UInt8 = 1; _ = write(winchWrite, &b, 1) }
        defer { withExtendedLifetime(resize) {} }

        let saved = Terminal.enterRawMode(STDIN_FILENO)
        defer { if let saved { Terminal.restore(STDIN_FILENO, saved) } }
        Platform.writeAll(STDOUT_FILENO, connection.initial)

        var ended = "detached from \(target)"
        var fds = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: winch[0], events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        loop: while true {
            guard poll(&fds, 3, -1) >= 0 || errno == EINTR else { break }
            if fds[1].revents != 0 {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 {
                    ended = "\(target) ended (its process exited, or swiftproc stopped); detached"
                    break
                }
                Platform.writeAll(STDOUT_FILENO, Array(buffer[0..<n]))
            }
            if fds[0].revents != 0 {
                let n = read(STDIN_FILENO, &buffer, buffer.count)
                if n <= 0 { break } // the terminal closed: detach
                let typed = Array(buffer[0..<n])
                if let escape = typed.firstIndex(of: detachKey) {
                    if escape > 0 { Platform.writeAll(fd, AttachFrame.encode(AttachFrame.input, Array(typed[..<escape]))) }
                    Platform.writeAll(fd, AttachFrame.encode(AttachFrame.detach, []))
                    break loop
                }
                Platform.writeAll(fd, AttachFrame.encode(AttachFrame.input, typed))
            }
            if fds[2].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 64)
                _ = read(winch[0], &sink, sink.count)
                if let size = Terminal.windowSize(STDOUT_FILENO) {
                    Platform.writeAll(fd, AttachFrame.resize(rows: size.rows, columns: size.columns))
                }
            }
        }
        if let saved { Terminal.restore(STDIN_FILENO, saved) }
        printError("\r\n\(ended)")
        return 0
    }

    /// Connects, turning the server's refusal into a message for the user.
    private static func open(_ client: ControlClient, _ target: String,
                             _ size: (rows: UInt16, columns: UInt16)) throws -> (fd: Int32, initial: [UInt8]) {
        do {
            return try client.openAttach(target, rows: size.rows, columns: size.columns)
        } catch {
            if case .failed(let message) = error { throw Failure("swiftproc attach: \(message)") }
            throw error
        }
    }

}
