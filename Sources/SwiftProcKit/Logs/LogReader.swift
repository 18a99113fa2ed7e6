#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A child output fd handed to the multiplexer, waiting for the reader thread to pick it up.
struct LogAttachment: Sendable {
    var fd: Int32
    var source: String
    var group: String
    var colorIndex: Int
    var isPTY: Bool
    var onClose: @Sendable () -> Void
}

/// Receives a source's raw output as it is read, before it is split into lines (for
/// `swiftproc attach`). Called on the reader thread: must not block.
public protocol LogTap: AnyObject, Sendable {
    func receive(_ bytes: UnsafeRawBufferPointer)
    /// The source's output ended.
    func closed()
}

/// State shared between the reader thread and everyone else, guarded by `condition`.
final class LogInbox: @unchecked Sendable {
    // @unchecked: mutable fields are guarded by `condition`; the wake pipe fds are immutable.
    let condition = NSCondition()
    var attachments: [LogAttachment] = []
    var formatter: LogFormatter
    /// Bumped whenever `formatter.nameWidth` grows.
    var widthGeneration = 0
    var flushRequested = 0
    var flushCompleted = 0
    var shutdownRequested = false
    var finished = false
    /// Taps by source name; `tapGeneration` bumps on each change.
    var taps: [String: any LogTap] = [:]
    var tapGeneration = 0
    /// The reader thread, so `flush`/`shutdown` called from an `onClose` on it do not wait for themselves.
    var readerThread: pthread_t?
    /// Self-pipe: [0] polled by the reader, [1] written to wake it.
    let wakeRead: Int32
    let wakeWrite: Int32

    init(formatter: LogFormatter) {
        self.formatter = formatter
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fatalError("swiftproc: cannot create the log reader's wake pipe (errno \(errno))") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// Whether the caller is the reader thread. Call with `condition` held.
    var onReaderThread: Bool {
        guard let t = readerThread else { return false }
        return pthread_equal(t, pthread_self()) != 0
    }

    /// Wakes the reader's `poll`. A full pipe (EAGAIN) already means "wake up".
    func wake() {
        var byte: UInt8 = 1
        #if canImport(Glibc)
        _ = Glibc.write(wakeWrite, &byte, 1)
        #else
        _ = Darwin.write(wakeWrite, &byte, 1)
        #endif
    }
}

/// The body of the reader thread: waits on every child fd + the wake pipe
/// (``Platform/ReadinessPoller``: edge-triggered epoll on Linux), reads each fd that signalled
/// until a short read (a pty gives at most ~4 KiB a read; a pipe up to 64 KiB), formats the lines
/// into one batch that is written with one `write(2)` (and stored in the ring with one lock) per
/// round.
///
/// Everything here except `inbox`, `writer`, `ring` is touched only by the reader thread.
final class LogReaderLoop: @unchecked Sendable {
    // @unchecked: confined to the reader thread (see above); the shared parts are thread-safe.
    static let readSize = 64 * 1024
    /// A batch larger than this is written mid-round, bounding memory with many busy fds.
    static let batchLimit = 1 << 20
    /// A read at least this large means the writer was ahead of the reader (see `quiet(afterReading:)`).
    static let bufferBoundaryRead = 1024
    /// Reads of one fd per round at most, so a hung-up fd with a huge pipe buffer cannot hold
    /// the others (its rest is read in the next rounds).
    static let readsPerRound = 64

    final class Stream {
        let fd: Int32
        let attachment: LogAttachment
        let sourceID: Int32
        // Per-line state, reader thread only: no run-time exclusivity checks (see ByteBuffer).
        @exclusivity(unchecked) var splitter = LineSplitter()
        @exclusivity(unchecked) var prefix: LogFormatter.Prefix
        @exclusivity(unchecked) var lastData: UInt64 = 0
        /// How long an unterminated line may sit quiet before it is printed on its own; set by
        /// the read that left it (see ``LogReaderLoop/quiet(afterReading:)``).
        @exclusivity(unchecked) var quietFor: UInt64 = 0
        var eof = false
        /// The other end hung up: read until EOF, whatever the read sizes.
        var hangup = false
        /// Input may be waiting that no readiness event will announce again (a read was cut
        /// short by `readsPerRound`): read it next round.
        var backlog = false
        /// The round in which the poller last reported this fd.
        var reportedRound = -1
        @exclusivity(unchecked) var tap: (any LogTap)?

        init(attachment: LogAttachment, sourceID: Int32, prefix: LogFormatter.Prefix) {
            fd = attachment.fd
            self.attachment = attachment
            self.sourceID = sourceID
            self.prefix = prefix
        }
    }

    let inbox: LogInbox
    let writer: LogWriter
    let ring: RecentLines
    let quietNanoseconds: UInt64

