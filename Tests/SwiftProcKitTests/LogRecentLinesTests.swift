import Foundation
import Testing
import SwiftProcKit

private func rec(_ source: String, _ text: String, time: Double = 1) -> LogRecord {
    let group = String(source.split(separator: ".").first ?? Substring(source))
    return LogRecord(time: time, source: source, group: group, colorIndex: 0, text: Array(text.utf8))
}

private func texts(_ records: [LogRecord]) -> [String] {
    records.map { String(decoding: $0.text, as: UTF8.self) }
}

@Suite struct LogRecentLinesTests {
    @Test func keepsTheLastCapacityRecords() {
        let ring = RecentLines(capacity: 5)
        for i in 1...12 { ring.append(rec("app.1", "\(i)", time: Double(i))) }
        #expect(ring.count == 5)
        #expect(ring.totalAppended == 12)
        #expect(texts(ring.snapshot()) == ["8", "9", "10", "11", "12"])
        #expect(texts(ring.snapshot(last: 2)) == ["11", "12"])
        #expect(texts(ring.snapshot(last: 100)) == ["8", "9", "10", "11", "12"])
        #expect(ring.snapshot(last: 0).isEmpty)
        #expect(ring.snapshot().map(\.time) == [8, 9, 10, 11, 12])
    }

    @Test func snapshotFiltersByGroupOrInstance() {
        let ring = RecentLines()
        for i in 1...6 {
            ring.append(rec("app.1", "a1-\(i)"))
            ring.append(rec("app.2", "a2-\(i)"))
            ring.append(rec("web.1", "w1-\(i)"))
        }
        ring.append(LogRecord(time: 1, source: "system", group: "system", colorIndex: -1, text: Array("boot".utf8)))
        #expect(texts(ring.snapshot(last: 3, matching: LogFilter(names: ["app"]))) == ["a2-5", "a1-6", "a2-6"])
        #expect(texts(ring.snapshot(last: 2, matching: LogFilter(names: ["app.2"]))) == ["a2-5", "a2-6"])
        #expect(texts(ring.snapshot(last: 2, matching: LogFilter(names: ["web", "system"]))) == ["w1-6", "boot"])
        #expect(texts(ring.snapshot(last: 2, matching: .all)) == ["w1-6", "boot"])
        #expect(ring.snapshot(matching: LogFilter(names: ["nope"])).isEmpty)
        let r = ring.snapshot(last: 1, matching: LogFilter(names: ["app.1"]))[0]
        #expect(r.source == "app.1" && r.group == "app" && r.colorIndex == 0)
    }

    /// Random line lengths through a tiny arena: what is kept is always an intact suffix of what
    /// was appended, within both bounds, and the newest line is always there.
    @Test func byteBoundedArenaKeepsAnIntactSuffix() {
        var rng = SystemRandomNumberGenerator()
        let ring = RecentLines(capacity: 50, byteCapacity: 1000)
        var all: [LogRecord] = []
        for i in 0..<3000 {
            let length = Int.random(in: 0...300, using: &rng)
            let byte = UInt8(truncatingIfNeeded: i)
            let r = LogRecord(time: Double(i), source: "app.\(i % 3)", group: "app", colorIndex: 0,
                              text: [UInt8](repeating: byte, count: length))
            ring.append(r)
            all.append(r)
            let snap = ring.snapshot()
            #expect(snap.count <= 50)
            #expect(snap.reduce(0) { $0 + $1.text.count } <= 1000)
            #expect(snap.last == r)
            #expect(Array(all.suffix(snap.count)) == snap)
            if snap.last != r || Array(all.suffix(snap.count)) != snap { return }
        }
    }

    @Test func subscribersGetMatchingRecordsUntilUnsubscribed() {
        let ring = RecentLines()
        let sub = CollectingSubscriber()
        ring.append(rec("app.1", "old"))
        let backlog = ring.snapshotAndSubscribe(last: 10, matching: LogFilter(names: ["app"]), subscriber: sub)
        #expect(texts(backlog) == ["old"])
        ring.append(rec("app.1", "new"))
        ring.append(rec("web.1", "other"))
        #expect(texts(sub.records) == ["new"])
        #expect(ring.subscriberCount == 1)
        ring.unsubscribe(sub)
        #expect(ring.subscriberCount == 0)
        ring.append(rec("app.1", "after"))
        #expect(texts(sub.records) == ["new"])
    }

    /// A `logs -f` client subscribing while lines stream in sees each line exactly once.
    @Test func snapshotAndSubscribeHasNoGapOrDuplicateUnderConcurrentAppends() async {
        let ring = RecentLines(capacity: 1000)
        let total = 50_000
        let appender = Thread {
            for i in 1...total { ring.append(rec("app.1", "\(i)")) }
        }
        appender.start()
        // Subscribe several clients while appends are in flight.
        var clients: [(backlog: [LogRecord], sub: CollectingSubscriber)] = []
        for _ in 0..<5 {
            _ = LogTest.wait(seconds: 10) { ring.totalAppended > (clients.count + 1) * 5000 }
            let sub = CollectingSubscriber()
            clients.append((ring.snapshotAndSubscribe(last: 200, matching: .all, subscriber: sub), sub))
        }
        #expect(LogTest.wait(seconds: 30) { ring.totalAppended == total })
        for (backlog, sub) in clients {
            let numbers = (backlog + sub.records).map { Int(String(decoding: $0.text, as: UTF8.self))! }
            #expect(!backlog.isEmpty && backlog.count <= 200)
            #expect(numbers.last == total)
            #expect(numbers == Array(numbers.first!...total))
        }
    }
}
