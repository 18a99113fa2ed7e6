import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One watchdog helper per supervisor stops every process group when swiftproc dies by SIGKILL;
/// no companion process per instance.
@Suite(.serialized) struct WatchdogEndToEndTests {
    private func cmdline(_ pid: pid_t) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The live children of `supervisor` that are its watchdog helper.
    private func helpers(of supervisor: pid_t) -> [pid_t] {
        processTable().filter { $0.value.ppid == supervisor && cmdline($0.key).last == GroupWatchdog.helperName }.map(\.key)
    }

    /// A sleep duration nothing else uses, to know our instances by their command line.
    private func mark() -> String { String(8_000_000 + Int.random(in: 0..<1_000_000)) }

    @Test func theProcessesBesidesSwiftprocAreTheInstancesAndOneHelper() async throws {
        let n = 4
        let mark = mark()
        let app = try makeApp(["Procfile": "app: sleep \(mark)\nquiet: sleep \(mark)\n"])
        let sp = try SwiftProc(["start", "--no-color", "-m", "app=\(n)", "--pipes", "quiet"], in: app)
        #expect(await sp.waitFor("quiet.1 started"))
        #expect(await eventually { everything(startedBy: sp.pid).count == n + 2 })
        let tree = everything(startedBy: sp.pid)
        let instances = try await instancePIDs(app)
        #expect(instances.count == n + 1)
        #expect(Set(instances.values).isSubset(of: tree))
        for pid in instances.values {
            // Each instance is its program (dash exec'd it), the leader of its own group, our child.
            #expect(cmdline(pid) == ["sleep", mark], "pid \(pid): \(cmdline(pid))")
            #expect(getpgid(pid) == pid)
            #expect(processTable()[pid]?.ppid == sp.pid)
        }
        let helper = try #require(helpers(of: sp.pid).first)
        #expect(helpers(of: sp.pid).count == 1)
        #expect(tree == Set(instances.values).union([helper]), "nothing else: \(tree.map { cmdline($0) })")
        #expect(cmdline(helper).first == "/bin/sh")
        // stdin: the pty for pty instances (attach types into it), /dev/null with pipes.
        let app1 = try #require(instances["app.1"]), quiet = try #require(instances["quiet.1"])
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(app1)/fd/0"))?.hasPrefix("/dev/pts/") == true)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(quiet)/fd/0")) == "/dev/null")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
        #expect(await eventually(timeout: 3) { processTable().keys.filter { tree.contains($0) }.isEmpty },
                "a normal stop leaves nothing, the helper included")
    }

    @Test func aKilledHelperIsReplacedAndTheGuaranteeHolds() async throws {
        let mark = mark()
        let app = try makeApp(["Procfile": "web: sleep \(mark)\nworker: sh -c 'sleep \(mark) & echo pid=$$; wait'\n"])
        let sp = try SwiftProc(["start", "--no-color", "-m", "web=2"], in: app)
        #expect(await eventually { values("pid", in: sp.stdout.text, lines: "| pid=").count == 1 })
        let first = try #require(await eventually { helpers(of: sp.pid).count == 1 } ? helpers(of: sp.pid).first : nil)
        kill(first, SIGKILL)
        #expect(await eventually(timeout: 5) { helpers(of: sp.pid).count == 1 && helpers(of: sp.pid) != [first] },
                "a new helper: \(helpers(of: sp.pid))")
        #expect(sp.process.isRunning)
        // Web ×2, the worker's shell and its sleep, the new helper.
        let tree = everything(startedBy: sp.pid)
        #expect(tree.count == 5, "\(tree.map { cmdline($0) })")
        sp.signal(SIGKILL)
        #expect(await eventually(timeout: 5) { processTable().keys.filter { tree.contains($0) }.isEmpty },
                "left behind: \(processTable().keys.filter { tree.contains($0) }.map { cmdline($0) })")
    }

    @Test func afterSIGKILLEachGroupGetsItsKillSignalThenSIGKILLAfterKillTimeout() async throws {
        let app = try makeApp(["fly.toml": """
            kill_signal = "SIGTERM"
            kill_timeout = 2
            [processes]
              polite = "trap 'echo term > polite.txt; exit 0' TERM; echo pid=$$ ready; while :; do sleep 0.1; done"
              stubborn = "trap 'echo term > stubborn.txt' TERM; echo pid=$$ ready; while :; do sleep 0.1; done"
            """])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await eventually { values("pid", in: sp.stdout.text, lines: "ready").count == 2 })
        let pids = try await instancePIDs(app)
        let polite = try #require(pids["polite.1"]), stubborn = try #require(pids["stubborn.1"])
        let killedAt = Date()
        sp.signal(SIGKILL)
        let politeFile = app.appendingPathComponent("polite.txt").path
        let stubbornFile = app.appendingPathComponent("stubborn.txt").path
        #expect(await eventually(timeout: 3) { liveMembers(ofGroups: [polite]).isEmpty })
        #expect(FileManager.default.fileExists(atPath: politeFile), "polite got SIGTERM")
        #expect(await eventually(timeout: 3) { FileManager.default.fileExists(atPath: stubbornFile) }, "stubborn got SIGTERM")
        #expect(await eventually(timeout: 8) { liveMembers(ofGroups: [stubborn]).isEmpty })
        let took = Date().timeIntervalSince(killedAt)
        #expect(took >= 1.8 && took < 6, "SIGKILL after kill_timeout (2 s): \(took) s")
    }

    @Test func aOneOffCommandIsStoppedWhenSwiftprocRunIsKilled() async throws {
        let app = try makeApp(["Procfile": "web: exec sleep 1000\n"])
        let run = try SwiftProc(["run", "sh", "-c", "echo pid=$$; exec sleep 1000"], in: app)
        let pid = try #require(await eventually { !values("pid", in: run.stdout.text, lines: "pid=").isEmpty }
            ? values("pid", in: run.stdout.text, lines: "pid=").first.flatMap { pid_t($0) } : nil)
        #expect(await eventually { helpers(of: run.pid).count == 1 })
        let tree = everything(startedBy: run.pid)
        #expect(tree.contains(pid) && tree.count == 2)
        run.signal(SIGKILL)
        #expect(await eventually(timeout: 5) { processTable().keys.filter { tree.contains($0) }.isEmpty })
    }
}
