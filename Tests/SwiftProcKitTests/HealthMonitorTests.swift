import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Collects `onChange` calls.
final class HealthEvents: @unchecked Sendable {
    private let lock = NSLock()
    private var _events: [(result: HealthResult, at: Date)] = []

    func append(_ result: HealthResult) {
        lock.lock()
        _events.append((result, Date()))
        lock.unlock()
    }

    var results: [HealthResult] {
        lock.lock()
        defer { lock.unlock() }
        return _events.map(\.result)
    }

    var times: [Date] {
        lock.lock()
        defer { lock.unlock() }
        return _events.map(\.at)
    }

    /// `pass`/`fail` per event.
    var flips: [String] { results.map { $0.passing ? "pass" : "fail" } }
}

/// An HTTP server answering every request with the current `status`, then closing.
func statusServer(_ status: LockedValue<Int>) throws -> LoopbackServer {
    try LoopbackServer(id: "status") { _, fd in
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.firstRange(of: Array("\r\n\r\n".utf8)) == nil {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            request += buffer[0..<n]
        }
        let code = status.value
        _ = TCPSocket.sendAll(fd, Array("HTTP/1.1 \(code) Whatever\r\nContent-Length: 0\r\n\r\n".utf8))
    }
}

func monitor(_ checks: [HealthCheckSpec], events: HealthEvents) -> HealthMonitor {
    HealthMonitor(instance: "app.1", checks: checks) { events.append($0) }
}

@Suite struct HealthMonitorTests {
    @Test func httpCheckReportsEachFlipOnce() async throws {
        let status = LockedValue(200)
        let server = try statusServer(status)
        defer { server.stop() }
        let events = HealthEvents()
        let health = monitor([HealthCheckSpec(name: "alive", kind: .http, port: server.port, path: "/health",
                                              interval: 0.05, timeout: 2)], events: events)
        health.start()
        defer { health.stop() }

        #expect(await eventually { events.flips == ["pass"] })
        #expect(health.results == [HealthResult(instance: "app.1", name: "alive", status: .passing, detail: "HTTP 200")])

        status.set(500)
        #expect(await eventually { events.flips == ["pass", "fail"] })
        #expect(events.results.last?.detail == "HTTP 500")
        #expect(health.results.first?.status == .failing)
        // Still failing at the following intervals: not reported again.
        let probes = server.accepted
        #expect(await eventually { server.accepted >= probes + 4 })
        #expect(events.flips == ["pass", "fail"])

        // Fly follows no redirect: a 301 still fails (the detail changes, the verdict does not).
        status.set(301)
        #expect(await eventually { health.results.first?.detail == "HTTP 301" })
        #expect(health.results.first?.status == .failing && events.flips == ["pass", "fail"])
        status.set(204) // any 2xx passes
        #expect(await eventually { events.flips == ["pass", "fail", "pass"] })
        #expect(events.results.last?.detail == "HTTP 204")
        #expect(events.results.allSatisfy { $0.instance == "app.1" && $0.name == "alive" })
    }

    @Test func passingChecksAreNotReportedEveryInterval() async throws {
        let server = try LoopbackServer.http(id: "a")
        defer { server.stop() }
        let events = HealthEvents()
        let health = monitor([HealthCheckSpec(name: "tcp", kind: .tcp, port: server.port, interval: 0.03)], events: events)
        health.start()
        defer { health.stop() }
        #expect(await eventually { server.accepted >= 5 })
        #expect(events.flips == ["pass"])
        #expect(health.results.first?.detail == "connected")
    }

    @Test func tcpCheckAgainstAClosedPortFails() async throws {
        let events = HealthEvents()
        let dead = try RefusedPort()
        let health = monitor([HealthCheckSpec(name: "tcp", kind: .tcp, port: dead.port, interval: 10)],
                             events: events)
        health.start()
        defer { health.stop() }
        #expect(await eventually { events.flips == ["fail"] })
        #expect(events.results.first?.detail == "connection refused")
        #expect(health.results.first?.status == .failing)
        #expect(!health.allPassing)
    }

