import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Hostile requests and awkward timing against a running supervisor.
@Suite(.serialized) struct RobustnessTests {
    private func status(_ app: URL, socket: [String] = []) async throws -> StatusSnapshot {
        let r = try await runSwiftProc(["status", "--json"] + socket, in: app)
        return try JSONDecoder().decode(StatusSnapshot.self, from: Data(r.out.utf8))
    }

    @Test func oddNamesFromClientsNeverCrashTheSupervisor() async throws {
        let app = try makeApp(["Procfile": "web: echo up; exec sleep 1000\n"])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("| up"))
        for words in [["logs", "--no-follow", "."], ["logs", "--no-follow", ""], ["logs", "--no-follow", "web."],
                      ["logs", "--no-follow", "web.x"], ["logs", "--no-follow", "web.0"], ["restart", "."],
                      ["restart", ""], ["scale", "=3"], ["scale", "web=-"], ["scale", "."]] {
            let r = try await runSwiftProc(words, in: app)
            #expect(r.status == 1, "\(words): \(r.out) \(r.err)")
            #expect(!r.err.isEmpty && r.err.split(separator: "\n").count <= 2, "\(words): \(r.err)")
        }
        #expect(sp.process.isRunning)
        #expect(try await status(app).instances.count == 1)
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func waitInACommandDoesNotWaitForTheWatchdog() async throws {
        let app = try makeApp(["Procfile": "both: sleep 0.2 & sleep 0.2 & wait; echo both-done; exit 3\n"])
        let sp = try SwiftProc(["start", "--no-color", "--no-restart"], in: app)
        #expect(await sp.waitForExit(timeout: 10) == 1, "\(sp.stdout.text)")
        #expect(sp.stdout.text.contains("both-done"))
        #expect(sp.stdout.text.contains("both.1 exited with status 3"))
    }

