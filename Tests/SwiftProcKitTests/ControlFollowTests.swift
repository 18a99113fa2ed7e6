import Foundation
import Testing
@testable import SwiftProcKit

@Suite struct ControlFollowTests {
    @Test func backlogThenLiveLinesThenUnsubscribeOnDisconnect() async throws {
        let fixture = try await ServerFixture.start()
        fixture.service.backlog = [record("old 1"), record("old 2")]
        let raw = try await RawConnection.open(fixture.path)
        raw.write(#"{"version":1,"command":"logs","arguments":["app"],"lines":10,"follow":true}"# + "\n")
        let reply = await raw.readReply()
        #expect(reply?.ok == true)
        #expect(reply?.lines?.map(\.text) == ["old 1", "old 2"])
        #expect(await waitUntil { fixture.service.subscribers.count == 1 })

        fixture.service.push(record("new 1"))
        fixture.service.push(LogRecord(time: 1, source: "app.1", group: "app", colorIndex: 2, text: [0x66, 0xFF, 0x6F]))
        #expect(await raw.readLogLine() == ControlLogLine(time: 1_700_000_000, source: "app.1", group: "app", colorIndex: 0, text: "new 1"))
        #expect(await raw.readLogLine()?.text == "f\u{FFFD}o")

        raw.close()
        #expect(await waitUntil { fixture.service.subscribers.isEmpty && fixture.service.unsubscribedCount == 1 })
        #expect(await waitUntil { fixture.server.connectionCount == 0 })
    }

    @Test func aFollowRequestForAnUnknownNameIsRefused() async throws {
        let fixture = try await ServerFixture.start()
        let client = fixture.client
        let error = await #expect(throws: ControlClientError.self) {
            try await blocking { () throws(ControlClientError) in
                try client.followLogs(ControlRequest(command: .logs, arguments: ["nope"])) { _ in true }
            }
        }
        #expect(error == .failed("unknown process \"nope\"; known: app, worker"))
        #expect(fixture.service.subscribers.isEmpty)
    }