    @Test func httpCheckTimesOutOnAServerThatNeverAnswers() async throws {
        let server = try LoopbackServer.http(id: "hang") // /hang reads forever
        defer { server.stop() }
        let events = HealthEvents()
        let health = monitor([HealthCheckSpec(name: "slow", kind: .http, port: server.port, path: "/hang",
                                              interval: 30, timeout: 0.2)], events: events)
        let started = Date()
        health.start()
        defer { health.stop() }
        #expect(await eventually { events.flips == ["fail"] })
        #expect(events.results.first?.detail == "timed out after 200ms")
        #expect(events.times.first.map { $0.timeIntervalSince(started) >= 0.19 } == true)
        #expect(server.accepted == 1)
    }

    @Test func gracePeriodSuppressesEarlyFailures() async throws {
        let status = LockedValue(500)
        let server = try statusServer(status)
        defer { server.stop() }
        let events = HealthEvents()
        let health = monitor([HealthCheckSpec(name: "warm", kind: .http, port: server.port, interval: 0.05,
                                              timeout: 1, gracePeriod: 2)], events: events)
        let started = Date()
        health.start()
        defer { health.stop() }
        // Several failing probes within the grace period: nothing reported, the check is pending.
        #expect(await eventually { server.accepted >= 3 })
        let early = Date().timeIntervalSince(started)
        if early < 1.9 {
            #expect(events.flips.isEmpty)
            #expect(health.results.first?.status == .pending)
            #expect(health.results.first?.detail.contains("HTTP 500") == true)
        }
        // After it, the failure is reported.
        #expect(await eventually(timeout: 10) { events.flips == ["fail"] })
        #expect(events.times.first.map { $0.timeIntervalSince(started) >= 1.95 } == true)
    }

    @Test func passWithinTheGracePeriodIsReportedAtOnce() async throws {
        let status = LockedValue(200)
        let server = try statusServer(status)
        defer { server.stop() }
        let events = HealthEvents()
        let health = monitor([HealthCheckSpec(name: "ok", kind: .http, port: server.port, interval: 0.05,
                                              gracePeriod: 30)], events: events)
        health.start()
        defer { health.stop() }
        #expect(await eventually { events.flips == ["pass"] })
        // A failure while still within the grace period is not reported either.
        status.set(503)
        let probes = server.accepted
        #expect(await eventually { server.accepted >= probes + 3 })
        #expect(events.flips == ["pass"])
    }

    @Test func severalChecksReportIndependently() async throws {
        let dead = try RefusedPort()
        let server = try LoopbackServer.http(id: "a")
        defer { server.stop() }
        let events = HealthEvents()
        let health = monitor([
            HealthCheckSpec(name: "ok", kind: .http, port: server.port, path: "/status/204", interval: 10),
            HealthCheckSpec(name: "missing", kind: .http, port: server.port, path: "/nothing-here", interval: 10),
            HealthCheckSpec(name: "down", kind: .tcp, port: dead.port, interval: 10),
        ], events: events)
        health.start()
        defer { health.stop() }
        #expect(await eventually { events.results.count == 3 })
        let byName = Dictionary(uniqueKeysWithValues: health.results.map { ($0.name, $0) })
        #expect(byName["ok"]?.status == .passing && byName["ok"]?.detail == "HTTP 204", "\(health.results)")
        #expect(byName["missing"]?.status == .failing && byName["missing"]?.detail == "HTTP 404", "\(health.results)")
        #expect(byName["down"]?.status == .failing && byName["down"]?.detail == "connection refused", "\(health.results)")
        #expect(health.results.map(\.name) == ["ok", "missing", "down"])
    }

    @Test func httpsCheckRunsAsATCPConnect() async throws {
        let server = try LoopbackServer.readToEnd(id: "tls") // speaks no HTTP
        defer { server.stop() }
        let events = HealthEvents()
        let health = monitor([HealthCheckSpec(name: "tls", kind: .http, port: server.port, interval: 10,
                                              protocol: "https")], events: events)
        health.start()
        defer { health.stop() }
        #expect(await eventually { events.flips == ["pass"] })
        #expect(events.results.first?.detail.contains("TCP connect") == true)
    }

