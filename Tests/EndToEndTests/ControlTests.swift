import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `scale`, `status`, `logs`, `restart`, `stop` against a running `swiftproc start`.
@Suite(.serialized) struct ControlTests {
    static let fly = """
        app = "ctl"
        kill_timeout = 2
        [processes]
          app = "echo booted $PS; exec sleep 1000"
          worker = "echo booted $PS; exec sleep 1000"
        """

    private func status(_ app: URL) async throws -> StatusSnapshot {
        let r = try await runSwiftProc(["status", "--json"], in: app)
        #expect(r.status == 0, "\(r.err)")
        return try JSONDecoder().decode(StatusSnapshot.self, from: Data(r.out.utf8))
    }

    private func startApp(_ extra: [String] = []) async throws -> (URL, SwiftProc) {
        let app = try makeApp(["fly.toml": Self.fly])
        let sp = try SwiftProc(["start", "--no-color", "-m", "app=1,worker=1"] + extra, in: app)
        #expect(await eventually {
            FileManager.default.fileExists(atPath: app.appendingPathComponent(".swiftproc/swiftproc.sock").path)
                && sp.stdout.text.contains("booted worker.1")
        })
        return (app, sp)
    }

    @Test func relativeScalesArrivingTogetherAllCountAndEachReplyShowsItsOwnStep() async throws {
        let (app, sp) = try await startApp()
        // Each applies to the formation as it is when it arrives, not to a copy read earlier.
        let replies = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let r = try await runSwiftProc(["scale", "worker=+1"], in: app)
                    #expect(r.status == 0, "\(r.err)")
                    return r.out
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(try await status(app).groups.map(\.desired) == [1, 5], "\(replies)")
        let steps = replies.compactMap { $0.split(separator: "\n").first { $0.hasPrefix("worker: ") } }.map(String.init).sorted()
        #expect(steps == ["worker: 1 → 2", "worker: 2 → 3", "worker: 3 → 4", "worker: 4 → 5"], "\(replies)")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func scalingUpWhileInstancesStillStopCountsThePortsTheyHold() async throws {
        let base = freePorts(3)
        // Two workers that ignore the kill signal (SIGKILL only after a minute: the test ends
        // their stop itself, so a slow run cannot see them gone early); the proxy listens on the
        // port a third worker would take.
        let app = try makeApp(["fly.toml": """
            app = "stopping"
            kill_timeout = 60
            [processes]
              worker = "trap '' INT; echo booted $PS; exec sleep 1000"
            [http_service]
              internal_port = \(base + 2)
              processes = ["worker"]
            """])
        let sp = try SwiftProc(["start", "--no-color", "-m", "worker=2", "-p", "\(base)"], in: app)
        #expect(await eventually { sp.stdout.text.contains("booted worker.2") }, "\(sp.stdout.text)\(sp.stderr.text)")
        let workers = Array(try await instancePIDs(app).values)
        #expect(workers.count == 2)
        let down = Task { try await runSwiftProc(["scale", "worker=0"], in: app, timeout: 120) }
        #expect(try await eventually { try await status(app).instances.contains { $0.state == "stopping" } })
        // worker.1 and worker.2 still hold their ports: new ones would be worker.3 (the proxy's
        // port) and worker.4.
        let early = try await runSwiftProc(["scale", "worker=2"], in: app)
        #expect(early.status == 1)
        #expect(early.err.contains("still stopping") && early.err.contains("\(base + 2)"), "\(early.err)")
        for pid in workers { kill(pid, SIGKILL) }
        #expect(try await down.value.status == 0)
        let later = try await runSwiftProc(["scale", "worker=2"], in: app)
        #expect(later.status == 0, "\(later.err)")
        #expect(try await status(app).instances.map(\.name) == ["worker.1", "worker.2"])
        sp.signal(SIGINT)
        // The workers ignore SIGINT: end them (and any restart that slipped in) until swiftproc is done.
        #expect(await eventually(timeout: 30) {
            for pid in descendants(of: sp.pid) where
                ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").hasPrefix("sleep") {
                kill(pid, SIGKILL)
            }
            return !sp.process.isRunning
        })
    }

    @Test func scaleChangesTheLiveFormationAndStatusAgreesWithProc() async throws {
        let (app, sp) = try await startApp()
        let up = try await runSwiftProc(["scale", "worker=3"], in: app)
        #expect(up.status == 0, "\(up.err)")
        #expect(up.out.contains("worker: 1 → 3"))
        let scaled = try await eventually(timeout: 1) {
            let s = try await status(app)
            return s.instances.filter { $0.group == "worker" && $0.pid != nil }.count == 3
        }
        #expect(scaled)
        var snap = try await status(app)
        for i in snap.instances {
            let pid = try #require(i.pid)
            let cmdline = try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)
            #expect(cmdline.hasPrefix("sleep\u{0}1000"), "\(i.name) pid \(pid) is \(cmdline)")
            #expect(i.state == "running")
        }
        #expect(snap.instances.map(\.name) == ["app.1", "worker.1", "worker.2", "worker.3"])
        #expect(snap.instances.first { $0.name == "worker.3" }?.port == 5102)
        let workerPids = snap.instances.filter { $0.group == "worker" }.compactMap(\.pid)

        let down = try await runSwiftProc(["scale", "worker=0"], in: app)
        #expect(down.status == 0)
        snap = try await status(app)
        #expect(snap.instances.filter { $0.group == "worker" }.isEmpty)
        #expect(await eventually { workerPids.allSatisfy { kill($0, 0) != 0 } })

        let back = try await runSwiftProc(["scale", "count", "worker=2"], in: app)
        #expect(back.status == 0)
        snap = try await status(app)
        #expect(snap.instances.filter { $0.group == "worker" }.map(\.index) == [1, 2])

        let relative = try await runSwiftProc(["scale", "worker=+1", "app=-1"], in: app)
        #expect(relative.status == 0, "\(relative.err)")
        snap = try await status(app)
        #expect(snap.groups.map(\.desired) == [0, 3])

        let bad = try await runSwiftProc(["scale", "wrker=2"], in: app)
        #expect(bad.status == 1)
        #expect(bad.err.contains("wrker") && bad.err.contains("worker"), "\(bad.err)")
        #expect(try await status(app).groups.map(\.desired) == [0, 3], "a bad request changes nothing")

        let table = try await runSwiftProc(["ps"], in: app)
        #expect(table.out.contains("PROCESS") && table.out.contains("worker.3"), "\(table.out)")

        let stop = try await runSwiftProc(["stop"], in: app)
        #expect(stop.status == 0, "\(stop.err)")
        #expect(await sp.waitForExit() == 0)
    }

    @Test func logsPrintsTheMostRecentLinesAndFollows() async throws {
        let app = try makeApp(["Procfile": "counter: i=0; while [ $i -lt 20 ]; do i=$((i+1)); echo line-$i; done; exec sleep 1000\n"])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("line-20"))
        let recent = try await runSwiftProc(["logs", "-n", "5", "--no-follow", "--no-timestamps", "counter"], in: app)
        #expect(recent.status == 0, "\(recent.err)")
        let lines = recent.out.split(separator: "\n").map(String.init)
        #expect(lines == (16...20).map { "counter.1 | line-\($0)" }, "\(recent.out)")

        // A follower sees a new line quickly: a restart prints system lines. Its backlog line
        // arrives only once it is subscribed, so waiting for it is the synchronisation.
        let follower = try SwiftProc(["logs", "-n", "1", "--no-timestamps", "counter"], in: app)
        #expect(await follower.waitFor("counter.1 | line-20"))
        let restart = try await runSwiftProc(["restart", "counter.1"], in: app)
        #expect(restart.status == 0, "\(restart.err)")
        #expect(await follower.waitFor("counter.1 | line-1\n", timeout: 2), "the restarted child's lines: \(follower.stdout.text)")
        follower.signal(SIGINT)
        #expect(await follower.waitForExit() == 0)

        let unknown = try await runSwiftProc(["logs", "--no-follow", "nosuch"], in: app)
        #expect(unknown.status == 1)
        #expect(unknown.err.contains("nosuch"))
        sp.signal(SIGINT)
        _ = await sp.waitForExit()
    }

    @Test func clientsWithoutASupervisorSaySoInOneLine() async throws {
        let app = try makeApp(["Procfile": "web: sleep 1\n"])
        for command in [["status"], ["scale", "web=2"], ["logs"], ["restart"], ["stop"]] {
            let r = try await runSwiftProc(command, in: app)
            #expect(r.status == 1, "\(command)")
            #expect(r.err.split(separator: "\n").count == 1, "\(command): \(r.err)")
            #expect(r.err.contains("no swiftproc is running"), "\(command): \(r.err)")
        }
    }

    @Test func aSecondStartInTheSameDirectoryRefuses() async throws {
        let (app, sp) = try await startApp()
        let second = try await runSwiftProc(["start", "--no-color"], in: app)
        #expect(second.status == 1)
        #expect(second.err.contains("already running"), "\(second.err)")
        #expect(!second.out.contains("started (pid"), "it refused before spawning anything")
        sp.signal(SIGKILL)
        _ = await sp.waitForExit()
        // The socket of a dead supervisor is stale: the next start replaces it.
        let third = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await third.waitFor("booted worker.1"), "\(third.stderr.text)")
        third.signal(SIGINT)
        #expect(await third.waitForExit() == 0)
    }

    @Test func garbageOnTheSocketLeavesTheSupervisorServing() async throws {
        let (app, sp) = try await startApp()
        let path = app.appendingPathComponent(".swiftproc/swiftproc.sock").path
        func raw(_ bytes: [UInt8], closeEarly: Bool = false) {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { buf in
                for (i, b) in path.utf8.enumerated() where i < buf.count - 1 { buf[i] = b }
            }
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if !closeEarly { var b = [UInt8](repeating: 0, count: 256); _ = recv(fd, &b, b.count, 0) }
            close(fd)
        }
        var rng = SystemRandomNumberGenerator()
        raw((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) } + [10])
        raw([UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20), closeEarly: false)
        raw(Array("{\"version\":1,\"comm".utf8), closeEarly: true)
        raw(Array("{\"version\":1,\"command\":\"frob\",\"arguments\":[]}\n".utf8))
        let s = try await runSwiftProc(["status", "--json"], in: app)
        #expect(s.status == 0, "\(s.err)")
        #expect(sp.process.isRunning)
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    /// `start -d` inside a real terminal session (util-linux `script` gives it a pty as its
    /// controlling terminal); the terminal goes away when `start -d` returns.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func daemonSurvivesTheTerminalThatStartedIt() async throws {
        let app = try makeApp(["fly.toml": Self.fly])
        let term = Process()
        term.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        term.arguments = ["-qec", "'\(swiftprocBinary)' start -d", "/dev/null"]
        term.currentDirectoryURL = app
        term.standardInput = FileHandle.nullDevice
        term.standardOutput = FileHandle.nullDevice
        term.standardError = FileHandle.nullDevice
        try term.run()
        #expect(await eventually(timeout: 30) { !term.isRunning })
        #expect(term.terminationStatus == 0)
        // The terminal is gone; give a hangup time to land, then the supervisor must still answer.
        let snap = try await status(app)
        let supervisor = snap.pid
        #expect(!(await eventually(timeout: 1) { kill(supervisor, 0) != 0 }), "the daemon died with its terminal")
        #expect(try await status(app).instances.allSatisfy { $0.state == "running" })
        let stop = try await runSwiftProc(["stop"], in: app)
        #expect(stop.status == 0, "\(stop.err)")
        #expect(await eventually { kill(supervisor, 0) != 0 })
    }

    @Test func daemonModeDetachesAndStopEndsIt() async throws {
        let app = try makeApp(["fly.toml": Self.fly])
        let start = try await runSwiftProc(["start", "-d"], in: app)
        #expect(start.status == 0, "\(start.err)")
        #expect(start.out.contains("swiftproc logs"))
        let snap = try await status(app)
        #expect(snap.instances.count == 2)
        let supervisor = snap.pid
        #expect(getpgid(supervisor) != getpgrp(), "the daemon is not in our process group")
        let logs = try await runSwiftProc(["logs", "--no-follow", "--no-timestamps"], in: app)
        #expect(logs.out.contains("booted app.1"))
        #expect(await eventually {
            ((try? String(contentsOf: app.appendingPathComponent(".swiftproc/swiftproc.log"), encoding: .utf8)) ?? "")
                .contains("booted worker.1")
        })
        let pids = snap.instances.compactMap(\.pid)
        let stop = try await runSwiftProc(["stop"], in: app)
        #expect(stop.status == 0, "\(stop.err)")
        #expect(await eventually { kill(supervisor, 0) != 0 && pids.allSatisfy { kill($0, 0) != 0 } })
    }
}