    /// A follower that stops reading while the log path pushes 200k records: the pusher is never
    /// blocked, other clients are served, and when the follower reads again it gets the queued
    /// lines, one `dropped` marker accounting for exactly the lines it missed, then live lines.
    @Test func aStalledFollowerNeverBlocksTheLogPath() async throws {
        let fixture = try await ServerFixture.start()
        let raw = try await RawConnection.open(fixture.path)
        raw.write(#"{"version":1,"command":"logs","lines":0,"follow":true}"# + "\n")
        #expect(await raw.readReply()?.ok == true)
        #expect(await waitUntil { fixture.service.subscribers.count == 1 })

        // Push from another thread, as the log path would, while this client reads nothing.
        let total = 200_000
        let pushed = DispatchSemaphore(value: 0)
        let service = fixture.service
        Thread {
            for n in 0..<total { service.push(record("line \(n) " + String(repeating: "y", count: 60))) }
            pushed.signal()
        }.start()
        // If `receive` ever blocked on the stalled client, this could not finish: nobody reads.
        #expect(await wait(for: pushed, timeout: 120))
        #expect(await fixture.pingWorks())
        let subscriber = try #require(fixture.service.subscribers.first as? FollowSubscriber)
        #expect(subscriber.totalDropped > 0)

        // Resume reading: everything delivered plus everything dropped is everything pushed,
        // in order, with the marker where the gap is.
        var delivered = 0
        var dropped = 0
        var expectedNext = 0
        var sawMarker = false
        while delivered + dropped < total {
            guard let line = await raw.readLogLine() else { break }
            if let count = line.dropped {
                #expect(line.text == "\(count) lines dropped")
                dropped += count
                expectedNext += count
                sawMarker = true
                continue
            }
            #expect(line.text.hasPrefix("line \(expectedNext) "))
            expectedNext += 1
            delivered += 1
        }
        #expect(sawMarker)
        #expect(delivered + dropped == total)
        #expect(dropped == subscriber.totalDropped)

        // And the stream goes on live.
        fixture.service.push(record("live after the gap"))
        #expect(await raw.readLogLine()?.text == "live after the gap")
    }

    @Test func severalFollowersEachGetEveryLine() async throws {
        let fixture = try await ServerFixture.start()
        let followers = 4
        let count = 2_000
        final class Collected: @unchecked Sendable {
            let lock = NSLock()
            var lines: [[String]]
            init(_ n: Int) { lines = Array(repeating: [], count: n) }
        }
        let collected = Collected(followers)
        let clients = (0..<followers).map { _ in fixture.client }
        let finished = DispatchSemaphore(value: 0)
        for (index, client) in clients.enumerated() {
            Thread {
                try? client.followLogs(ControlRequest(command: .logs, lines: 0)) { line in
                    collected.lock.withLock { collected.lines[index].append(line.text) }
                    return true
                }
                finished.signal()
            }.start()
        }
        #expect(await waitUntil { fixture.service.subscribers.count == followers })
        for n in 0..<count { fixture.service.push(record("line \(n)")) }
        let expected = (0..<count).map { "line \($0)" }
        #expect(await waitUntil { collected.lock.withLock { collected.lines.allSatisfy { $0.count >= count } } })
        collected.lock.withLock {
            for lines in collected.lines { #expect(lines == expected) }
        }

        // One follower leaves (cancel); the others keep following.
        clients[0].cancel()
        #expect(await wait(for: finished))
        #expect(await waitUntil { fixture.service.subscribers.count == followers - 1 })
        fixture.service.push(record("after one left"))
        #expect(await waitUntil { collected.lock.withLock { collected.lines[1...].allSatisfy { $0.last == "after one left" } } })

        // Stopping the server ends the rest.
        fixture.server.stop()
        for _ in 1..<followers { #expect(await wait(for: finished)) }
        #expect(await waitUntil { fixture.service.subscribers.isEmpty })
    }

    @Test func onLineReturningFalseEndsTheFollow() async throws {
        let fixture = try await ServerFixture.start()
        fixture.service.backlog = [record("a"), record("b"), record("c")]
        let client = fixture.client
        let seen = try await blocking { () throws(ControlClientError) -> [String] in
            var seen: [String] = []
            try client.followLogs(ControlRequest(command: .logs, lines: 3)) { line in
                seen.append(line.text)
                return seen.count < 2
            }
            return seen
        }
        #expect(seen == ["a", "b"])
        #expect(await waitUntil { fixture.service.subscribers.isEmpty })
    }
}

@Suite struct FollowSubscriberTests {
    @Test func dropsWhenFullAndMarksTheGap() {
        let subscriber = FollowSubscriber(maxRecords: 3, maxBytes: 1 << 20)
        for n in 0..<5 { subscriber.receive(record("r\(n)")) }
        #expect(subscriber.totalDropped == 2)
        #expect(subscriber.next() == [.record(record("r0")), .record(record("r1")), .record(record("r2")), .dropped(2)])
        subscriber.receive(record("r5"))
        subscriber.receive(record("r6"))
        #expect(subscriber.next() == [.record(record("r5")), .record(record("r6"))])
    }

    @Test func aMarkerGoesBeforeTheNextRecordAfterTheGap() {
        let subscriber = FollowSubscriber(maxRecords: 1, maxBytes: 1 << 20)
        subscriber.receive(record("a"))
        subscriber.receive(record("lost"))
        #expect(subscriber.next() == [.record(record("a")), .dropped(1)])
        subscriber.receive(record("b"))
        subscriber.receive(record("lost"))
        subscriber.receive(record("lost"))
        #expect(subscriber.next() == [.record(record("b")), .dropped(2)])
    }

    @Test func theByteBoundAlsoDrops() {
        let subscriber = FollowSubscriber(maxRecords: 100, maxBytes: 10)
        subscriber.receive(record("123456"))
        subscriber.receive(record("123456"))
        #expect(subscriber.totalDropped == 1)
        #expect(subscriber.next() == [.record(record("123456")), .dropped(1)])
    }

    @Test func closeWakesTheWriterAndStopsQueueing() {
        let subscriber = FollowSubscriber(maxRecords: 10, maxBytes: 1 << 20)
        let woke = DispatchSemaphore(value: 0)
        Thread {
            if subscriber.next() == nil { woke.signal() }
        }.start()
        subscriber.close()
        #expect(woke.wait(timeout: .now() + 20) == .success)
        subscriber.receive(record("late"))
        #expect(subscriber.next() == nil)
    }
}
