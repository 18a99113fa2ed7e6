#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import SwiftProcKit

/// The log reader's wait (epoll through dlsym on Linux, with a hand-laid `struct epoll_event`;
/// poll(2) elsewhere), against real pipes.
@Suite struct PlatformReadinessPollerTests {
    private func pipePair() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0)
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        return (fds[0], fds[1])
    }

    private func drain(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while read(fd, &buffer, buffer.count) > 0 {}
    }

    private func wait(_ poller: Platform.ReadinessPoller, milliseconds: Int32) -> [Platform.ReadinessPoller.Event] {
        var events: [Platform.ReadinessPoller.Event] = []
        poller.wait(timeoutMilliseconds: milliseconds, into: &events)
        return events
    }

    @Test func reportsTheFdThatHasInputAmongSeveral() {
        let poller = Platform.ReadinessPoller()
        #if os(Linux)
        #expect(poller.isEdgeTriggered)
        #endif
        let pipes = (0..<5).map { _ in pipePair() }
        defer { for p in pipes { close(p.read); close(p.write) } }
        for p in pipes { poller.add(p.read) }
        #expect(wait(poller, milliseconds: 0).isEmpty)

        _ = write(pipes[3].write, "x", 1)
        let events = wait(poller, milliseconds: 5_000)
        #expect(events.map(\.fd) == [pipes[3].read])
        #expect(events.first?.hangup == false)
    }

    @Test func newInputIsReportedAgainAfterADrain() {
        let poller = Platform.ReadinessPoller()
        let p = pipePair()
        defer { close(p.read); close(p.write) }
        poller.add(p.read)
        for round in 0..<3 {
            _ = write(p.write, "line \(round)\n", 7)
            #expect(wait(poller, milliseconds: 5_000).map(\.fd) == [p.read])
            drain(p.read)
            // Drained: nothing to report until more input comes.
            #expect(wait(poller, milliseconds: 0).isEmpty)
        }
    }

    @Test func aClosedWriterIsAHangUp() {
        let poller = Platform.ReadinessPoller()
        let p = pipePair()
        defer { close(p.read) }
        poller.add(p.read)
        _ = write(p.write, "last\n", 5)
        close(p.write)
        let events = wait(poller, milliseconds: 5_000)
        #expect(events.map(\.fd) == [p.read])
        #expect(events.first?.hangup == true)
    }

    @Test func aRemovedFdIsNotReported() {
        let poller = Platform.ReadinessPoller()
        let kept = pipePair(), removed = pipePair()
        defer { for p in [kept, removed] { close(p.read); close(p.write) } }
        poller.add(kept.read)
        poller.add(removed.read)
        poller.remove(removed.read)
        _ = write(removed.write, "x", 1)
        #expect(wait(poller, milliseconds: 0).isEmpty)
        _ = write(kept.write, "y", 1)
        #expect(wait(poller, milliseconds: 5_000).map(\.fd) == [kept.read])
    }

    #if os(Linux)
    @Test func manyReadyFdsAreAllReported() {
        // More than epoll's initial event buffer (256) holds: the rest comes in the next waits.
        // (Linux only: 600 fds is over macOS's default limit, and the buffer is epoll's.)
        let poller = Platform.ReadinessPoller()
        let pipes = (0..<300).map { _ in pipePair() }
        defer { for p in pipes { close(p.read); close(p.write) } }
        for p in pipes {
            poller.add(p.read)
            _ = write(p.write, "x", 1)
        }
        var seen = Set<Int32>()
        for _ in 0..<10 where seen.count < pipes.count {
            for e in wait(poller, milliseconds: 5_000) {
                seen.insert(e.fd)
                drain(e.fd)
            }
        }
        #expect(seen == Set(pipes.map(\.read)))
    }
    #endif
}
