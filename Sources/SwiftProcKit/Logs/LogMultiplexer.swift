#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Merges the output of every child into one stream of prefixed lines (`12:00:01 app.2  | hello`),
/// keeps the recent lines for `swiftproc logs`, and prints the supervisor's own lines alongside.
///
/// One dedicated reader `Thread` waits on all attached fds plus a self-pipe (woken on attach,
/// register, flush, shutdown) with ``Platform/ReadinessPoller`` — edge-triggered epoll on Linux,
/// because `poll(2)` on a pty master waits inside the kernel for the pty's pending input work,
/// one busy pty after another. Per round it reads each fd that signalled until a short read,
/// splits lines (``LineSplitter``), formats them (``LogFormatter``, prefix cached per fd, clock
/// cached per second) into one batch, writes the batch with one `write(2)` (``LogWriter``) and
/// stores it in ``recent`` with one lock. It never waits on the supervisor.
///
/// Guarantees: every byte a child writes appears exactly once (apart from line terminators, see
/// ``LineSplitter``); per-fd order is kept; lines of different children never interleave mid-line;
/// a final line without `\n` is printed at EOF; an unterminated line (a prompt, a progress bar) is
/// printed after ``quietPeriod`` of silence; lines over 64 KiB are printed in 64 KiB pieces.
///
/// Thread-safe (`@unchecked Sendable`: shared state lives in an `NSCondition`-guarded inbox, the
/// reader's own state is confined to its thread).
public final class LogMultiplexer: @unchecked Sendable {
    /// Default silence after which an unterminated line is printed. goreman uses 2 ms; 25 ms keeps
    /// a line written in a few `write`s (e.g. by a shell `printf` loop) whole while still showing a
    /// prompt without a perceptible delay.
    public static let defaultQuietPeriod = 0.025

    public let recent: RecentLines
    public let writer: LogWriter
    public let style: LogStyle
    public let quietPeriod: Double

    private let inbox: LogInbox
    private let thread: Thread

    /// - Parameters:
    ///   - output: where merged lines go (stdout, or a log file). Not closed by the multiplexer.
    ///   - ringCapacity / ringByteCapacity: bounds of ``recent``.
    ///   - quietPeriod: seconds of silence before an unterminated line is printed (`.infinity`: only at EOF).
    public init(output: Int32, style: LogStyle, ringCapacity: Int = RecentLines.defaultCapacity,
                ringByteCapacity: Int = RecentLines.defaultByteCapacity,
                quietPeriod: Double = LogMultiplexer.defaultQuietPeriod) {
        self.style = style
        self.quietPeriod = quietPeriod
        recent = RecentLines(capacity: ringCapacity, byteCapacity: ringByteCapacity)
        writer = LogWriter(fd: output)
        inbox = LogInbox(formatter: LogFormatter(style: style, names: ["system"]))
        let loop = LogReaderLoop(inbox: inbox, writer: writer, ring: recent, quietPeriod: quietPeriod)
        thread = Thread { loop.run() }
        thread.name = "swiftproc.logs"
        thread.start()
    }

    deinit { shutdown() }

    /// Hands over a child's output fd (pipe read end or pty master; stdout and stderr may share it).
    /// The multiplexer owns it from now on: it reads to EOF (0, or `EIO` on a pty) or error, prints
    /// the last partial line, `close`s the fd and then calls `onClose` — on the reader thread, after
    /// every byte of that fd has been written out, so `onClose` must be quick (hop to your own queue).
    /// It may call back into the multiplexer (`system`, `attach`, `flush`, `shutdown` do not deadlock).
    /// `isPTY` is informational: pipes and pty masters are read alike (0 and `EIO` both mean EOF;
    /// a pty's `\r\n` is folded by the splitter).
    /// After ``shutdown()`` the fd is closed at once and `onClose` runs on the caller's thread.
    public func attach(fd: Int32, source: String, group: String, colorIndex: Int, isPTY: Bool = false,
                       onClose: @escaping @Sendable () -> Void = {}) {
        let a = LogAttachment(fd: fd, source: source, group: group, colorIndex: colorIndex, isPTY: isPTY, onClose: onClose)
        inbox.condition.lock()
        if inbox.shutdownRequested {
            inbox.condition.unlock()
            close(fd)
            onClose()
            return
        }
        if inbox.formatter.register(name: source) { inbox.widthGeneration += 1 }
        inbox.attachments.append(a)
        inbox.condition.unlock()
        inbox.wake()
    }