    @Test func scaleAndRestartWaitForTheReleaseCommandAndStopCancelsIt() async throws {
        let app = try makeApp(["fly.toml": """
            [deploy]
              release_command = "sleep 30"
            [processes]
              app = "exec sleep 1000"
            """])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("running release command"))
        let scale = try await runSwiftProc(["scale", "app=2"], in: app)
        #expect(scale.status == 1)
        #expect(scale.err.contains("release command is still running"), "\(scale.err)")
        let restart = try await runSwiftProc(["restart"], in: app)
        #expect(restart.status == 1)
        let stopAt = Date()
        let stop = try await runSwiftProc(["stop"], in: app)
        #expect(stop.status == 0, "\(stop.err)")
        #expect(await sp.waitForExit() != nil)
        #expect(Date().timeIntervalSince(stopAt) < 10, "stop ends the release command instead of waiting it out")
        #expect(!sp.stdout.text.contains("app.1 started"))
    }

    @Test func restartOverrideAppliesToAGroupWhosePolicyIsNever() async throws {
        let app = try makeApp(["fly.toml": """
            [processes]
              app = "echo run; exit 3"
            [[restart]]
              policy = "never"
            """])
        let sp = try SwiftProc(["start", "--no-color", "--restart", "on-failure"], in: app)
        #expect(await sp.waitFor("restarting in"), "\(sp.stdout.text)")
        #expect(!sp.stdout.text.contains("giving up"))
        sp.signal(SIGINT)
        _ = await sp.waitForExit()
    }

    @Test func daemonReportsAFailedReleaseAndRefusesASecondStart() async throws {
        let failing = try makeApp(["fly.toml": """
            [deploy]
              release_command = "sh -c 'exit 4'"
            [processes]
              app = "exec sleep 1000"
            """])
        let r = try await runSwiftProc(["start", "-d"], in: failing)
        #expect(r.status == 4, "\(r.out) \(r.err)")
        #expect(r.err.contains("release command"), "\(r.err)")

        let app = try makeApp(["Procfile": "web: exec sleep 1000\n"])
        let first = try await runSwiftProc(["start", "-d"], in: app)
        #expect(first.status == 0, "\(first.err)")
        let second = try await runSwiftProc(["start", "-d"], in: app)
        #expect(second.status == 1)
        #expect(second.err.contains("already running"), "\(second.err)")
        #expect(try await runSwiftProc(["stop"], in: app).status == 0)
    }

    @Test func instancePortsMayNotCollideWithTheProxy() async throws {
        let proxy = freePorts()
        let app = try makeApp(["fly.toml": """
            [processes]
              app = "exec sleep 1000"
            [http_service]
              internal_port = \(proxy)
            """])
        // `check` refuses exactly what `start` refuses, with the same message: one plan.
        for command in ["start", "check"] {
            let r = try await runSwiftProc([command, "-p", "\(proxy)"], in: app)
            #expect(r.status == 2)
            #expect(r.err.contains("app.1 would listen on port \(proxy)"), "\(r.err)")
            let high = try await runSwiftProc([command, "--no-proxy", "-p", "65535", "-m", "app=2"], in: app)
            #expect(high.status == 2)
            #expect(high.err.contains("beyond 65535"), "\(high.err)")
        }
    }

    @Test func formationsThatCannotWorkAreRefusedUpFront() async throws {
        let app = try makeApp(["Procfile": "app: exec sleep 1000\nworker: exec sleep 1000\n"])
        for command in ["start", "check"] {
            let overlap = try await runSwiftProc([command, "-m", "app=101,worker=1"], in: app)
            #expect(overlap.status == 1)
            #expect(overlap.err.contains("invalid formation \"app=101\": at most 100 instances per group"), "\(overlap.err)")
            let giant = try await runSwiftProc([command, "-m", "app=9223372036854775807"], in: app)
            #expect(giant.status == 1 && giant.err.contains("at most 100 instances per group"), "\(giant.err)")
        }
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("worker.1 started"))
        // scale applies the same limits, and no count overflows the supervisor.
        for words in [["app=100000"], ["app=101"], ["app=9223372036854775807"], ["app=+100", "app=+100"], ["+9223372036854775807"]] {
            let refused = try await runSwiftProc(["scale"] + words, in: app)
            #expect(refused.status == 1)
            #expect(refused.err.contains("at most 100 instances per group"), "\(words): \(refused.err)")
        }
        #expect(try await status(app).instances.count == 2, "nothing changed")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func aShellListStopsGracefullyWithAKillSignalOtherThanSIGINT() async throws {
        let app = try makeApp([
            "fly.toml": "kill_signal = \"SIGTERM\"\n[processes]\n  app = \"true && sh ./graceful.sh\"\n",
            "graceful.sh": "trap 'sleep 0.5; echo graceful-done; exit 0' TERM\necho ready\nwhile :; do sleep 0.1; done\n",
        ])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("| ready"))
        sp.signal(SIGTERM)
        #expect(await sp.waitForExit() == 0, "\(sp.stdout.text)")
        #expect(sp.stdout.text.contains("graceful-done"), "the program finished its own shutdown: \(sp.stdout.text)")
    }

    @Test func everyRollingRestartAnnouncesTheExitBeforeTheNewStart() async throws {
        let app = try makeApp(["Procfile": "app: trap 'echo bye; exit 0' INT; echo hi; while :; do sleep 0.05; done\n"])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps"], in: app)
        #expect(await sp.waitFor("| hi"))
        for _ in 1...3 {
            let r = try await runSwiftProc(["restart", "app.1"], in: app)
            #expect(r.status == 0, "\(r.err)")
        }
        #expect(await eventually { sp.stdout.text.components(separatedBy: "app.1 started").count - 1 == 4 })
        let events = sp.stdout.text.split(separator: "\n").compactMap { line -> String? in
            if line.hasSuffix("| bye") { return "bye" }
            if line.contains("app.1 exited") { return "exited" }
            if line.contains("app.1 started") { return "started" }
            return nil
        }
        #expect(events == ["started"] + Array(repeating: ["bye", "exited", "started"], count: 3).flatMap { $0 }, "\(events)")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func afterNoRestartStopsOnItsOwnTheFirstCtrlCIsNotASecond() async throws {
        let app = try makeApp(["Procfile": """
            once: sleep 0.3; exit 0
            slow: trap 'sleep 1; echo slow-done; exit 0' INT; while :; do sleep 0.05; done
            """])
        let sp = try SwiftProc(["start", "--no-color", "--no-restart"], in: app)
        #expect(await sp.waitFor("stopping all processes (--no-restart)"))
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0, "\(sp.stdout.text)")
        #expect(!sp.stdout.text.contains("killing all processes now"))
        #expect(sp.stdout.text.contains("slow-done"))
    }
}
