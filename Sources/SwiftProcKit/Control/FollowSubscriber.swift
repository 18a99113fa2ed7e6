import Foundation

/// The ``LogSubscriber`` behind one `swiftproc logs --follow` connection: a bounded queue between
/// the log path (which calls ``receive(_:)`` and must never block) and the connection's writer
/// thread (which may block for as long as the client does not read).
///
/// `receive` takes a lock held only for an append or a swap, never across I/O. When the queue
/// holds `maxRecords` records or `maxBytes` bytes of text, new records are dropped and counted;
/// the next time the writer takes from the queue, the count goes out as a `dropped` marker in
/// the place of the missing lines. The writer takes the whole queue at once, so at most about
/// twice the bound is held (the queue plus the batch being written).
final class FollowSubscriber: LogSubscriber, @unchecked Sendable {
    enum Item: Equatable {
        case record(LogRecord)
        case dropped(Int)
    }

    let maxRecords: Int
    let maxBytes: Int

    private let condition = NSCondition()
    private var queue: [Item] = []
    private var queuedBytes = 0
    private var droppedRun = 0
    private var droppedTotal = 0
    private var closed = false

    init(maxRecords: Int, maxBytes: Int) {
        self.maxRecords = max(1, maxRecords)
        self.maxBytes = max(1, maxBytes)
    }

    func receive(_ record: LogRecord) {
        condition.lock()
        defer { condition.unlock() }
        if closed { return }
        if queue.count >= maxRecords || (!queue.isEmpty && queuedBytes + record.text.count > maxBytes) {
            droppedRun += 1
            droppedTotal += 1
            return
        }
        if droppedRun > 0 {
            queue.append(.dropped(droppedRun))
            droppedRun = 0
        }
        queue.append(.record(record))
        queuedBytes += record.text.count
        condition.signal()
    }

    /// Everything queued, with a `dropped` marker where lines were lost; blocks until there is
    /// something. nil once closed.
    func next() -> [Item]? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty, droppedRun == 0, !closed { condition.wait() }
        if closed { return nil }
        var batch: [Item] = []
        swap(&batch, &queue)
        queuedBytes = 0
        if droppedRun > 0 {
            batch.append(.dropped(droppedRun))
            droppedRun = 0
        }
        return batch
    }

    /// Stops accepting records and wakes the writer.
    func close() {
        condition.lock()
        closed = true
        queue = []
        queuedBytes = 0
        condition.broadcast()
        condition.unlock()
    }

    /// How many records were dropped in all (for tests and diagnostics).
    var totalDropped: Int {
        condition.lock()
        defer { condition.unlock() }
        return droppedTotal
    }
}

extension ControlLogLine {
    /// The marker standing for `count` lines a slow client missed.
    static func droppedMarker(_ count: Int, time: Double = Date().timeIntervalSince1970) -> ControlLogLine {
        ControlLogLine(time: time, source: "system", group: "system", colorIndex: 0,
                       text: "\(count) line\(count == 1 ? "" : "s") dropped", dropped: count)
    }
}