    // Per-line state, reader thread only: no run-time exclusivity checks (see ByteBuffer).
    @exclusivity(unchecked) private var formatter: LogFormatter
    private var widthGeneration = -1
    private var tapGeneration = 0
    private var taps: [String: any LogTap] = [:]
    private var streams: [Stream] = []
    private var streamsByFD: [Int32: Stream] = [:]
    private let poller = Platform.ReadinessPoller()
    private var events: [Platform.ReadinessPoller.Event] = []
    private var ready: [Stream] = []
    private var round = 0
    private let batch = ByteBuffer(capacity: 256 * 1024)
    @exclusivity(unchecked) private var pendingRecords: [RecentLines.Pending] = []
    private let readBuffer = UnsafeMutableRawPointer.allocate(byteCount: LogReaderLoop.readSize, alignment: 16)
    @exclusivity(unchecked) private var wallTime: Double = 0
    @exclusivity(unchecked) private var second = 0

    init(inbox: LogInbox, writer: LogWriter, ring: RecentLines, quietPeriod: Double) {
        self.inbox = inbox
        self.writer = writer
        self.ring = ring
        quietNanoseconds = quietPeriod.isFinite ? UInt64(max(quietPeriod, 0) * 1e9) : .max
        formatter = inbox.formatter
        pendingRecords.reserveCapacity(4096)
        events.reserveCapacity(64)
        ready.reserveCapacity(64)
    }

    deinit { readBuffer.deallocate() }

    func run() {
        inbox.condition.lock()
        inbox.readerThread = pthread_self()
        inbox.condition.unlock()
        poller.add(inbox.wakeRead)
        while true {
            let timeout = streams.contains(where: { $0.backlog }) ? 0 : pollTimeout()
            poller.wait(timeoutMilliseconds: timeout, into: &events)
            round &+= 1
            ready.removeAll(keepingCapacity: true)
            for e in events {
                if e.fd == inbox.wakeRead {
                    drainWakePipe()
                } else if let s = streamsByFD[e.fd] {
                    s.reportedRound = round
                    if e.hangup { s.hangup = true }
                    ready.append(s)
                }
            }
            for s in streams where s.backlog && s.reportedRound != round {
                s.reportedRound = round
                ready.append(s)
            }

            // Commands from other threads.
            inbox.condition.lock()
            let attachments = inbox.attachments
            inbox.attachments.removeAll()
            let serving = inbox.flushRequested
            let flushWaiting = inbox.flushRequested > inbox.flushCompleted
            let shutdown = inbox.shutdownRequested
            if inbox.widthGeneration != widthGeneration {
                widthGeneration = inbox.widthGeneration
                formatter = inbox.formatter
                for s in streams { s.prefix = formatter.makePrefix(name: s.attachment.source, colorIndex: s.attachment.colorIndex) }
            }
            if inbox.tapGeneration != tapGeneration {
                tapGeneration = inbox.tapGeneration
                taps = inbox.taps
                for s in streams { s.tap = taps[s.attachment.source] }
            }
            inbox.condition.unlock()
            // New streams were not waited on this round; the next wait reports their input.
            for a in attachments { add(a) }

            updateClock()
            let now = monotonicNanoseconds()
            for s in ready { drain(s, now: now) }
            if flushWaiting {
                // `flush()` promises every fd that was readable has been read: ask the ones no
                // event named too (on a pty the read also collects what the kernel has not
                // handed over yet, as poll(2) did).
                for s in streams where s.reportedRound != round && !s.eof { drain(s, now: now) }
            }
            // Quiet-period flush, only for fds the wait just found idle — so a slow round (blocked
            // output) never tears a line whose rest is already waiting.
            if quietNanoseconds != .max {
                for s in streams where s.reportedRound != round && !s.eof && s.splitter.hasPartialLine
                    && now &- s.lastData >= s.quietFor {
                    // Edge-triggered readiness asked nobody: make sure the rest is not sitting in
                    // the fd (or in a pty's not yet delivered buffer — a read waits for that).
                    let before = s.lastData
                    drain(s, now: now)
                    if s.lastData == before && !s.eof { flushPartial(s) }
                }
            }
            commit()
            if streams.contains(where: { $0.eof }) { closeFinished() }

            if shutdown {
                drainAndCloseAll()
                inbox.condition.lock()
                inbox.finished = true
                inbox.flushCompleted = inbox.flushRequested
                inbox.condition.broadcast()
                inbox.condition.unlock()
                return
            }
            if serving > 0 {
                inbox.condition.lock()
                if serving > inbox.flushCompleted {
                    inbox.flushCompleted = serving
                    inbox.condition.broadcast()
                }
                inbox.condition.unlock()
            }
        }
    }

    // MARK: - Streams

