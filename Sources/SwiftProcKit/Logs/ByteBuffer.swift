#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A growable, reusable byte buffer with `memcpy` appends, for the log hot path.
///
/// Not thread-safe: each instance belongs to one thread (the reader thread's batch) or is used
/// under its owner's lock. `removeAll()` keeps the capacity, so steady state allocates nothing.
final class ByteBuffer {
    // `@exclusivity(unchecked)` here and on the other per-line state of the log path (the reader
    // loop, its streams, the ring): each such property belongs to one thread or is only touched
    // under its owner's lock, so Swift's run-time exclusivity checks (a begin/end pair with a
    // thread-local lookup on every access of a class property) cannot find anything — yet they
    // were a fifth of the reader thread's CPU with 16 busy ptys (perf). The compile-time checks
    // still apply.
    @exclusivity(unchecked) private(set) var base: UnsafeMutableRawPointer
    @exclusivity(unchecked) private(set) var count = 0
    @exclusivity(unchecked) private(set) var capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = max(capacity, 16)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    var isEmpty: Bool { count == 0 }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    func append(_ pointer: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        reserve(count + n)
        (base + count).copyMemory(from: pointer, byteCount: n)
        count += n
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        guard let p = bytes.baseAddress else { return }
        append(p, count: bytes.count)
    }

    func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    func append(_ byte: UInt8) {
        reserve(count + 1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Empties the buffer; gives back memory above `keepingAtMost` bytes of capacity.
    func removeAll(keepingAtMost limit: Int = .max) {
        count = 0
        if capacity > limit {
            base.deallocate()
            capacity = max(limit, 16)
            base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        }
    }
}
