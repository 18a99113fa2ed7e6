import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The measured behaviours of Foundation.Process on Linux (../shared/docs/foundation-process.md)
/// that the spawner's design rests on. If a toolchain upgrade changes one, a test here fails and
/// says which assumption to revisit.
@Suite struct FoundationProcessFactsTests {
    private func statusField(_ pid: pid_t, _ name: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix(name + ":") }
            .map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    private func sleeper(_ seconds: Int = 30) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = [String(seconds)]
        p.standardInput = FileHandle.nullDevice
        return p
    }

    @Test func everyChildLeadsItsOwnProcessGroup() throws {
        let p = sleeper()
        try Platform.runWithCleanSignalMask(p)
        defer { kill(p.processIdentifier, SIGKILL) }
        #expect(getpgid(p.processIdentifier) == p.processIdentifier)
    }

    @Test func childrenInheritTheSpawningThreadsSignalMask() async throws {
        // A Task runs on a libdispatch worker, whose mask blocks most signals.
        let blocked = try await Task.detached { () -> (String?, String?) in
            let plain = sleeper()
            try plain.run()
            let clean = sleeper()
            try Platform.runWithCleanSignalMask(clean)
            defer { kill(plain.processIdentifier, SIGKILL); kill(clean.processIdentifier, SIGKILL) }
            return (statusField(plain.processIdentifier, "SigBlk"), statusField(clean.processIdentifier, "SigBlk"))
        }.value
        #expect(blocked.0 != "0000000000000000", "run() from a Task no longer passes a blocked mask on; the clean-mask wrapper may be unnecessary")
        #expect(blocked.1 == "0000000000000000")
    }

    @Test func terminationWaitsForDescendantsHoldingInheritedFds() async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "sleep 30 & exit 5"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        let fired = Locked(false)
        p.terminationHandler = { _ in fired.set(true) }
        try Platform.runWithCleanSignalMask(p)
        let pid = p.processIdentifier
        // The shell exits at once (seen without reaping it) ...
        #expect(await eventually { Platform.peekExit(pid) == .exited(5) })
        // ... but Foundation reports nothing while the background sleep holds its socket.
        #expect(p.isRunning)
        #expect(!fired.get())
        Platform.signalGroup(pid, SIGKILL)
        #expect(await eventually { fired.get() })
        #expect(p.terminationStatus == 5, "Foundation still reaps the real status after a peek")
    }

    @Test func foundationClosesInheritedDescriptorsInTheChild() throws {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)  // deliberately not close-on-exec
        defer { close(fds[0]); close(fds[1]) }
        let out = Pipe()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "[ -e /proc/self/fd/\(fds[0]) ] || [ -e /proc/self/fd/\(fds[1]) ] && echo leaked || echo clean"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        try Platform.runWithCleanSignalMask(p)
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(text == "clean\n")
    }

    @Test func rawPTYKeepsNewlinesAndReportsEOFAsEIO() throws {
        let pty = try #require(Platform.openRawPTY())
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "[ -t 1 ] && printf 'tty\\na\\n' || printf 'pipe\\n'"]
        p.standardInput = FileHandle.nullDevice
        let slave = FileHandle(fileDescriptor: pty.slave, closeOnDealloc: false)
        p.standardOutput = slave
        p.standardError = slave
        try Platform.runWithCleanSignalMask(p)
        close(pty.slave)
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        var lastErrno: Int32 = 0
        while true {
            let n = read(pty.master, &buf, buf.count)
            if n > 0 { bytes += buf[0..<n]; continue }
            lastErrno = n < 0 ? errno : 0
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(pty.master)
        p.waitUntilExit()
        #expect(String(decoding: bytes, as: UTF8.self) == "tty\na\n")
        #expect(lastErrno == EIO)
    }

    /// SIG_IGN is inherited across exec, a handler is not. `SignalSource` and the daemon's SIGHUP
    /// therefore catch signals with `Platform.catchWithoutAction`, never SIG_IGN: a child spawned
    /// before libdispatch installs its own handler would otherwise ignore Ctrl-C for life.
    @Test func ignoredSignalsAreInheritedButCaughtOnesAreNot() throws {
        func childIgnores(_ number: Int32) throws -> Bool {
            let p = sleeper()
            try Platform.runWithCleanSignalMask(p)
            defer { kill(p.processIdentifier, SIGKILL) }
            let ignored = UInt64(statusField(p.processIdentifier, "SigIgn") ?? "", radix: 16) ?? 0
            return ignored & (1 << UInt64(number - 1)) != 0
        }
        signal(SIGUSR2, SIG_IGN)
        #expect(Platform.isIgnored(SIGUSR2))
        #expect(try childIgnores(SIGUSR2))
        Platform.catchWithoutAction(SIGUSR2)
        #expect(!Platform.isIgnored(SIGUSR2))
        #expect(try !childIgnores(SIGUSR2))
        let source = SignalSource(SIGUSR2) {}
        #expect(!Platform.isIgnored(SIGUSR2))
        withExtendedLifetime(source) {}
    }
}
