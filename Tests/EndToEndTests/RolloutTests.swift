import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rollouts as `fly deploy` does them: readiness-gated restarts, draining on Ctrl-C, `deploy`,
/// `start --watch`, and autostart of stopped instances — under real load through the proxy.
@Suite(.serialized) struct RolloutTests {
    /// Requests from `clients` threads until stopped, each with its status and how long it took.
    final class ContinuousLoad: @unchecked Sendable {
        private let lock = NSLock()
        private var results: [(status: Int?, seconds: Double)] = []
        private var stopped = false
        private var running = 0

        init(port: Int, clients: Int) {
            running = clients
            for _ in 0..<clients {
                Thread { [self] in
                    while !isStopped {
                        let start = Date()
                        let r = httpGet(port: port, path: "/", timeout: 10)
                        record(r?.status, Date().timeIntervalSince(start))
                    }
                    lock.lock(); running -= 1; lock.unlock()
                }.start()
            }
        }

        private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }
        private func record(_ status: Int?, _ seconds: Double) { lock.lock(); results.append((status, seconds)); lock.unlock() }
        var count: Int { lock.lock(); defer { lock.unlock() }; return results.count }

        func stop() async -> [(status: Int?, seconds: Double)] {
            lock.withLock { stopped = true }
            _ = await eventually(timeout: 15) { self.lock.withLock { self.running == 0 } }
            return lock.withLock { results }
        }
    }

    struct App {
        let dir: URL
        let proxyPort: Int
        let basePort: Int
        let sp: SwiftProc
    }

    /// The demo server behind [http_service], booting `bootDelay` seconds after it starts.
    func startApp(count: Int = 2, bootDelay: Int = 0, extra: String = "", files: [String: String] = [:],
                  args: [String] = []) async throws -> App {
        let proxyPort = freePorts()
        let basePort = freePorts(count)
        let boot = bootDelay > 0 ? "sleep \(bootDelay); " : ""
        let dir = try makeApp(files.merging(["fly.toml": """
            app = "rollout"
            kill_timeout = 6
            [processes]
              app = "\(boot)if [ -f broken ]; then exec sleep 1000; fi; exec '\(demoBinary)' --quiet"
            [http_service]
              internal_port = \(proxyPort)
              processes = ["app"]
            \(extra)
            """]) { a, _ in a })
        let sp = try SwiftProc(["start", "--no-color", "-m", "app=\(count)", "-p", "\(basePort)"] + args, in: dir)
        #expect(await sp.waitFor("proxy on 127.0.0.1:\(proxyPort)"), "\(sp.stdout.text)\(sp.stderr.text)")
        for i in 0..<count {
            #expect(await eventually(timeout: 20) { await blocking { httpGet(port: basePort + i, path: "/health")?.status == 200 } })
        }
        return App(dir: dir, proxyPort: proxyPort, basePort: basePort, sp: sp)
    }

    func pids(_ app: App) async throws -> [String: Int32] { try await instancePIDs(app.dir) }

    @Test func aRollingRestartWaitsForEachReplacementToBeReady() async throws {
        let app = try await startApp(bootDelay: 2)
        let before = try await pids(app)
        let load = ContinuousLoad(port: app.proxyPort, clients: 4)
        #expect(await eventually { load.count >= 20 })
        let restart = try await runSwiftProc(["restart", "app"], in: app.dir, timeout: 60)
        let countAtEnd = load.count
        #expect(await eventually { load.count >= countAtEnd + 20 })
        let results = await load.stop()
        #expect(restart.status == 0, "\(restart.err)")
        let after = try await pids(app)
        #expect(Set(after.keys) == ["app.1", "app.2"] && after["app.1"] != before["app.1"] && after["app.2"] != before["app.2"])
        let failed = results.filter { $0.status != 200 }
        #expect(failed.isEmpty, "\(failed.count) of \(results.count) failed")
        let slowest = results.map(\.seconds).max() ?? 0
        #expect(slowest < 1.5, "slowest request took \(slowest)s of \(results.count)")
        // Each replacement was waited for: app.2 went down only after app.1 answered again.
        let out = app.sp.stdout.text
        let app1Back = try #require(out.range(of: "app.1 started (pid \(after["app.1"]!)"))
        let app2Down = try #require(out.range(of: "app.2 exited"))
        #expect(app1Back.lowerBound < app2Down.lowerBound)
        app.sp.signal(SIGINT)
        #expect(await app.sp.waitForExit() == 0)
    }

    @Test func aReplacementThatNeverGetsReadyStopsTheRollout() async throws {
        let app = try await startApp(extra: "[deploy]\n  wait_timeout = \"2s\"\n")
        let before = try await pids(app)
        try Data().write(to: app.dir.appendingPathComponent("broken"))
        let restart = try await runSwiftProc(["restart"], in: app.dir, timeout: 60)
        #expect(restart.status == 1)
        #expect(restart.err.contains("app.1's replacement is not ready: nothing accepts connections on its port \(app.basePort) "
                                     + "after 2s (wait_timeout) — the rollout stopped; not restarted: app.2"), "\(restart.err)")
        #expect(try await pids(app)["app.2"] == before["app.2"], "the others are left alone")
        app.sp.signal(SIGINT)
        #expect(await app.sp.waitForExit() == 0)
    }

    /// Connections established to `port` on this machine (Linux's /proc), either direction.
    static func established(port: Int) -> Int {
        var count = 0
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            // procfs files report size 0: read to the end rather than by size.
            guard let data = FileHandle(forReadingAtPath: file)?.readDataToEndOfFile() else { continue }
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[3] == "01" else { continue }
                let local = fields[1].split(separator: ":").last.flatMap { Int($0, radix: 16) }
                if local == port { count += 1 }
            }
        }
        return count
    }

    @Test func ctrlCLetsARequestInFlightFinish() async throws {
        let app = try await startApp(count: 1)
        let response = Task.detached { httpGet(port: app.proxyPort, path: "/slow/3000", timeout: 20) }
        // The request has reached the instance: its port has an established connection.
        #expect(await eventually { Self.established(port: app.basePort) >= 1 })
        app.sp.signal(SIGINT)
        let r = await response.value
        #expect(r?.status == 200, "the slow request was cut: \(String(describing: r))")
        #expect(await app.sp.waitForExit() == 0, "\(app.sp.stdout.text)")
        // And no new client got in once the stop began.
        #expect(httpGet(port: app.proxyPort, path: "/", timeout: 2) == nil)
    }

    @Test func deployReplacesOnlyWhatChanged() async throws {
        let toml = { (worker: String, third: String) in """
            app = "deployed"
            kill_timeout = 2
            [processes]
              web = "echo web up; exec sleep 1000"
              worker = "\(worker)"
              \(third)
            """ }
        let dir = try makeApp(["fly.toml": toml("echo worker v1; exec sleep 1000", "old = \"exec sleep 1000\"")])
        let sp = try SwiftProc(["start", "--no-color"], in: dir)
        #expect(await sp.waitFor("old.1 started"))
        func pids() async throws -> [String: Int32] { try await instancePIDs(dir) }
        let before = try await pids()
        // A bad edit changes nothing.
        try "[processes\nweb = 'x'\n".write(to: dir.appendingPathComponent("fly.toml"), atomically: true, encoding: .utf8)
        let bad = try await runSwiftProc(["deploy"], in: dir)
        #expect(bad.status == 1 && bad.err.contains("fly.toml:1:") && bad.err.contains("nothing was changed"), "\(bad.err)")
        #expect(try await pids() == before)

        try toml("echo worker v2; exec sleep 1000", "extra = \"echo extra up; exec sleep 1000\"")
            .write(to: dir.appendingPathComponent("fly.toml"), atomically: true, encoding: .utf8)
        let deploy = try await runSwiftProc(["deploy"], in: dir, timeout: 60)
        #expect(deploy.status == 0, "\(deploy.err)")
        #expect(deploy.out.contains("old: removed (1 stopped)"), "\(deploy.out)")
        #expect(deploy.out.contains("web: unchanged"))
        #expect(deploy.out.contains("worker: command changed — rolling restart"))
        #expect(deploy.out.contains("extra: added (1 started)"))
        let after = try await pids()
        #expect(after["web.1"] == before["web.1"], "web kept its process")
        #expect(after["worker.1"] != nil && after["worker.1"] != before["worker.1"])
        #expect(after["old.1"] == nil && after["extra.1"] != nil)
        #expect(await sp.waitFor("worker v2") && sp.stdout.text.contains("extra up"))
        #expect(kill(before["old.1"]!, 0) != 0, "old.1 is gone")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func startWatchDeploysWhenAFileChanges() async throws {
        let dir = try makeApp(["fly.toml": "[processes]\n  app = \"echo v1 $GREETING; exec sleep 1000\"\n", ".env": "GREETING=hi\n"])
        let sp = try SwiftProc(["start", "--no-color", "--watch"], in: dir)
        #expect(await sp.waitFor("v1 hi", timeout: 30))
        #expect(await sp.waitFor("a change deploys", timeout: 30))
        try "GREETING=hello\n".write(to: dir.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
        #expect(await sp.waitFor("app: env changed — rolling restart", timeout: 30), "\(sp.stdout.text)")
        #expect(await sp.waitFor("v1 hello", timeout: 30))
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func aConnectionStartsAnInstanceThatExitedOnItsOwn() async throws {
        let app = try await startApp(count: 1, extra: "[[restart]]\n  policy = \"never\"\n")
        _ = httpGet(port: app.basePort, path: "/crash")
        #expect(await app.sp.waitFor("app.1 exited with status 1"))
        let r = await blocking { httpGet(port: app.proxyPort, path: "/", timeout: 20) }
        #expect(r?.status == 200, "\(app.sp.stdout.text)")
        #expect(app.sp.stdout.text.contains("app.1 starting: a connection is waiting at http_service"))
        app.sp.signal(SIGINT)
        #expect(await app.sp.waitForExit() == 0)
    }

    @Test func aFailedDeployLeavesTheRunningProxyAsItWas() async throws {
        let proxyPort = freePorts(), base = freePorts(200), busy = freePorts()
        let demo = "'\(demoBinary)' --quiet"
        let toml = { (processes: String, extra: String) in """
            kill_timeout = 2
            [processes]
              web = "exec \(demo)"
              worker = "exec \(demo)"
            [http_service]
              internal_port = \(proxyPort)
              processes = ["\(processes)"]
            \(extra)
            """ }
        let dir = try makeApp(["fly.toml": toml("web", "")])
        let sp = try SwiftProc(["start", "--no-color", "-p", "\(base)"], in: dir)
        #expect(await sp.waitFor("proxy on 127.0.0.1:\(proxyPort)"))
        #expect(await eventually { await blocking { httpGet(port: proxyPort, path: "/")?.body.contains("web.1") == true } })
        // Another program holds the port a new service wants: the deploy fails and changes nothing.
        let holder = try TCPSocket.listen(port: busy)
        defer { TCPSocket.close(holder) }
        try toml("worker", "[[services]]\n  internal_port = \(busy)\n  processes = [\"worker\"]\n")
            .write(to: dir.appendingPathComponent("fly.toml"), atomically: true, encoding: .utf8)
        let deploy = try await runSwiftProc(["deploy"], in: dir)
        #expect(deploy.status == 1 && deploy.err.contains("nothing was changed"), "\(deploy.err)")
        let answers = await load(port: proxyPort, count: 20, concurrency: 2)
        #expect(answers.allSatisfy { $0?.body.contains("web.1") == true }, "still only web answers")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func aDeployKeepsThePortsOfRunningGroupsAndRunsOneDeployAtATime() async throws {
        let toml = { (top: String) in """
            kill_timeout = 2
            [deploy]
              release_command = "echo release begins; sleep 1; echo release ends"
            [processes]
              \(top)
              web = "echo web on $PORT; exec sleep 1000"
              worker = "echo worker on $PORT; exec sleep 1000"
            """ }
        let dir = try makeApp(["fly.toml": toml("")])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps", "-p", "7300"], in: dir)
        #expect(await sp.waitFor("worker on 7400"))
        func status() async throws -> [String: (pid: Int32?, port: Int?)] {
            Dictionary(uniqueKeysWithValues: try await statusSnapshot(dir).instances.map { ($0.name, ($0.pid, $0.port)) })
        }
        let before = try await status()
        // A group added above the others: theirs keep their ports and processes.
        try toml("first = \"echo first on $PORT; exec sleep 1000\"")
            .write(to: dir.appendingPathComponent("fly.toml"), atomically: true, encoding: .utf8)
        async let one = runSwiftProc(["deploy"], in: dir, timeout: 60)
        async let two = runSwiftProc(["deploy"], in: dir, timeout: 60)
        let (a, b) = try await (one, two)
        #expect(a.status == 0 && b.status == 0, "\(a.err)\(b.err)")
        let after = try await status()
        #expect(after["web.1"]?.pid == before["web.1"]?.pid && after["web.1"]?.port == 7300)
        #expect(after["worker.1"]?.pid == before["worker.1"]?.pid && after["worker.1"]?.port == 7400)
        #expect(after["first.1"]?.port == 7500, "the added group takes a free block")
        // The two release commands ran one after the other, never side by side.
        // (The release command's own lines, prefixed `release`; the first run is start's.)
        let events = sp.stdout.text.split(separator: "\n")
            .filter { $0.hasPrefix("release") && ($0.hasSuffix("release begins") || $0.hasSuffix("release ends")) }
        #expect(events.count == 6, "\(events)")
        #expect(events.enumerated().allSatisfy { $0.element.contains($0.offset % 2 == 0 ? "begins" : "ends") }, "\(events)")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func aReplacementThatExitsStopsTheRolloutAtOnce() async throws {
        let dir = try makeApp(["fly.toml": """
            kill_timeout = 2
            [processes]
              app = "if [ -f gone ]; then exit 0; fi; exec sleep 1000"
            [[restart]]
              policy = "never"
            """])
        let sp = try SwiftProc(["start", "--no-color"], in: dir)
        #expect(await sp.waitFor("app.1 started"))
        try Data().write(to: dir.appendingPathComponent("gone"))
        let started = Date()
        let restart = try await runSwiftProc(["restart"], in: dir, timeout: 60)
        #expect(restart.status == 1 && restart.err.contains("restart policy leaves it stopped"), "\(restart.err)")
        #expect(Date().timeIntervalSince(started) < 30, "not the 5-minute wait_timeout")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }
}