    /// Sends `source`'s raw output to `tap` as well (nil removes it). Only one tap per source.
    public func setTap(source: String, _ tap: (any LogTap)?) {
        inbox.condition.lock()
        inbox.taps[source] = tap
        inbox.tapGeneration += 1
        inbox.condition.unlock()
        inbox.wake()
    }

    /// Widens the name column ahead of time (e.g. every name of the formation at start), so the
    /// column does not jump as instances come up. Lines read from now on use the new width.
    public func register(name: String) {
        inbox.condition.lock()
        let grew = inbox.formatter.register(name: name)
        if grew { inbox.widthGeneration += 1 }
        inbox.condition.unlock()
        if grew { inbox.wake() }
    }

    /// The current width of the name column.
    public var nameWidth: Int {
        inbox.condition.lock(); defer { inbox.condition.unlock() }
        return inbox.formatter.nameWidth
    }

    /// A supervisor line (`app.2 started (pid 4242, port 5001)`), source and group `system`, uncoloured.
    public func system(_ message: String) {
        log(source: "system", group: "system", colorIndex: -1, message)
    }

    /// A line on behalf of `source` (e.g. `release` command output). Written synchronously by the
    /// calling thread through the same writer (one `write(2)`), then stored in ``recent``.
    /// A message with newlines becomes several lines.
    public func log(source: String, group: String, colorIndex: Int, _ message: String) {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let now = Double(time.tv_sec) + Double(time.tv_nsec) / 1e9

        var lines: [[UInt8]] = []
        var splitter = LineSplitter()
        let emit: (UnsafeRawBufferPointer) -> Void = { lines.append(Array($0)) }
        splitter.feed(Array(message.utf8), emit)
        splitter.flushPartial(emit)
        if lines.isEmpty { lines = [[]] }

        var out: [UInt8] = []
        var records: [LogRecord] = []
        inbox.condition.lock()
        if inbox.formatter.register(name: source) { inbox.widthGeneration += 1 }
        var formatter = inbox.formatter
        inbox.condition.unlock()
        for text in lines {
            let record = LogRecord(time: now, source: source, group: group, colorIndex: colorIndex, text: text)
            formatter.append(record, to: &out)
            records.append(record)
        }
        writer.write(out)
        for r in records { recent.append(r) }
    }

    /// Blocks until the reader has completed a full round started after this call: every byte
    /// it had read is written, and every fd that was readable has been read once.
    public func flush() {
        inbox.condition.lock()
        defer { inbox.condition.unlock() }
        // From an `onClose` (on the reader thread) everything read so far is already written.
        guard !inbox.finished, !inbox.onReaderThread else { return }
        inbox.flushRequested += 1
        let ticket = inbox.flushRequested
        inbox.wake()
        while inbox.flushCompleted < ticket && !inbox.finished { inbox.condition.wait() }
    }

    /// Stops the reader: reads what is already buffered in the fds (bounded), prints partial lines,
    /// closes every fd (calling its `onClose`), and returns when the thread is done. Idempotent.
    /// Called from an `onClose` (the reader thread) it only requests the stop and returns.
    /// ``system(_:)`` and ``log(source:group:colorIndex:_:)`` keep working afterwards.
    public func shutdown() {
        inbox.condition.lock()
        defer { inbox.condition.unlock() }
        if !inbox.shutdownRequested {
            inbox.shutdownRequested = true
            inbox.wake()
        }
        // From an `onClose` (on the reader thread): the loop stops right after its callbacks.
        if inbox.onReaderThread { return }
        while !inbox.finished { inbox.condition.wait() }
    }
}
