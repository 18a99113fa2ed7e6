import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fly's edge on a laptop: the proxy on internal_port in front of `app=3`.
@Suite(.serialized) struct ProxyTests {
    struct App {
        let dir: URL
        let proxyPort: Int
        let basePort: Int
        let sp: SwiftProc
    }

    /// An app whose `app` group is the demo HTTP server, behind `[http_service]`.
    private func startApp(count: Int = 3, extraService: String = "", extraArgs: [String] = []) async throws -> App {
        let proxyPort = freePorts()
        let basePort = freePorts(count)
        let dir = try makeApp(["fly.toml": """
            app = "proxied"
            kill_timeout = 3
            [processes]
              app = "'\(demoBinary)' --quiet"
            [http_service]
              internal_port = \(proxyPort)
              processes = ["app"]
            \(extraService)
            """])
        let sp = try SwiftProc(["start", "--no-color", "-m", "app=\(count)", "-p", "\(basePort)"] + extraArgs, in: dir)
        #expect(await sp.waitFor("proxy on 127.0.0.1:\(proxyPort)"), "\(sp.stdout.text)\(sp.stderr.text)")
        for i in 0..<count {
            let port = basePort + i
            #expect(await eventually { await blocking { httpGet(port: port, path: "/health")?.status == 200 } })
        }
        return App(dir: dir, proxyPort: proxyPort, basePort: basePort, sp: sp)
    }

    private func instance(_ body: String) -> String? {
        body.split(separator: " ").dropFirst(2).first.map(String.init)  // "hello from app.2 (pid …)"
    }

    @Test func requestsSpreadOverEveryInstance() async throws {
        let app = try await startApp()
        let results = await load(port: app.proxyPort, count: 300, concurrency: 6)
        #expect(results.allSatisfy { $0?.status == 200 })
        var counts: [String: Int] = [:]
        for r in results { if let name = r.flatMap({ instance($0.body) }) { counts[name, default: 0] += 1 } }
        #expect(Set(counts.keys) == ["app.1", "app.2", "app.3"], "\(counts)")
        #expect(counts.values.allSatisfy { $0 >= 50 }, "roughly even: \(counts)")
        app.sp.signal(SIGINT)
        #expect(await app.sp.waitForExit() == 0)
    }

    @Test func aKilledInstanceFailsNoLaterRequest() async throws {
        let app = try await startApp()
        let snapshot = try await runSwiftProc(["status", "--json"], in: app.dir)
        let status = try JSONDecoder().decode(StatusSnapshot.self, from: Data(snapshot.out.utf8))
        let victim = try #require(status.instances.first { $0.name == "app.2" }?.pid)
        let progress = LoadProgress()
        async let during = load(port: app.proxyPort, count: 1000, concurrency: 8, progress: progress)
        #expect(await eventually { progress.completed >= 100 }, "the load is under way before the kill")
        kill(victim, SIGKILL)
        let killedAt = Date()
        let results = await during
        let failed = results.filter { $0?.status != 200 }.count
        // A request in flight on app.2 when it died may fail; one sent after is retried elsewhere.
        #expect(failed <= 8, "\(failed) of 1000 failed")
        let after = await load(port: app.proxyPort, count: 200, concurrency: 8)
        #expect(after.allSatisfy { $0?.status == 200 }, "requests after the kill (\(Date().timeIntervalSince(killedAt))s later): \(after.filter { $0?.status != 200 }.prefix(5))")
        app.sp.signal(SIGINT)
        _ = await app.sp.waitForExit()
    }

    /// Runs `change` while 1,500 requests flow through the proxy (started before it, still
    /// running during it) and expects none of them to fail.
    private func expectNoRequestDropped(_ app: App, during change: () async throws -> Void) async throws {
        let progress = LoadProgress()
        progress.hold()
        async let traffic = load(port: app.proxyPort, count: 1500, concurrency: 6, progress: progress)
        #expect(await eventually { progress.completed >= 50 })
        try await change()
        let doneAtChangeEnd = progress.completed
        progress.release()
        let results = await traffic
        let failed = results.filter { $0?.status != 200 }.count
        #expect(failed == 0, "\(failed) of \(results.count) failed")
        #expect(results.count > doneAtChangeEnd, "the change happened while requests were still being sent")
        app.sp.signal(SIGINT)
        _ = await app.sp.waitForExit()
    }

    @Test func scalingDownAndUpUnderLoadDropsNothing() async throws {
        let app = try await startApp()
        try await expectNoRequestDropped(app) {
            let down = try await runSwiftProc(["scale", "app=1"], in: app.dir)
            #expect(down.status == 0, "\(down.err)")
            let up = try await runSwiftProc(["scale", "app=3"], in: app.dir)
            #expect(up.status == 0, "\(up.err)")
        }
    }

    @Test func rollingRestartUnderLoadDropsNothing() async throws {
        let app = try await startApp()
        try await expectNoRequestDropped(app) {
            let restart = try await runSwiftProc(["restart", "app"], in: app.dir)
            #expect(restart.status == 0, "\(restart.err)")
        }
    }

