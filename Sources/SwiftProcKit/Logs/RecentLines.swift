#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Which records a `logs` request wants: everything, or those whose group (`app`) or instance
/// (`app.2`) is one of `names`.
public struct LogFilter: Sendable, Equatable {
    public let names: Set<String>

    public static let all = LogFilter(names: [])

    /// Empty `names` matches everything.
    public init(names: some Sequence<String>) {
        self.names = Set(names)
    }

    public var matchesEverything: Bool { names.isEmpty }

    public func matches(source: String, group: String) -> Bool {
        names.isEmpty || names.contains(source) || names.contains(group)
    }

    public func matches(_ record: LogRecord) -> Bool {
        matches(source: record.source, group: record.group)
    }
}

/// The last lines of merged output, for `swiftproc logs` (backlog) and `logs -f` (live).
///
/// Bounded twice: at most ``capacity`` records and at most ``byteCapacity`` bytes of text; the
/// oldest records are evicted first. Text lives in one preallocated circular byte arena and each
/// record costs a 24-byte entry plus its bytes, so appending allocates nothing (sources are
/// interned). ``LogRecord``s are built only for snapshots and for subscribers.
///
/// Thread-safe. Subscribers are called under the ring's lock, in append order, right after each
/// record is stored — which is what makes ``snapshotAndSubscribe(last:matching:subscriber:)``
/// gap- and duplicate-free. By the ``LogSubscriber`` contract they must not block.
public final class RecentLines: @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`; the arena is only touched under it.
    public static let defaultCapacity = 10_000
    public static let defaultByteCapacity = 8 << 20
    /// The most records a ring holds (`--log-lines` above it is refused by the CLI).
    public static let maximumCapacity = 10_000_000

    public let capacity: Int
    public let byteCapacity: Int

    struct Entry {
        var time: Double
        /// Logical arena position (monotonic); physical = start % byteCapacity.
        var start: Int
        var length: Int32
        var source: Int32
        /// Append order (``totalAppended`` when stored), to merge with the groups' reserves.
        var sequence: Int
    }

    /// A line evicted from the arena but kept in its group's reserve.
    struct Kept {
        var time: Double
        var source: Int32
        var sequence: Int
        var text: [UInt8]
    }

    struct Source: Hashable {
        var source: String
        var group: String
        var colorIndex: Int
    }

    /// A line the reader thread stored in its batch buffer.
    struct Pending {
        var source: Int32
        var offset: Int
        var length: Int
    }

    private let lock = NSLock()
    // Touched per stored line, always under `lock`: no run-time exclusivity checks (see ByteBuffer).
    @exclusivity(unchecked) private var entries: [Entry]
    @exclusivity(unchecked) private var head = 0
    @exclusivity(unchecked) private var stored = 0
    @exclusivity(unchecked) private var appended = 0
    private let arena: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var writePosition = 0
    @exclusivity(unchecked) private var sources: [Source] = []
    private var sourceIDs: [Source: Int32] = [:]
    @exclusivity(unchecked) private var subscribers: [(subscriber: any LogSubscriber, filter: LogFilter)] = []
    /// Each group's share: when the arena evicts a line of a group that holds fewer than its
    /// share of records, the line moves to that group's reserve instead of being lost, so one
    /// flooding group cannot push a quiet one out of `swiftproc logs`. Source id → group id.
    @exclusivity(unchecked) private var sourceGroup: [Int] = []
    private var groupIDs: [String: Int] = [:]
    /// Per group id: records in the arena, and the reserve (oldest first) with its byte count.
    @exclusivity(unchecked) private var inArena: [Int] = []
    @exclusivity(unchecked) private var arenaBytes: [Int] = []
    @exclusivity(unchecked) private var reserves: [[Kept]] = []
    @exclusivity(unchecked) private var reserveBytes: [Int] = []

    public init(capacity: Int = RecentLines.defaultCapacity, byteCapacity: Int = RecentLines.defaultByteCapacity) {
        // Bounded whatever the caller asks: the entries grow as lines arrive, never up front.
        self.capacity = min(max(capacity, 1), RecentLines.maximumCapacity)
        self.byteCapacity = min(max(byteCapacity, 1), 1 << 30)
        entries = []
        entries.reserveCapacity(min(self.capacity, 1024))
        arena = UnsafeMutableRawPointer.allocate(byteCount: self.byteCapacity, alignment: 16)
    }

    deinit { arena.deallocate() }

    /// Records currently held.
    public var count: Int {
        lock.lock(); defer { lock.unlock() }
        return stored
    }

    /// Records ever appended (held or evicted).
    public var totalAppended: Int {
        lock.lock(); defer { lock.unlock() }
        return appended
    }

    public var subscriberCount: Int {
        lock.lock(); defer { lock.unlock() }
        return subscribers.count
    }

    public func append(_ record: LogRecord) {
        lock.lock()
        defer { lock.unlock() }
        let id = internLocked(Source(source: record.source, group: record.group, colorIndex: record.colorIndex))
        record.text.withUnsafeBytes { text in
            storeLocked(time: record.time, source: id, text: text)
        }
        deliverLocked(record)
    }

    /// The last `last` records (all held when `nil`) that match `filter`, oldest first.
    public func snapshot(last: Int? = nil, matching filter: LogFilter = .all) -> [LogRecord] {
        lock.lock()
        defer { lock.unlock() }
        return snapshotLocked(last: last, filter: filter)
    }

    /// Atomically takes the backlog and registers `subscriber` for every later matching record:
    /// a following client sees each line exactly once, with no gap between backlog and live.
    public func snapshotAndSubscribe(last: Int?, matching filter: LogFilter, subscriber: any LogSubscriber) -> [LogRecord] {
        lock.lock()
        defer { lock.unlock() }
        let backlog = snapshotLocked(last: last, filter: filter)
        subscribers.removeAll { $0.subscriber === subscriber }
        subscribers.append((subscriber, filter))
        return backlog
    }

    public func unsubscribe(_ subscriber: any LogSubscriber) {
        lock.lock()
        defer { lock.unlock() }
        subscribers.removeAll { $0.subscriber === subscriber }
    }

    // MARK: - Reader-thread API

    func sourceID(source: String, group: String, colorIndex: Int) -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        return internLocked(Source(source: source, group: group, colorIndex: colorIndex))
    }

    /// Stores a batch of lines whose text sits in `buffer` — one lock round trip per batch.
    func append(batch: [Pending], time: Double, buffer: UnsafeRawBufferPointer) {
        guard !batch.isEmpty, let base = buffer.baseAddress else { return }
        lock.lock()
        defer { lock.unlock() }
        for line in batch {
            let text = UnsafeRawBufferPointer(start: base + line.offset, count: line.length)
            storeLocked(time: time, source: line.source, text: text)
            if !subscribers.isEmpty {
                let s = sources[Int(line.source)]
                deliverLocked(LogRecord(time: time, source: s.source, group: s.group, colorIndex: s.colorIndex, text: Array(text)))
            }
        }
    }

    // MARK: - Under the lock

    private func internLocked(_ source: Source) -> Int32 {
        if let id = sourceIDs[source] { return id }
        let id = Int32(sources.count)
        sources.append(source)
        sourceIDs[source] = id
        if let group = groupIDs[source.group] {
            sourceGroup.append(group)
        } else {
            let group = inArena.count
            groupIDs[source.group] = group
            sourceGroup.append(group)
            inArena.append(0)
            arenaBytes.append(0)
            reserves.append([])
            reserveBytes.append(0)
        }
        return id
    }

    private func storeLocked(time: Double, source: Int32, text: UnsafeRawBufferPointer) {
        let length = min(text.count, byteCapacity)
        if stored == capacity { evictOldestLocked() }
        // Lines are contiguous in the arena: skip the tail if this one does not fit before the end.
        var start = writePosition
        let physical = start % byteCapacity
        if physical + length > byteCapacity { start += byteCapacity - physical }
        let end = start + length
        while stored > 0 && entries[head].start < end - byteCapacity { evictOldestLocked() }
        if length > 0, let src = text.baseAddress {
            (arena + start % byteCapacity).copyMemory(from: src, byteCount: length)
        }
        writePosition = end
        let entry = Entry(time: time, start: start, length: Int32(length), source: source, sequence: appended)
        inArena[sourceGroup[Int(source)]] += 1
        arenaBytes[sourceGroup[Int(source)]] += length
        let slot = (head + stored) % capacity
        if slot == entries.count { entries.append(entry) } else { entries[slot] = entry }
        stored += 1
        appended += 1
    }

    private func evictOldestLocked() {
        let e = entries[head]
        let group = sourceGroup[Int(e.source)]
        inArena[group] -= 1
        arenaBytes[group] -= Int(e.length)
        let groups = max(1, inArena.count)
        let shareRecords = max(1, capacity / (4 * groups))
        let shareBytes = max(4096, byteCapacity / (4 * groups))
        // Kept only when the group is below its share while another group holds more than a
        // fair share: that one is pushing it out. A lone group simply rolls over.
        if groups > 1, inArena[group] < shareRecords,
           inArena.indices.contains(where: { $0 != group && (inArena[$0] > capacity / groups || arenaBytes[$0] > byteCapacity / groups) }) {
            let text = Array(UnsafeRawBufferPointer(start: arena + e.start % byteCapacity, count: Int(e.length)))
            reserves[group].append(Kept(time: e.time, source: e.source, sequence: e.sequence, text: text))
            reserveBytes[group] += text.count
            var drop = 0
            while reserves[group].count - drop > max(1, shareRecords - inArena[group])
                    || (reserveBytes[group] > shareBytes && reserves[group].count - drop > 1) {
                reserveBytes[group] -= reserves[group][drop].text.count
                drop += 1
            }
            if drop > 0 { reserves[group].removeFirst(drop) }
        }
        head = (head + 1) % capacity
        stored -= 1
    }

    private func deliverLocked(_ record: LogRecord) {
        for s in subscribers where s.filter.matches(record) {
            s.subscriber.receive(record)
        }
    }

    private func snapshotLocked(last: Int?, filter: LogFilter) -> [LogRecord] {
        let kept = reserves.reduce(0) { $0 + $1.count }
        let limit = min(last ?? (stored + kept), stored + kept)
        guard limit > 0 else { return [] }
        var matchingSource = [Bool](repeating: false, count: sources.count)
        for (i, s) in sources.enumerated() { matchingSource[i] = filter.matches(source: s.source, group: s.group) }
        // Walk backwards from the newest, then reverse.
        var out: [LogRecord] = []
        out.reserveCapacity(limit)
        var i = stored - 1
        while i >= 0 && out.count < limit {
            let e = entries[(head + i) % capacity]
            if matchingSource[Int(e.source)] {
                let s = sources[Int(e.source)]
                let text = Array(UnsafeRawBufferPointer(start: arena + e.start % byteCapacity, count: Int(e.length)))
                out.append(LogRecord(time: e.time, source: s.source, group: s.group, colorIndex: s.colorIndex, text: text))
            }
            i -= 1
        }
        // Older than everything in the arena: the matching groups' reserves, newest first.
        if out.count < limit && kept > 0 {
            var older: [Kept] = []
            for reserve in reserves {
                for k in reserve where matchingSource[Int(k.source)] { older.append(k) }
            }
            older.sort { $0.sequence > $1.sequence }
            for k in older.prefix(limit - out.count) {
                let s = sources[Int(k.source)]
                out.append(LogRecord(time: k.time, source: s.source, group: s.group, colorIndex: s.colorIndex, text: k.text))
            }
        }
        out.reverse()
        return out
    }
}
