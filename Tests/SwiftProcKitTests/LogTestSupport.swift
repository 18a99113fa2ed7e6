#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SwiftProcKit

/// Helpers for the log tests: real pipes, ptys, child processes, deadline waits.
enum LogTest {
    /// Foundation's spawn closes inherited fds itself, but a pipe created on one test thread while
    /// another spawns can still leak into that child (and delay EOF); serialize like the supervisor will.
    static let spawnLock = NSLock()

    /// Polls `condition` every few ms until it holds or `seconds` pass. Returns whether it held.
    static func wait(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            var none = pollfd()
            _ = poll(&none, 0, 5)
        }
        return condition()
    }

    /// A temp file opened for writing; returns (fd, path).
    static func tempOutput(_ name: String = "out") -> (Int32, String) {
        let path = NSTemporaryDirectory() + "swiftproc-logtest-\(name)-\(getpid())-\(UUID().uuidString).log"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "open \(path): \(errno)")
        return (fd, path)
    }

    static func readFile(_ path: String) -> [UInt8] {
        (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
    }

    static func pipePair() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0)
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }

    /// Runs `/bin/sh -c script` with stdout+stderr on a new pipe; returns the process and the read end.
    /// `stdinFd`, when given, becomes the child's stdin (and stays open in the parent).
    static func spawn(_ script: String, stdinFd: Int32? = nil) throws -> (Process, Int32) {
        spawnLock.lock()
        defer { spawnLock.unlock() }
        let (r, w) = pipePair()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        let out = FileHandle(fileDescriptor: w, closeOnDealloc: false)
        p.standardOutput = out
        p.standardError = out
        p.standardInput = stdinFd.map { FileHandle(fileDescriptor: $0, closeOnDealloc: false) } ?? FileHandle.nullDevice
        do { try p.run() } catch { close(r); close(w); throw error }
        close(w)
        return (p, r)
    }

    /// Runs `/bin/sh -c script` on a pty (raw, OPOST off); returns the process and the master.
    static func spawnPTY(_ script: String) throws -> (Process, Int32) {
        spawnLock.lock()
        defer { spawnLock.unlock() }
        var m: Int32 = -1, s: Int32 = -1
        precondition(openpty(&m, &s, nil, nil, nil) == 0, "openpty: \(errno)")
        _ = fcntl(m, F_SETFD, FD_CLOEXEC)
        _ = fcntl(s, F_SETFD, FD_CLOEXEC)
        var t = termios()
        tcgetattr(s, &t)
        t.c_oflag &= ~tcflag_t(OPOST)
        t.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        tcsetattr(s, TCSANOW, &t)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        let slave = FileHandle(fileDescriptor: s, closeOnDealloc: false)
        p.standardOutput = slave
        p.standardError = slave
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { close(m); close(s); throw error }
        close(s)
        return (p, m)
    }

    /// Splits output into lines (without `\n`); a trailing unterminated part is returned too.
    static func lines(_ bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var cur: [UInt8] = []
        for b in bytes {
            if b == 0x0A { out.append(cur); cur = [] } else { cur.append(b) }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    /// `(source, text)` of a plain (no colour) line with or without a timestamp; nil if malformed.
    static func parse(_ line: [UInt8], timestamps: Bool) -> (source: String, text: [UInt8])? {
        var i = 0
        if timestamps {
            guard line.count >= 9 else { return nil }
            for k in [0, 1, 3, 4, 6, 7] where !(48...57).contains(line[k]) { return nil }
            guard line[2] == 58, line[5] == 58, line[8] == 32 else { return nil }
            i = 9
        }
        guard let bar = findBar(line, from: i) else { return nil }
        var end = bar
        while end > i && line[end - 1] == 32 { end -= 1 }
        guard end > i else { return nil }
        return (String(decoding: line[i..<end], as: UTF8.self), Array(line[(bar + 3)...]))
    }

    private static func findBar(_ line: [UInt8], from: Int) -> Int? {
        var k = from
        while k + 2 < line.count {
            if line[k] == 32 && line[k + 1] == 124 && line[k + 2] == 32 { return k }
            k += 1
        }
        return nil
    }
}

/// Counts `onClose` calls; waits with a deadline.
final class CloseCounter: @unchecked Sendable {
    private let condition = NSCondition()
    private var closed: [String] = []

    func callback(_ name: String) -> @Sendable () -> Void {
        { [self] in
            condition.lock()
            closed.append(name)
            condition.broadcast()
            condition.unlock()
        }
    }

    var names: [String] {
        condition.lock(); defer { condition.unlock() }
        return closed
    }

    /// Waits until at least `n` closes happened or `seconds` pass.
    func wait(for n: Int, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        while closed.count < n {
            if !condition.wait(until: deadline) { return closed.count >= n }
        }
        return true
    }
}

/// A subscriber that records everything it receives.
final class CollectingSubscriber: LogSubscriber, @unchecked Sendable {
    private let lock = NSLock()
    private var _records: [LogRecord] = []

    func receive(_ record: LogRecord) {
        lock.lock()
        _records.append(record)
        lock.unlock()
    }

    var records: [LogRecord] {
        lock.lock(); defer { lock.unlock() }
        return _records
    }
}
