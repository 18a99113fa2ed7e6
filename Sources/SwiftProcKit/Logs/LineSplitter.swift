#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a byte stream into lines, one stream (one child's output fd) per splitter.
///
/// Rules (byte-exact apart from terminators):
/// - A line ends at `\n`. A single `\r` directly before the `\n` is part of the terminator and is
///   dropped (so `\r\n` from a pty with `OPOST`, or a Windows-style program, prints cleanly). Every
///   other byte, including invalid UTF-8, a lone `\r` (progress bars) and escape sequences, is kept.
/// - A line longer than ``maxLineLength`` is emitted in pieces of exactly `maxLineLength` bytes
///   (counted from the start of the line), then the remainder; nothing is dropped and the splitter
///   never holds more than `maxLineLength + 1` bytes.
/// - An unterminated tail stays pending until more bytes arrive or the owner calls
///   ``flushPartial(_:)`` (after a quiet period, or at EOF). If the very next bytes after such a
///   flush are just the terminator (`\n` or `\r\n`), no empty line is emitted for it: the flushed
///   text already stood for that line.
///
/// Lines are handed out as `UnsafeRawBufferPointer`s valid only during the `emit` call; the fast
/// path (no pending bytes) points straight into the caller's chunk, so there is no copy and no
/// allocation per line.
public struct LineSplitter: Sendable {
    public static let defaultMaxLineLength = 65_536

    public let maxLineLength: Int
    private var pending: [UInt8] = []
    /// Set by `flushPartial`; cleared by any emission. Swallows an empty line that is only the
    /// terminator of text already flushed.
    private var suppressEmptyLine = false

    public init(maxLineLength: Int = LineSplitter.defaultMaxLineLength) {
        precondition(maxLineLength > 0, "maxLineLength must be positive")
        self.maxLineLength = maxLineLength
    }

    /// Whether an unterminated line is waiting.
    public var hasPartialLine: Bool { !pending.isEmpty }

    /// Bytes of the waiting unterminated line.
    public var partialLineLength: Int { pending.count }

    public mutating func feed(_ bytes: [UInt8], _ emit: (UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes { feed($0, emit) }
    }

    /// Feeds a chunk; calls `emit` once per complete line (or 64 KiB piece), in order.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let end = base + bytes.count
        var p = base
        while p < end {
            let remaining = end - p
            if let hit = memchr(p, 0x0A, remaining) {
                let length = UnsafeRawPointer(hit) - p
                if pending.isEmpty {
                    emitComplete(p, length, emit)
                } else {
                    appendPending(p, length, emit)
                    finishPending(emit)
                }
                p += length + 1
            } else {
                appendPending(p, remaining, emit)
                break
            }
        }
    }

    /// Emits the pending unterminated line as is (a trailing `\r` included), if there is one.
    public mutating func flushPartial(_ emit: (UnsafeRawBufferPointer) -> Void) {
        guard !pending.isEmpty else { return }
        pending.withUnsafeBytes { all in
            var p = all.baseAddress!
            var n = all.count
            while n > maxLineLength {
                emit(UnsafeRawBufferPointer(start: p, count: maxLineLength))
                p += maxLineLength
                n -= maxLineLength
            }
            emit(UnsafeRawBufferPointer(start: p, count: n))
        }
        clearPending()
        suppressEmptyLine = true
    }

    // MARK: - Internals

    /// A whole line inside one chunk, with no pending prefix.
    private mutating func emitComplete(_ start: UnsafeRawPointer, _ length: Int, _ emit: (UnsafeRawBufferPointer) -> Void) {
        var n = length
        if n > 0 && start.load(fromByteOffset: n - 1, as: UInt8.self) == 0x0D { n -= 1 }
        if n == 0 {
            if suppressEmptyLine { suppressEmptyLine = false; return }
            emit(UnsafeRawBufferPointer(start: start, count: 0))
            return
        }
        suppressEmptyLine = false
        var p = start
        while n > maxLineLength {
            emit(UnsafeRawBufferPointer(start: p, count: maxLineLength))
            p += maxLineLength
            n -= maxLineLength
        }
        emit(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// Appends bytes without a `\n`, emitting full pieces. Holds at most `maxLineLength + 1`
    /// bytes: the extra byte may be a `\r` that turns out to belong to the terminator.
    private mutating func appendPending(_ start: UnsafeRawPointer, _ length: Int, _ emit: (UnsafeRawBufferPointer) -> Void) {
        var p = start
        var n = length
        while n > 0 {
            let take = min(maxLineLength + 1 - pending.count, n)
            pending.append(contentsOf: UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: take))
            p += take
            n -= take
            if pending.count == maxLineLength + 1 && (n > 0 || pending[maxLineLength] != 0x0D) {
                pending.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[0..<maxLineLength])) }
                suppressEmptyLine = false
                let last = pending[maxLineLength]
                pending.removeAll(keepingCapacity: true)
                pending.append(last)
            }
        }
    }

    /// The pending bytes are a complete line (its `\n` was just seen).
    private mutating func finishPending(_ emit: (UnsafeRawBufferPointer) -> Void) {
        pending.withUnsafeBytes { all in
            let p = all.baseAddress!
            var n = all.count
            if n > 0 && all[n - 1] == 0x0D { n -= 1 }
            if n == 0 {
                if suppressEmptyLine { return }
                emit(UnsafeRawBufferPointer(start: p, count: 0))
                return
            }
            if n > maxLineLength {
                emit(UnsafeRawBufferPointer(start: p, count: maxLineLength))
                emit(UnsafeRawBufferPointer(start: p + maxLineLength, count: n - maxLineLength))
            } else {
                emit(UnsafeRawBufferPointer(start: p, count: n))
            }
        }
        suppressEmptyLine = false
        clearPending()
    }

    private mutating func clearPending() {
        // Give back the memory of a long partial line; keep small buffers for reuse.
        pending.removeAll(keepingCapacity: pending.capacity <= 8192)
    }
}
