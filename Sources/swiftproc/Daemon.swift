import Foundation
import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `start -d`: run the same command again in the background, with its output in
/// `.swiftproc/swiftproc.log`, and return once its control socket answers.
enum Daemon {
    /// Set in the background child's environment (and removed from its children's).
    static let childMarker = "SWIFTPROC_DAEMON_CHILD"

    static func detach(appDirectory: URL, socketPath: String) throws -> Int32 {
        // `.swiftproc` must be ours before anything is written to it.
        let state: StateDirectory
        do {
            state = try StateDirectory.prepare(appDirectory: appDirectory.path)
        } catch {
            throw Failure("swiftproc start: \(error)")
        }
        // Another supervisor here? Say so now rather than after a child failed.
        if let owner = state.runningOwner() {
            throw Failure("swiftproc start: swiftproc is already running in this directory (pid \(owner)); use `swiftproc stop` first")
        }
        if let other = try? ControlClient(path: socketPath, timeout: 5).send(ControlRequest(command: .status)).status {
            throw Failure("swiftproc start: swiftproc is already running in this directory (pid \(other.pid)); use `swiftproc stop` first")
        }
        let logURL = URL(fileURLWithPath: state.file("swiftproc.log"))
        let fd: Int32
        do {
            fd = try state.open("swiftproc.log", flags: O_WRONLY | O_CREAT | O_APPEND)
        } catch {
            throw Failure("swiftproc start: \(error)")
        }
        defer { close(fd) }
        let log = FileHandle(fileDescriptor: fd, closeOnDealloc: false)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executablePath())
        process.arguments = Array(CommandLine.arguments.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env[childMarker] = "1"
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try Platform.runWithCleanSignalMask(process)
        let pid = process.processIdentifier

        // Ready when *this* child answers and has started its formation (after any release
        // command); if it exits first, its status is ours.
        let client = ControlClient(path: socketPath, timeout: 2)
        let deadline = Date().addingTimeInterval(600)
        while Date() < deadline {
            // Nothing else holds this child's termination socket, so Foundation may reap it first.
            let ended: Platform.Exit? = Platform.peekExit(pid) ?? (process.isRunning ? nil
                : process.terminationReason == .uncaughtSignal ? .signaled(process.terminationStatus)
                : .exited(process.terminationStatus))
            if let exit = ended {
                let tail = (try? String(contentsOf: logURL, encoding: .utf8))?.split(separator: "\n").suffix(5)
                    .joined(separator: "\n") ?? ""
                printError("swiftproc start: the background supervisor \(exit.description) during start-up; the end of \(relative(logURL)):\n\(tail)")
                switch exit {
                case .exited(let code): return code == 0 ? 1 : code
                case .signaled(let sig): return 128 + sig
                }
            }
            if let status = (try? client.send(ControlRequest(command: .status)))?.status,
               status.pid == pid, status.phase == "running" {
                print("""
                swiftproc is running in the background (pid \(pid)).
                  follow its logs:  swiftproc logs
                  see what runs:    swiftproc status
                  stop it:          swiftproc stop
                  log file:         \(relative(logURL))
                """)
                return 0
            }
            usleep(50_000)
        }
        throw Failure("swiftproc start: the background supervisor (pid \(pid)) did not start within 10 minutes; see \(logURL.path)")
    }

    private static func relative(_ url: URL) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return url.path.hasPrefix(cwd) ? String(url.path.dropFirst(cwd.count)) : url.path
    }

    /// This binary's own path, for starting it again.
    private static func executablePath() -> String {
        #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}
