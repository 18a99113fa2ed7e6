#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A thread-safe sink on a file descriptor (stdout, or the log file in daemon mode).
///
/// - `write` hands a whole batch to the kernel with one `write(2)`
///   when it can (partial writes are continued, `EINTR` retried, `EAGAIN` on a non-blocking fd waits
///   for `POLLOUT`). Batches from different threads never interleave: a batch is written completely
///   under the writer's lock before the next one starts.
/// - `append` + `flush()` buffer first, for callers that batch.
/// - If the output blocks (a paused terminal, a full pipe), writers block — and so does the log
///   reader, which slows the children: the same back-pressure a child writing to that stdout would see.
/// - `EPIPE` (nobody reads our stdout any more) and `EBADF` mark the writer broken: from then on output
///   is dropped and counted instead of written. The process must not die of SIGPIPE; main installs a
///   no-op handler (see the process notes). Other errors (`ENOSPC`, `EIO`) drop that batch only.
public final class LogWriter: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`.
    public let fd: Int32
    private let lock = NSLock()
    private let buffer = ByteBuffer(capacity: 64 * 1024)
    private var broken = false
    private var dropped = 0
    private var written = 0

    public init(fd: Int32) {
        self.fd = fd
    }

    /// Buffers bytes; nothing reaches the fd until ``flush()`` or the next ``write(_:)``.
    public func append(_ bytes: UnsafeRawBufferPointer) {
        lock.lock()
        buffer.append(bytes)
        lock.unlock()
    }

    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Writes everything buffered.
    public func flush() {
        lock.lock()
        defer { lock.unlock() }
        writeBuffered()
    }

    /// Writes buffered bytes and then `bytes`: one `write(2)` when nothing was buffered.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        lock.lock()
        defer { lock.unlock() }
        if !buffer.isEmpty {
            buffer.append(bytes)
            writeBuffered()
        } else {
            writeAll(bytes)
        }
    }

    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// True after `EPIPE`/`EBADF`: output is being dropped.
    public var isBroken: Bool {
        lock.lock(); defer { lock.unlock() }
        return broken
    }

    /// Bytes dropped because of write errors.
    public var droppedBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return dropped
    }

    /// Bytes successfully written.
    public var writtenBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return written
    }

    // MARK: - Under the lock

    private func writeBuffered() {
        guard !buffer.isEmpty else { return }
        writeAll(buffer.bytes)
        buffer.removeAll(keepingAtMost: 1 << 20)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var n = bytes.count
        if broken { dropped += n; return }
        while n > 0 {
            #if canImport(Glibc)
            let r = Glibc.write(fd, p, n)
            #else
            let r = Darwin.write(fd, p, n)
            #endif
            if r > 0 {
                p += r
                n -= r
                written += r
                continue
            }
            let error = r < 0 ? errno : EIO
            switch error {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                waitWritable()
            case EPIPE, EBADF:
                broken = true
                dropped += n
                return
            default:
                dropped += n
                return
            }
        }
    }

    private func waitWritable() {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while poll(&p, 1, -1) < 0 && errno == EINTR {}
    }
}
