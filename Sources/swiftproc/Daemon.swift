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
    static func detach(appDirectory: URL, socketPath: String) throws -> Int32 {
        let stateDir = appDirectory.appendingPathComponent(".swiftproc")
        try FileManager.default.createDirectory(at: stateDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let logURL = stateDir.appendingPathComponent("swiftproc.log")
        let fd = open(logURL.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure("swiftproc start: cannot open \(logURL.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let log = FileHandle(fileDescriptor: fd, closeOnDealloc: false)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executablePath())
        process.arguments = Array(CommandLine.arguments.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env["SWIFTPROC_DAEMON_CHILD"] = "1"
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try Platform.runWithCleanSignalMask(process)
        let pid = process.processIdentifier

        // Ready when the socket answers; failed if the child exits first.
        let client = ControlClient(path: socketPath, timeout: 2)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if (try? client.send(ControlRequest(command: .ping)))?.ok == true {
                let relative = logURL.path.hasPrefix(FileManager.default.currentDirectoryPath + "/")
                    ? String(logURL.path.dropFirst(FileManager.default.currentDirectoryPath.count + 1)) : logURL.path
                print("""
                swiftproc is running in the background (pid \(pid)).
                  follow its logs:  swiftproc logs
                  see what runs:    swiftproc status
                  stop it:          swiftproc stop
                  log file:         \(relative)
                """)
                return 0
            }
            if !process.isRunning || kill(pid, 0) != 0 {
                let tail = (try? String(contentsOf: logURL, encoding: .utf8))?.split(separator: "\n").suffix(5)
                    .joined(separator: "\n") ?? ""
                throw Failure("swiftproc start: the background supervisor exited during start-up:\n\(tail)")
            }
            usleep(50_000)
        }
        throw Failure("swiftproc start: the background supervisor (pid \(pid)) did not open its control socket within 30s; see \(logURL.path)")
    }

    /// This binary's own path, for starting it again.
    private static func executablePath() -> String {
        #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}