    private func add(_ a: LogAttachment) {
        _ = fcntl(a.fd, F_SETFL, fcntl(a.fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(a.fd, F_SETFD, FD_CLOEXEC)
        let id = ring.sourceID(source: a.source, group: a.group, colorIndex: a.colorIndex)
        let stream = Stream(attachment: a, sourceID: id, prefix: formatter.makePrefix(name: a.source, colorIndex: a.colorIndex))
        stream.tap = taps[a.source]
        streams.append(stream)
        streamsByFD[a.fd] = stream
        poller.add(a.fd)
    }

    private func pollTimeout() -> Int32 {
        guard quietNanoseconds != .max else { return -1 }
        var earliest = UInt64.max
        for s in streams where s.splitter.hasPartialLine {
            earliest = min(earliest, s.lastData &+ s.quietFor)
        }
        guard earliest != .max else { return -1 }
        let now = monotonicNanoseconds()
        if earliest <= now { return 0 }
        return Int32(min((earliest - now + 999_999) / 1_000_000, 60_000))
    }

    /// Reads until a short read (drained for now: the next input raises a new readiness event),
    /// or — after a hang-up — until EOF. 0 (pipe EOF), `EIO` (pty EOF on Linux) or any other
    /// error ends the stream. One read per readiness is all a pty gives: a read takes what its
    /// input buffer holds (at most 4 KiB) and the kernel refills it asynchronously.
    private func drain(_ s: Stream, now: UInt64) {
        s.backlog = false
        for _ in 0..<LogReaderLoop.readsPerRound {
            let n = read(s.fd, readBuffer, LogReaderLoop.readSize)
            if n > 0 {
                s.tap?.receive(UnsafeRawBufferPointer(start: readBuffer, count: n))
                s.lastData = now
                s.quietFor = quiet(afterReading: n)
                s.splitter.feed(UnsafeRawBufferPointer(start: readBuffer, count: n)) { line in emit(line, s) }
                if batch.count >= LogReaderLoop.batchLimit { commit() }
                if n < LogReaderLoop.readSize && !s.hangup { return }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                // A hang-up with nothing readable yet (the last bytes are still on their way):
                // keep asking each round rather than wait for an event that may not come.
                if s.hangup { s.backlog = true }
                return
            }
            s.eof = true
            flushPartial(s)
            return
        }
        s.backlog = true
    }

    /// A partial line that a small read left is a prompt or a progress bar: show it after the
    /// quiet period. One that a large read left is where a buffer happened to end while the
    /// writer was ahead of us (a pty splits writes at ~4 KiB, awk writes 4 KiB blocks into
    /// pipes); its rest is coming, so under load it gets up to a second before it is torn.
    private func quiet(afterReading bytes: Int) -> UInt64 {
        bytes >= LogReaderLoop.bufferBoundaryRead ? max(quietNanoseconds, 1_000_000_000) : quietNanoseconds
    }

    private func flushPartial(_ s: Stream) {
        s.splitter.flushPartial { line in emit(line, s) }
    }

    private func emit(_ line: UnsafeRawBufferPointer, _ s: Stream) {
        if s.prefix.second != second { formatter.stamp(&s.prefix, second: second) }
        s.prefix.bytes.withUnsafeBytes { batch.append($0) }
        pendingRecords.append(RecentLines.Pending(source: s.sourceID, offset: batch.count, length: line.count))
        batch.append(line)
        batch.append(0x0A)
    }

    /// Writes the batch (one `write(2)`) and stores its lines in the ring.
    private func commit() {
        guard !batch.isEmpty else { return }
        writer.write(batch.bytes)
        ring.append(batch: pendingRecords, time: wallTime, buffer: batch.bytes)
        pendingRecords.removeAll(keepingCapacity: true)
        batch.removeAll(keepingAtMost: 4 << 20)
    }

    /// Closes streams at EOF — after their last bytes were written — then tells the supervisor.
    private func closeFinished() {
        var closed: [LogAttachment] = []
        streams.removeAll { s in
            guard s.eof else { return false }
            poller.remove(s.fd)
            streamsByFD[s.fd] = nil
            close(s.fd)
            s.tap?.closed()
            closed.append(s.attachment)
            return true
        }
        for a in closed { a.onClose() }
    }

    /// Shutdown: read what is already in the pipes and ptys (bounded, so an endless writer
    /// cannot hold us), flush partial lines, close everything.
    private func drainAndCloseAll() {
        for _ in 0..<256 {
            guard !streams.isEmpty else { break }
            updateClock()
            let now = monotonicNanoseconds()
            var any = false
            for s in streams where !s.eof {
                let before = s.lastData
                // Ask every fd, not just those with a fresh event: a read is cheap, and on a pty
                // it also collects input the kernel has not moved to the read buffer yet.
                s.hangup = true
                drain(s, now: now)
                if s.lastData != before || s.eof { any = true }
            }
            commit()
            closeFinished()
            if !any { break }
        }
        for s in streams {
            flushPartial(s)
            s.eof = true
        }
        commit()
        closeFinished()
    }

    private func drainWakePipe() {
        var sink = [UInt8](repeating: 0, count: 256)
        while read(inbox.wakeRead, &sink, sink.count) > 0 {}
    }

    private func updateClock() {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        wallTime = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        second = Int(ts.tv_sec)
    }
}

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