    @Test func requestCarriesMethodPathAndHeaders() async throws {
        let seen = LockedValue<String>("")
        let server = try LoopbackServer(id: "echo") { _, fd in
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while request.firstRange(of: Array("\r\n\r\n".utf8)) == nil {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                request += buffer[0..<n]
            }
            seen.set(String(decoding: request, as: UTF8.self))
            _ = TCPSocket.sendAll(fd, Array("HTTP/1.0 200 OK\r\n\r\n".utf8))
        }
        defer { server.stop() }
        let events = HealthEvents()
        let health = monitor([HealthCheckSpec(name: "h", kind: .http, port: server.port, path: "/up?x=1", method: "head",
                                              headers: [(name: "X-Check", value: "yes")], interval: 10)], events: events)
        health.start()
        defer { health.stop() }
        #expect(await eventually { events.flips == ["pass"] })
        #expect(seen.value == "HEAD /up?x=1 HTTP/1.1\r\nHost: localhost\r\nX-Check: yes\r\nConnection: close\r\n\r\n")
    }

    @Test func specFromConfigFillsDefaults() {
        let bare = HealthCheckSpec(HealthCheck(name: "c", kind: .tcp, origin: .topLevel, port: 9000, processes: ["app"]))
        #expect(bare == HealthCheckSpec(name: "c", kind: .tcp, port: 9000, path: "/", method: "GET", headers: [],
                                        interval: 15, timeout: 2, gracePeriod: 0, protocol: "http"))
        let full = HealthCheckSpec(HealthCheck(name: "h", kind: .http, origin: .httpService, port: 8080, path: "/health",
                                               method: "POST", protocol: "https", interval: .milliseconds(1500),
                                               timeout: .milliseconds(250), gracePeriod: .seconds(5),
                                               headers: [EnvVariable("A", "b")], processes: ["web"]))
        #expect(full.interval == 1.5 && full.timeout == 0.25 && full.gracePeriod == 5)
        #expect(full.path == "/health" && full.method == "POST" && full.protocol == "https")
        #expect(full.headers.count == 1 && full.headers[0].name == "A" && full.headers[0].value == "b")
        #expect(formatCheckDuration(2) == "2s" && formatCheckDuration(0.5) == "500ms" && formatCheckDuration(1.5) == "1.5s")
    }

    @Test func twoHundredMonitorsShareOneThreadThatEndsWhenTheyStop() async throws {
        let server = try LoopbackServer.http(id: "many")
        defer { server.stop() }
        let events = HealthEvents()
        let scheduler = HealthScheduler()
        let monitors = (0..<200).map { index in
            HealthMonitor(instance: "app.\(index)", checks: [
                HealthCheckSpec(name: "tcp", kind: .tcp, port: server.port, interval: 60),
            ], scheduler: scheduler) { events.append($0) }
        }
        #expect(!scheduler.isRunning)
        for health in monitors { health.start() }
        #expect(scheduler.isRunning)
        #expect(scheduler.scheduledCount == 200)
        #expect(await eventually(timeout: 20) { events.results.count == 200 })
        #expect(events.results.allSatisfy { $0.passing })
        #expect(Set(events.results.map(\.instance)).count == 200)
        for health in monitors { health.stop() }
        #expect(scheduler.scheduledCount == 0)
        #expect(await eventually { !scheduler.isRunning })
        #expect(await eventually { server.openConnections == 0 })
    }

    @Test func stoppedMonitorReportsNothingMore() async throws {
        let status = LockedValue(200)
        let server = try statusServer(status)
        defer { server.stop() }
        let events = HealthEvents()
        let scheduler = HealthScheduler()
        let health = HealthMonitor(instance: "app.1", checks: [
            HealthCheckSpec(name: "x", kind: .http, port: server.port, interval: 0.02),
        ], scheduler: scheduler) { events.append($0) }
        health.start()
        #expect(await eventually { events.flips == ["pass"] })
        health.stop()
        status.set(500)
        let after = server.accepted
        // A probe that was in flight at stop() may still reach the server, but is never reported.
        #expect(await eventually { server.openConnections == 0 })
        #expect(server.accepted <= after + 1)
        #expect(events.flips == ["pass"])
        #expect(scheduler.scheduledCount == 0)
        health.start() // a stopped monitor stays stopped
        #expect(scheduler.scheduledCount == 0)
        #expect(await eventually { !scheduler.isRunning })
    }
}
