import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `swiftproc attach`: a client's terminal connected to an instance's pseudo-terminal.
///
/// Output: the instance's raw bytes reach ``receive(_:)`` on the log reader thread (a
/// ``LogTap``), are queued here (bounded, so a stalled client never holds the log path), and
/// ``pump(to:)`` sends them from the connection's writer thread. Input: ``type(_:)`` writes the
/// client's keystrokes to the pty master; the interrupt and quit characters become signals to the
/// instance's process group, as a terminal would send them (our ptys are no one's controlling
/// terminal, so the kernel does not). The session owns its duplicate of the master.
public final class AttachSession: LogTap, @unchecked Sendable {
    public let instance: String
    let processGroup: pid_t
    private let terminal: Int32
    private let condition = NSCondition()
    private var queued: [UInt8] = []
    private var dropped = 0
    private var ended = false
    private var closedTerminal = false

    /// Output kept for a slow client before the oldest is dropped.
    static let queueLimit = 1 << 20

    public init(instance: String, processGroup: pid_t, terminal: Int32) {
        self.instance = instance
        self.processGroup = processGroup
        self.terminal = terminal
    }

    deinit { closeTerminal() }

    // MARK: Output

    public func receive(_ bytes: UnsafeRawBufferPointer) {
        condition.lock()
        defer { condition.unlock() }
        guard !ended else { return }
        queued.append(contentsOf: bytes)
        if queued.count > Self.queueLimit {
            let excess = queued.count - Self.queueLimit
            queued.removeFirst(excess)
            dropped += excess
        }
        condition.signal()
    }

    public func closed() { end() }

    /// Ends the session: the writer sends what is queued, then returns.
    public func end() {
        condition.lock()
        ended = true
        condition.broadcast()
        condition.unlock()
    }

    public var isEnded: Bool { condition.lock(); defer { condition.unlock() }; return ended }

    /// Sends output to `fd` until the session ends or the client is gone.
    func pump(to fd: Int32) {
        while true {
            condition.lock()
            while queued.isEmpty && !ended { condition.wait() }
            let chunk = queued
            let lost = dropped
            queued.removeAll(keepingCapacity: true)
            dropped = 0
            let finished = ended && chunk.isEmpty
            condition.unlock()
            if finished { return }
            if lost > 0, Sockets.sendAll(fd, Array("\r\n[swiftproc: \(lost) bytes of output dropped]\r\n".utf8)) != 0 { return }
            if Sockets.sendAll(fd, chunk) != 0 { return }
        }
    }

    // MARK: Input

    /// Writes keystrokes to the instance's terminal; the interrupt (Ctrl-C) and quit (Ctrl-\)
    /// characters signal its process group instead while it leaves ISIG on; the suspend
    /// character (Ctrl-Z) is dropped — nobody could resume it.
    public func type(_ bytes: [UInt8]) {
        var plain: [UInt8] = []
        for byte in bytes {
            if let signal = Platform.terminalSignal(for: byte, terminal: terminal) {
                write(plain)
                plain.removeAll()
                if signal != SIGTSTP { Platform.signalGroup(processGroup, signal) }
            } else {
                plain.append(byte)
            }
        }
        write(plain)
    }

    private func write(_ bytes: [UInt8]) {
        var offset = 0
        condition.lock()
        let fd = closedTerminal ? -1 : terminal
        condition.unlock()
        guard fd >= 0 else { return }
        // A program that never reads its input fills the pty's buffer: after a second without
        // progress the rest is dropped, so the session can still hear the client (detach).
        var stalled = 0
        while offset < bytes.count && stalled < 10 {
            let n = bytes[offset...].withUnsafeBytes { Glibc_write(fd, $0.baseAddress, $0.count) }
            if n > 0 { offset += n; stalled = 0; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN {
                if !Sockets.waitWritable(fd, timeoutMilliseconds: 100) { stalled += 1 }
                continue
            }
            return
        }
    }

    /// The client's window changed: the pty follows, and the program hears SIGWINCH.
    public func resize(rows: UInt16, columns: UInt16) {
        guard rows > 0, columns > 0 else { return }
        Platform.setWindowSize(terminal, rows: rows, columns: columns)
        Platform.signalGroup(processGroup, SIGWINCH)
    }

    func closeTerminal() {
        condition.lock()
        defer { condition.unlock() }
        guard !closedTerminal else { return }
        closedTerminal = true
        close(terminal)
    }
}

private func Glibc_write(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