    @Test func idleInstancesStopAndAConnectionStartsOneAgain() async throws {
        let app = try await startApp(count: 2, extraService: """
              auto_stop_machines = "stop"
              auto_start_machines = true
              min_machines_running = 0
            """.replacingOccurrences(of: "  ", with: ""), extraArgs: ["--idle-timeout", "1s"])
        // fly.toml's [http_service] keys above continue its table.
        #expect(await app.sp.waitFor("app.1 exited with status 0 — stopped (idle)", timeout: 15), "\(app.sp.stdout.text)")
        #expect(await app.sp.waitFor("app.2 exited with status 0 — stopped (idle)", timeout: 15))
        let s = try await runSwiftProc(["status", "--json"], in: app.dir)
        let snap = try JSONDecoder().decode(StatusSnapshot.self, from: Data(s.out.utf8))
        #expect(snap.instances.allSatisfy { $0.state == "stopped" && $0.detail == "idle" }, "\(snap.instances)")
        let table = try await runSwiftProc(["status"], in: app.dir)
        #expect(table.out.contains("stopped (idle)"), "\(table.out)")
        let r = await blocking { httpGet(port: app.proxyPort, path: "/", timeout: 20) }
        #expect(r?.status == 200, "the waiting request is served by an instance started for it")
        #expect(app.sp.stdout.text.contains("a connection is waiting"))
        app.sp.signal(SIGINT)
        #expect(await app.sp.waitForExit() == 0)
    }

    @Test func aFailingCheckTakesAnInstanceOutOfRotationUntilItPassesAgain() async throws {
        let app = try await startApp(extraService: """
            [[http_service.checks]]
              path = "/health"
              interval = 100
              timeout = 1000
              grace_period = 0
            """)
        func statusOf(_ name: String) async throws -> InstanceStatus? {
            let r = try await runSwiftProc(["status", "--json"], in: app.dir)
            return try JSONDecoder().decode(StatusSnapshot.self, from: Data(r.out.utf8)).instances.first { $0.name == name }
        }
        let passing = try await eventually { try await statusOf("app.2")?.checksPassing == 1 }
        #expect(passing)
        try Data().write(to: app.dir.appendingPathComponent("unhealthy.app.2"))
        let failing = try await eventually { let s = try await statusOf("app.2"); return s?.checksTotal == 1 && s?.checksPassing == 0 }
        #expect(failing)
        #expect(await app.sp.waitFor("app.2 check"), "the flip is logged")
        let table = try await runSwiftProc(["status"], in: app.dir)
        #expect(table.out.contains("1 total, 1 critical"), "fly status's wording: \(table.out)")
        let whileFailing = await load(port: app.proxyPort, count: 60, concurrency: 4)
        let served = Set(whileFailing.compactMap { $0.flatMap { instance($0.body) } })
        #expect(whileFailing.allSatisfy { $0?.status == 200 })
        #expect(served == ["app.1", "app.3"], "app.2 is out of rotation: \(served)")
        try FileManager.default.removeItem(at: app.dir.appendingPathComponent("unhealthy.app.2"))
        let back = try await eventually { try await statusOf("app.2")?.checksPassing == 1 }
        #expect(back)
        let after = await load(port: app.proxyPort, count: 60, concurrency: 4)
        #expect(Set(after.compactMap { $0.flatMap { instance($0.body) } }) == ["app.1", "app.2", "app.3"])
        // Before it first passed, app.2 may have been probed before it listened ("connection refused").
        let lines = app.sp.stdout.text.split(separator: "\n").filter { $0.contains("app.2 check") }
        let flips = lines.drop { !$0.contains("is passing") }.dropFirst()
        #expect(flips.count == 2, "one line per change, not per interval: \(lines)")
        #expect(flips.first?.hasSuffix("is failing (HTTP 500)") == true && flips.last?.hasSuffix("is passing (HTTP 200)") == true)
        app.sp.signal(SIGINT)
        #expect(await app.sp.waitForExit() == 0)
    }

    @Test func aConnectionArrivingWhileAnInstanceStopsForIdlenessStartsItAgain() async throws {
        let proxyPort = freePorts()
        let basePort = freePorts(1)
        // The shell outlives the demo by 2 s on SIGINT, so the instance is "stopping" for a while.
        let dir = try makeApp(["fly.toml": """
            [processes]
              app = "trap 'sleep 2; exit 0' INT; '\(demoBinary)' --quiet"
            [http_service]
              internal_port = \(proxyPort)
              auto_stop_machines = "stop"
              min_machines_running = 0
            """])
        let sp = try SwiftProc(["start", "--no-color", "-p", "\(basePort)", "--idle-timeout", "1s"], in: dir)
        #expect(await sp.waitFor("stopping it (auto_stop_machines)", timeout: 20), "\(sp.stdout.text)")
        let started = Date()
        let r = await blocking { httpGet(port: proxyPort, path: "/", timeout: 25) }
        #expect(r?.status == 200, "\(sp.stdout.text)")
        #expect(Date().timeIntervalSince(started) < 15)
        sp.signal(SIGINT)
        _ = await sp.waitForExit()
    }

    @Test func aPortInUseIsAClearError() async throws {
        let busy = freePorts()
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(busy).bigEndian
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(holder, 1)
        let dir = try makeApp(["fly.toml": """
            [processes]
              app = "exec sleep 1000"
            [http_service]
              internal_port = \(busy)
            """])
        let r = try await runSwiftProc(["start", "--no-color"], in: dir)
        #expect(r.status == 1)
        #expect(r.err.contains("\(busy)") && r.err.contains("--no-proxy"), "\(r.err)")
        #expect(!r.out.contains("started (pid"))
        let off = try SwiftProc(["start", "--no-color", "--no-proxy"], in: dir)
        #expect(await off.waitFor("app.1 started"))
        off.signal(SIGINT)
        #expect(await off.waitForExit() == 0, "\(off.stdout.text)\(off.stderr.text)")
    }
}
