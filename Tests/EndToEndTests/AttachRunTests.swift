import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reaching processes: `attach` through a real terminal (a pty this test opens, as a terminal
/// emulator would), `run` and `console`.
@Suite(.serialized) struct AttachRunTests {
    /// A terminal: `swiftproc ARGS` runs with the slave side as stdin/stdout/stderr; the test
    /// types into the master and reads the screen from it.
    final class TerminalSession: @unchecked Sendable {
        let master: Int32
        let process: Process
        private let lock = NSLock()
        private var screen: [UInt8] = []
        private var masterClosed = false

        init(_ arguments: [String], in directory: URL) throws {
            var m: Int32 = -1, s: Int32 = -1
            var size = winsize(ws_row: 30, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0)
            guard openpty(&m, &s, nil, nil, &size) == 0 else { throw POSIXError(.EIO) }
            master = m
            process = Process()
            process.executableURL = URL(fileURLWithPath: builtBinary("swiftproc"))
            process.arguments = arguments
            process.currentDirectoryURL = directory
            let slave = FileHandle(fileDescriptor: s, closeOnDealloc: true)
            process.standardInput = slave
            process.standardOutput = slave
            process.standardError = slave
            try process.run()
            // The reader owns the master: it closes it when told to (a close from another thread
            // would not end a read blocked on it, and the terminal would never hang up).
            Thread { [self] in
                var buffer = [UInt8](repeating: 0, count: 4096)
                var entry = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
                while !lock.withLock({ masterClosed }) {
                    guard poll(&entry, 1, 50) > 0 else { continue }
                    let n = read(master, &buffer, buffer.count)
                    if n <= 0 { break }
                    lock.withLock { screen += buffer[0..<n] }
                }
                lock.withLock { _ = Glibc.close(master) }
            }.start()
        }

        var text: String { lock.withLock { String(decoding: screen, as: UTF8.self) } }

        func type(_ text: String) { type(Array(text.utf8)) }
        func type(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) } }

        func waitFor(_ needle: String, timeout: Double = 10) async -> Bool {
            await eventually(timeout: timeout) { self.text.contains(needle) }
        }

        /// The terminal window closes.
        func close() {
            lock.withLock { masterClosed = true }
        }

        func waitForExit(timeout: Double = 10) async -> Int32? {
            guard await eventually(timeout: timeout, { !self.process.isRunning }) else { return nil }
            return process.terminationStatus
        }
    }

    static let fly = """
        app = "reach"
        kill_timeout = 2
        kill_signal = "SIGTERM"
        console_command = "sh -c 'echo console as $FLY_PROCESS_GROUP $PS in $PWD; exit 7'"
        [env]
          FROM_ENV = "env-value"
        [processes]
          app = "echo ready; trap 'echo caught INT' INT; while :; do read line && echo \\"got: $line\\" && if [ \\"$line\\" = size ]; then stty size; fi; done"
          piped = "exec sleep 1000"
        """

    func pid(_ name: String, in app: URL) async throws -> Int32? { try await instancePIDs(app)[name] }

    @Test func attachTypesIntoAnInstanceAndClosingTheTerminalLeavesItRunning() async throws {
        let app = try makeApp(["fly.toml": Self.fly, ".env": "FROM_DOTENV=dotenv-value\n"])
        let sp = try SwiftProc(["start", "--no-color", "--pipes", "piped"], in: app)
        #expect(await sp.waitFor("app.1   | ready"), "\(sp.stdout.text)")
        let before = try await pid("app.1", in: app)

        let terminal = try TerminalSession(["attach", "app.1"], in: app)
        #expect(await terminal.waitFor("attached to app.1 — Ctrl-] detaches"), "\(terminal.text)")
        #expect(await sp.waitFor("app.1: a terminal attached"))
        terminal.type("hello there\r")
        // The answer shows in the attached terminal and in the merged log.
        #expect(await terminal.waitFor("got: hello there"), "\(terminal.text)")
        #expect(await sp.waitFor("app.1   | got: hello there"), "\(sp.stdout.text)")
        // The window size is the attached terminal's (30×100 here).
        terminal.type("size\r")
        #expect(await terminal.waitFor("30 100"), "\(terminal.text)")
        // Ctrl-C reaches the process as in a terminal.
        terminal.type([0x03])
        #expect(await sp.waitFor("caught INT"), "\(sp.stdout.text)")

        // A second terminal is refused while the first is attached.
        let second = try await runSwiftProc(["attach", "app.1"], in: app)
        #expect(second.status != 0)
        // Pipes cannot be attached.
        let piped = try TerminalSession(["attach", "piped.1"], in: app)
        #expect(await piped.waitFor("attach needs its pseudo-terminal"), "\(piped.text)")
        #expect(await piped.waitForExit() == 1)
        piped.close()

        // Closing the terminal detaches; the instance runs on, same process.
        terminal.close()
        #expect(await terminal.waitForExit() != nil)
        #expect(await sp.waitFor("app.1: the terminal detached"), "\(sp.stdout.text)")
        #expect(try await pid("app.1", in: app) == before)
        #expect(kill(before ?? 0, 0) == 0)

        // Attach again and detach with Ctrl-]: still running, still the same process.
        let again = try TerminalSession(["attach", "app.1"], in: app)
        #expect(await again.waitFor("attached to app.1"))
        again.type("second\r")
        #expect(await again.waitFor("got: second"))
        again.type([0x1d])
        #expect(await again.waitFor("detached from app.1"), "\(again.text)")
        #expect(await again.waitForExit() == 0)
        again.close()
        #expect(try await pid("app.1", in: app) == before)
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0, "\(sp.stdout.text)")
    }

    @Test func runPassesTheEnvironmentAndTheExitStatus() async throws {
        let app = try makeApp(["fly.toml": Self.fly, ".env": "FROM_DOTENV=dotenv-value\n"])
        let r = try await runSwiftProc(["run", "sh", "-c", "echo $FROM_ENV $FROM_DOTENV $PS port=$PORT $FLY_PROCESS_GROUP; exit 5"], in: app)
        #expect(r.status == 5)
        #expect(r.out == "env-value dotenv-value app.run port= app\n", "\(r.out)\(r.err)")
        let worker = try await runSwiftProc(["run", "-g", "piped", "-p", "7001", "echo $PS $PORT && exit 0"], in: app)
        #expect(worker.status == 0 && worker.out == "piped.run 7001\n", "\(worker.out)\(worker.err)")
        // Options after the command are the command's.
        let passthrough = try await runSwiftProc(["run", "sh", "-c", "echo \"$@\"", "x", "--help", "-g"], in: app)
        #expect(passthrough.out == "--help -g\n", "\(passthrough.out)\(passthrough.err)")
        let dashes = try await runSwiftProc(["run", "-g", "app", "--", "sh", "-c", "echo $PS"], in: app)
        #expect(dashes.out == "app.run\n", "\(dashes.out)\(dashes.err)")
        // In a terminal, it gets the terminal: a prompt reads what is typed.
        let terminal = try TerminalSession(["run", "sh", "-c", "printf 'name? '; read n; echo \"hi $n\"; exit 3"], in: app)
        #expect(await terminal.waitFor("name? "))
        terminal.type("swift\r")
        #expect(await terminal.waitFor("hi swift"), "\(terminal.text)")
        #expect(await terminal.waitForExit() == 3)
        terminal.close()
    }

    /// With a controlling terminal (Python's pty.fork makes one), Ctrl-C typed there reaches the
    /// command `run` started — it has the terminal's foreground — and its status comes back.
    @Test func runHandsTheTerminalToTheCommand() async throws {
        let app = try makeApp(["fly.toml": Self.fly])
        let script = """
        import pty, os, time, select, sys
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(sys.argv[1], ["swiftproc", "run", "sh", "-c", "trap 'echo got INT; exit 9' INT; echo waiting; while :; do sleep 0.1; done"])
        out = b""
        def read_until(needle, limit):
            global out
            end = time.time() + limit
            while needle not in out and time.time() < end:
                if select.select([fd], [], [], 0.1)[0]:
                    try: out += os.read(fd, 1024)
                    except OSError: return
        read_until(b"waiting", 20)
        os.write(fd, b"\\x03")
        read_until(b"got INT", 20)
        _, status = os.waitpid(pid, 0)
        print(out.decode(errors="replace").replace("\\r", ""), "exit:", os.WEXITSTATUS(status))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, builtBinary("swiftproc")]
        process.currentDirectoryURL = app
        let (out, err) = try runCapturingOutput(process)
        #expect(await eventually(timeout: 60) { !process.isRunning })
        #expect(out.text.contains("got INT"), "\(out.text)\(err.text)")
        #expect(out.text.contains("exit: 9"), "\(out.text)")
    }

    @Test func consoleRunsTheConsoleCommand() async throws {
        let app = try makeApp(["fly.toml": Self.fly])
        let r = try await runSwiftProc(["console"], in: app)
        #expect(r.status == 7)
        #expect(r.out.hasPrefix("console as fly_app_console console in "), "\(r.out)\(r.err)")
        let none = try makeApp(["fly.toml": "[processes]\n  app = 'x'\n"])
        let missing = try await runSwiftProc(["console"], in: none)
        #expect(missing.status == 1 && missing.err.contains("has no console_command") && missing.err.contains("swiftproc run"))
    }
}
