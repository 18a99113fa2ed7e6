import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftproc start` driven as a user would: the built binary, real children, real signals.
@Suite(.serialized) struct StartTests {
    static let reporter = "echo \"pid=$$ ps=$PS port=$PORT group=$FLY_PROCESS_GROUP app=$FLY_APP_NAME machine=$FLY_MACHINE_ID region=$FLY_REGION secret=$SECRET color=$COLOR t=$(date +%s.%N)\"; exec sleep 1000"

    @Test func formationRunsWithEnvironmentPortsAndRestartsAKilledChild() async throws {
        let app = try makeApp([
            "fly.toml": """
            app = "e2e"
            [env]
              COLOR = "blue"
              SECRET = "from-fly-toml"
            [processes]
              app = '\(Self.reporter)'
              worker = '\(Self.reporter)'
            """,
            ".env": "SECRET=from-dotenv\n",
        ])
        let sp = try SwiftProc(["start", "-m", "app=3,worker=3", "--no-color", "--no-timestamps", "-p", "7100"], in: app)
        #expect(await eventually { values("pid", in: sp.stdout.text, lines: "| pid=").count == 6 },
                "\(sp.stdout.text)\n\(sp.stderr.text)")
        let out = sp.stdout.text
        for (ps, port) in [("app.1", 7100), ("app.2", 7101), ("app.3", 7102), ("worker.1", 7200), ("worker.2", 7201), ("worker.3", 7202)] {
            let line = out.split(separator: "\n").first { $0.contains("ps=\(ps) ") }
            #expect(line?.contains("port=\(port) group=\(ps.split(separator: ".")[0]) app=e2e") == true, "\(ps): \(line ?? "missing")")
            #expect(line?.contains("region=local secret=from-dotenv color=blue") == true)
            #expect(line?.hasPrefix("\(ps.padding(toLength: 8, withPad: " ", startingAt: 0)) | ") == true, "prefix of \(line ?? "")")
        }
        #expect(out.contains("app.2 started (pid"), "system line for each start")
        let machines = Set(values("machine", in: out, lines: "| pid="))
        #expect(machines.count == 6)

        // kill -9 of one child: back within a second under the default policy. The replacement
        // writes its own start time, so a test thread slowed by parallel tests cannot skew this.
        let pids = values("pid", in: out, lines: "ps=worker.2 ").compactMap { pid_t($0) }
        let victim = try #require(pids.first)
        let killedAt = Date().timeIntervalSince1970
        kill(victim, SIGKILL)
        #expect(await eventually { values("pid", in: sp.stdout.text, lines: "ps=worker.2 ").count == 2 })
        let restartedAt = try #require(values("t", in: sp.stdout.text, lines: "ps=worker.2 ").last.flatMap(Double.init))
        #expect(restartedAt - killedAt < 1.0, "back after \(restartedAt - killedAt)s")
        #expect(sp.stdout.text.contains("worker.2 killed by SIGKILL — restarting"))

        // SIGINT: everything goes, exit 0.
        let groups = Set(values("pid", in: sp.stdout.text, lines: "| pid=").compactMap { pid_t($0) })
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0, "\(sp.stdout.text)")
        #expect(liveMembers(ofGroups: groups).isEmpty)
        #expect(sp.stdout.text.contains("SIGINT received"))
    }

    @Test func childIgnoringTheKillSignalIsKilledAfterKillTimeout() async throws {
        let app = try makeApp(["fly.toml": """
            kill_signal = "SIGTERM"
            kill_timeout = 1
            [processes]
              stubborn = "trap '' TERM; echo pid=$$ ready; while :; do sleep 0.1; done"
            """])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("ready"))
        let pid = try #require(values("pid", in: sp.stdout.text, lines: "ready").first.flatMap { pid_t($0) })
        let start = Date()
        sp.signal(SIGTERM)
        #expect(await sp.waitForExit() == 1, "had to SIGKILL: non-zero exit")
        let took = Date().timeIntervalSince(start)
        #expect(took >= 0.9 && took < 5, "took \(took)s")
        #expect(sp.stdout.text.contains("sending SIGTERM to all processes"))
        #expect(sp.stdout.text.contains("stubborn.1 did not stop within 1s — sending SIGKILL"))
        #expect(liveMembers(ofGroups: [pid]).isEmpty)
    }

    @Test func backgroundGrandchildrenLeaveWithTheirGroup() async throws {
        let app = try makeApp(["Procfile": "forky: sh -c 'sleep 1000 & sleep 1000 & echo pid=$$ up; wait'\n"])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("up"))
        // The inner sh (the outer one exec'd it), two sleeps — one process group — and the watchdog helper.
        #expect(await eventually { everything(startedBy: sp.pid).count == 4 })
        let before = everything(startedBy: sp.pid)
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
        #expect(await eventually(timeout: 2) { processTable().keys.filter { before.contains($0) }.isEmpty })
    }

    @Test func killingTheSupervisorWithSIGKILLLeavesNoChild() async throws {
        let app = try makeApp(["Procfile": """
            web: echo pid=$$; exec sleep 1000
            worker: sh -c 'sleep 1000 & echo pid=$$; wait'
            """])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await eventually { values("pid", in: sp.stdout.text, lines: "| pid=").count == 2 })
        // web's sleep, worker's sh and sleep, the watchdog helper.
        #expect(await eventually { everything(startedBy: sp.pid).count == 4 })
        let tree = everything(startedBy: sp.pid)
        sp.signal(SIGKILL)
        #expect(await eventually(timeout: 3) { processTable().keys.filter { tree.contains($0) }.isEmpty },
                "left behind: \(processTable().keys.filter { tree.contains($0) })")
    }

    @Test func leftoversRecordedByACrashedRunAreStoppedOnTheNextStart() async throws {
        let app = try makeApp(["Procfile": "web: exec sleep 1000\n"])
        // A process group that a crashed supervisor recorded (and its watchdog somehow missed).
        // Its children carry the crashed run's marker in their environment.
        let orphan = Process()
        orphan.executableURL = URL(fileURLWithPath: "/bin/sleep")
        orphan.arguments = ["1000"]
        orphan.environment = ["SWIFTPROC_OWNER": "0123456789abcdef"]
        try orphan.run()
        let pid = orphan.processIdentifier
        let start = try #require(try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
            .split(separator: ")").last?.split(separator: " ")[19])
        try FileManager.default.createDirectory(at: app.appendingPathComponent(".swiftproc"), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try "owner 999999 1 0123456789abcdef\n\(pid) \(start)\n"
            .write(to: app.appendingPathComponent(".swiftproc/children"), atomically: true, encoding: .utf8)
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("stopped 1 process group left over from an earlier run"))
        #expect(await eventually { !orphan.isRunning })
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func commandThatCannotStartIsReportedPerAttemptAndGivesUp() async throws {
        let app = try makeApp(["fly.toml": """
            [processes]
              app = "exec sleep 1000"
              broken = "definitely-not-a-command --flag"
            [[restart]]
              policy = "on-failure"
              retries = 1
              processes = ["broken"]
            """])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps"], in: app)
        #expect(await sp.waitFor("giving up", timeout: 10), "\(sp.stdout.text)")
        let out = sp.stdout.text
        #expect(out.components(separatedBy: "exited with status 127 (command not found)").count - 1 == 2)
        #expect(out.contains("not found"))
        #expect(!out.contains("Fatal error"))
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 1, "a failed group makes the exit non-zero")
    }

    @Test func secondCtrlCKillsAtOnce() async throws {
        let app = try makeApp(["fly.toml": """
            kill_timeout = 60
            [processes]
              slow = "trap 'echo got-int' INT; echo ready; while :; do sleep 0.1; done"
            """])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("ready"))
        sp.signal(SIGINT)
        #expect(await sp.waitFor("got-int"))
        let start = Date()
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 1)
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(sp.stdout.text.contains("killing all processes now"))
    }

    @Test func noRestartStopsTheWholeRunWhenOneExits() async throws {
        let app = try makeApp(["Procfile": "once: echo bye\nlong: exec sleep 1000\n"])
        let sp = try SwiftProc(["start", "--no-color", "--no-restart"], in: app)
        #expect(await sp.waitForExit() == 0, "\(sp.stdout.text)")
        #expect(sp.stdout.text.contains("once.1 exited with status 0 — stopping all processes (--no-restart)"))
    }

    @Test func childrenGetATerminalByDefaultAndPipesWithNoTTY() async throws {
        let app = try makeApp(["Procfile": "probe: if [ -t 1 ]; then echo stdout-is-tty; else echo stdout-is-pipe; fi; echo err >&2\n"])
        let tty = try SwiftProc(["start", "--no-color", "--no-restart"], in: app)
        _ = await tty.waitForExit()
        #expect(tty.stdout.text.contains("stdout-is-tty"))
        #expect(tty.stdout.text.contains("probe.1 | err"), "stderr goes to the same stream")
        let pipe = try SwiftProc(["start", "--no-color", "--no-restart", "--no-tty"], in: app)
        _ = await pipe.waitForExit()
        #expect(pipe.stdout.text.contains("stdout-is-pipe"))
        // Per group: only the named ones get pipes.
        let two = try makeApp(["Procfile": """
            a: if [ -t 1 ]; then echo a-tty; else echo a-pipe; fi; exec sleep 1000
            b: if [ -t 1 ]; then echo b-tty; else echo b-pipe; fi; exec sleep 1000
            """])
        let mixed = try SwiftProc(["start", "--no-color", "--pipes", "b"], in: two)
        #expect(await mixed.waitFor("a-tty"))
        #expect(await mixed.waitFor("b-pipe"), "\(mixed.stdout.text)")
        mixed.signal(SIGINT)
        _ = await mixed.waitForExit()
        let typo = try await runSwiftProc(["start", "--pipes", "c"], in: two)
        #expect(typo.status == 1 && typo.err.contains("\"c\""), "\(typo.err)")
    }
}

/// `[deploy] release_command` and a Procfile's `release:`.
@Suite(.serialized) struct ReleaseCommandTests {
    @Test func failingReleaseCommandAbortsStartWithItsStatus() async throws {
        let app = try makeApp(["fly.toml": """
            [deploy]
              release_command = "sh -c 'echo migrating; exit 3'"
            [processes]
              app = "echo app-started; exec sleep 1000"
            """])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps"], in: app)
        #expect(await sp.waitForExit() == 3, "\(sp.stdout.text)")
        let out = sp.stdout.text
        #expect(out.contains("release | migrating"), "\(out)")
        #expect(out.contains("release command exited with status 3; not starting"))
        #expect(!out.contains("app-started"))

        let skipped = try SwiftProc(["start", "--no-color", "--skip-release"], in: app)
        #expect(await skipped.waitFor("app-started"))
        #expect(!skipped.stdout.text.contains("migrating"))
        skipped.signal(SIGINT)
        #expect(await skipped.waitForExit() == 0)
    }

    @Test func releaseRunsOnceWithFlysVariablesBeforeTheFormation() async throws {
        let app = try makeApp(["Procfile": """
            release: echo "release RELEASE_COMMAND=$RELEASE_COMMAND group=$FLY_PROCESS_GROUP"
            web: echo web-started; exec sleep 1000
            """])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps"], in: app)
        #expect(await sp.waitFor("web-started"))
        let out = sp.stdout.text
        #expect(out.contains("release RELEASE_COMMAND=1 group=fly_app_release_command"))
        let releaseAt = try #require(out.range(of: "release command succeeded"))
        let webAt = try #require(out.range(of: "web.1 started"))
        #expect(releaseAt.lowerBound < webAt.lowerBound)
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func releaseCommandIsBoundedByItsTimeout() async throws {
        let app = try makeApp(["fly.toml": """
            [deploy]
              release_command = "sleep 1000"
              release_command_timeout = "1s"
            [processes]
              app = "exec sleep 1000"
            """])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitForExit(timeout: 10) == 1)
        #expect(sp.stdout.text.contains("release command timed out after 1s"))
    }
}


/// `swiftproc check` on the shipped samples and on broken files.
@Suite(.serialized) struct CheckTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test(arguments: ["samples/rails-sidekiq/fly.toml", "samples/demo/fly.toml"])
    func samplesAreValid(path: String) async throws {
        let r = try await runSwiftProc(["check", "-c", path], in: Self.repo)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("processes") && r.out.contains("app "), "\(r.out)")
        let json = try await runSwiftProc(["check", "-c", path, "--json"], in: Self.repo)
        #expect(json.status == 0)
        #expect((try? JSONSerialization.jsonObject(with: Data(json.out.utf8))) != nil, "\(json.out)")
    }

    @Test func procfileSamplePrintsItsPlan() async throws {
        let r = try await runSwiftProc(["check", "-f", "samples/procfile/Procfile", "-m", "web=2"], in: Self.repo)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("ports 5000-5001"), "\(r.out)")
        #expect(r.out.contains("BATCH_SIZE") && !r.out.contains("BATCH_SIZE=25"), "env values hidden by default")
        let shown = try await runSwiftProc(["check", "-f", "samples/procfile/Procfile", "--show-env"], in: Self.repo)
        #expect(shown.out.contains("BATCH_SIZE=25"))
    }

    @Test func brokenFilesGetOneClearErrorWithAPosition() async throws {
        let app = try makeApp(["fly.toml": "app = \"x\"\n[processes]\n  web \"bin/rails server\"\n"])
        let r = try await runSwiftProc(["check"], in: app)
        #expect(r.status == 1)
        #expect(r.err.hasPrefix("fly.toml:3:7: expected '=' after key \"web\""), "\(r.err)")
        #expect(r.err.contains("^"))
        #expect(!r.err.contains("Fatal") && !r.err.contains("TOMLError("))
        let none = try await runSwiftProc(["check"], in: try makeApp([:]))
        #expect(none.status == 1)
        #expect(none.err.contains("fly.toml") && none.err.contains("Procfile"), "\(none.err)")
    }
}

/// What a child inherits from swiftproc.
@Suite(.serialized) struct ChildDescriptorTests {
    @Test func childrenInheritNoDescriptorOfTheSupervisor() async throws {
        let proxy = freePorts()
        // `ls` inspects the shell's descriptors from outside, so listing them opens none in it.
        let app = try makeApp(["fly.toml": """
            [processes]
              app = "ls -l /proc/$$/fd; echo listed; exec sleep 1000"
            [http_service]
              internal_port = \(proxy)
            """])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps", "--no-tty", "-m", "app=3"], in: app)
        #expect(await eventually { sp.stdout.text.components(separatedBy: "| listed").count == 4 })
        for i in 1...3 {
            var targets: [String: String] = [:]
            for line in sp.stdout.text.split(separator: "\n") where line.hasPrefix("app.\(i) ") && line.contains(" -> ") {
                let words = line.split(separator: " ")
                if let arrow = words.firstIndex(of: "->"), arrow > 0, arrow + 1 < words.count {
                    targets[String(words[arrow - 1])] = String(words[arrow + 1])
                }
            }
            #expect(targets["0"] == "/dev/null", "\(targets)")
            #expect(targets["1"]?.hasPrefix("pipe:") == true && targets["1"] == targets["2"], "\(targets)")
            let pipes = Set(targets.values.filter { $0.hasPrefix("pipe:") })
            let sockets = targets.values.filter { $0.hasPrefix("socket:") }
            #expect(pipes.count == 1, "only its own output pipe: \(targets)")
            #expect(sockets.count <= 1, "at most Foundation's own termination socket: \(targets)")
        }
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }
}