/// A `logs` follower that stops reading must not slow the supervisor or lose its place.
@Suite(.serialized) struct SlowFollowerTests {
    @Test func stoppedFollowerDoesNotStallTheSupervisor() async throws {
        let app = try makeApp(["Procfile": """
            burst: echo waiting; while [ ! -e go ]; do sleep 0.05; done; awk 'BEGIN { for (i = 1; i <= 200000; i++) print "n " i }'; while [ ! -e go2 ]; do sleep 0.05; done; echo after-resume; exec sleep 1000
            """])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps", "--no-tty"], in: app)
        #expect(await sp.waitFor("burst.1 | waiting", timeout: 30))
        // A few lines of backlog, so a system line logged after "waiting" cannot hide it; the
        // deadlines are generous for ThreadSanitizer's slow start-up, never slept through.
        let follower = try SwiftProc(["logs", "-n", "5", "--no-timestamps", "--no-color"], in: app)
        // The backlog line arrives only after the follower is subscribed.
        #expect(await follower.waitFor("burst.1 | waiting", timeout: 30), "\(follower.stdout.text)\(follower.stderr.text)")
        follower.signal(SIGSTOP)
        try Data().write(to: app.appendingPathComponent("go"))
        let last = Array("burst.1 | n 200000\n".utf8)
        let supervisorKeptUp = await eventually(timeout: 60, every: 0.1) { sp.stdout.data.firstRange(of: last) != nil }
        #expect(supervisorKeptUp, "the supervisor's own output stalled behind a stopped client")
        follower.signal(SIGCONT)
        #expect(await follower.waitFor("lines dropped]", timeout: 30), "it was skipped ahead, with a marker")
        try Data().write(to: app.appendingPathComponent("go2"))
        #expect(await follower.waitFor("burst.1 | after-resume", timeout: 10), "and then follows live lines again")
        follower.signal(SIGINT)
        _ = await follower.waitForExit()
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }
}
