import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct SupervisorTests {
    private func pids(_ s: Supervisor, _ group: String) async -> [Int: pid_t] {
        var out: [Int: pid_t] = [:]
        for i in await s.snapshot().instances where i.group == group { if let p = i.pid { out[i.index] = p } }
        return out
    }

    @Test func killedInstanceIsRestartedWithItsEnvironment() async throws {
        let log = CapturingLog()
        let s = try Supervisor(plan: testPlan([
            .init(name: "web", command: "echo \"port=$PORT ps=$PS group=$FLY_PROCESS_GROUP id=$FLY_MACHINE_ID\"; exec sleep 1000",
                  count: 2, basePort: 6000, usePTY: false),
        ]), log: log)
        await s.start()
        #expect(await eventually { await pids(s, "web").count == 2 })
        #expect(await eventually { log.output("web.2").contains("port=6001 ps=web.2 group=web id=") })
        let first = await pids(s, "web")[1]!
        kill(first, SIGKILL)
        #expect(await eventually(timeout: 2) { let p = await pids(s, "web")[1]; return p != nil && p != first })
        #expect(log.systemLines.contains { $0.hasPrefix("web.1 killed by SIGKILL — restarting") })
        let restarts = await s.snapshot().instances.first { $0.name == "web.1" }?.restarts
        #expect(restarts == 1)
        await s.shutdown(reason: nil)
        #expect(await s.waitUntilFinished() == 0)
        #expect(!isAlive(first))
    }

    @Test func crashLoopGivesUpAfterRetries() async throws {
        let log = CapturingLog()
        var group = SupervisorPlan.Group(name: "bad", command: "exit 3", count: 1, basePort: 6100, usePTY: false)
        group.restart = .init(mode: .onFailure, retries: 2)
        let s = try Supervisor(plan: testPlan([group]), log: log)
        await s.start()
        #expect(await eventually { await s.snapshot().instances.first?.state == "failed" })
        #expect(log.systemLines.filter { $0.contains("exited with status 3") }.count == 3, "\(log.systemLines)")
        #expect(log.systemLines.contains { $0.contains("giving up") })
        await s.shutdown(reason: nil)
        #expect(await s.waitUntilFinished() == 1, "a failed group makes the exit status non-zero")
    }

    @Test func cleanExitIsNotRestartedUnderOnFailure() async throws {
        let log = CapturingLog()
        let s = try Supervisor(plan: testPlan([.init(name: "once", command: "echo done", count: 1, basePort: 6200, usePTY: false)]), log: log)
        await s.start()
        #expect(await eventually { await s.snapshot().instances.first?.state == "exited" })
        #expect(await s.snapshot().instances.first?.detail == "0")
        await s.shutdown(reason: nil)
        #expect(await s.waitUntilFinished() == 0)
    }

    @Test func childIgnoringTheKillSignalIsKilledAfterTheTimeout() async throws {
        let log = CapturingLog()
        let s = try Supervisor(plan: testPlan([
            .init(name: "stubborn", command: "trap '' INT TERM; echo ready; while :; do sleep 0.05; done",
                  count: 1, basePort: 6300, usePTY: false),
        ], killTimeout: 0.5), log: log)
        await s.start()
        #expect(await eventually { log.output("stubborn.1").contains("ready") })
        let pid = await pids(s, "stubborn")[1]!
        await s.shutdown(reason: "test")
        #expect(await s.waitUntilFinished() == 1)
        #expect(log.systemLines.contains { $0.contains("did not stop within") })
        #expect(await eventually { liveMembers(ofGroup: pid).isEmpty })
    }

    @Test func backgroundGrandchildrenDoNotSurviveShutdown() async throws {
        let log = CapturingLog()
        let s = try Supervisor(plan: testPlan([
            .init(name: "forky", command: "sleep 1000 & sleep 1000", count: 1, basePort: 6400, usePTY: true),
        ]), log: log)
        await s.start()
        let pid = try #require(await eventually { await pids(s, "forky")[1] != nil } ? await pids(s, "forky")[1] : nil)
        #expect(await eventually { liveMembers(ofGroup: pid).count == 3 })  // sh and 2 sleeps, no companion
        await s.shutdown(reason: nil)
        #expect(await s.waitUntilFinished() == 0)
        #expect(liveMembers(ofGroup: pid).isEmpty)
    }

    @Test func programExitingWhileItsChildLivesOnIsNoticed() async throws {
        let log = CapturingLog()
        var g = SupervisorPlan.Group(name: "leaky", command: "sleep 1000 & exit 4", count: 1, basePort: 6500, usePTY: false)
        g.restart = .init(mode: .never, retries: 0)
        let s = try Supervisor(plan: testPlan([g]), log: log)
        await s.start()
        #expect(await eventually { await s.snapshot().instances.first?.state == "exited" })
        #expect(await s.snapshot().instances.first?.detail == "4")
        await s.shutdown(reason: nil)
        _ = await s.waitUntilFinished()
    }

    @Test func scaleUpDownAndBackReusesIndexes() async throws {
        let log = CapturingLog()
        let s = try Supervisor(plan: testPlan([
            .init(name: "app", command: "exec sleep 1000", count: 1, basePort: 6600, usePTY: false),
            .init(name: "worker", command: "exec sleep 1000", count: 1, basePort: 6700, usePTY: false),
        ]), log: log)
        await s.start()
        try await s.scale([("worker", 3)])
        #expect(await eventually { await pids(s, "worker").count == 3 })
        let three = await pids(s, "worker")
        #expect(Set(three.keys) == [1, 2, 3])
        #expect(await s.snapshot().instances.first { $0.name == "worker.3" }?.port == 6702)
        try await s.scale([("worker", 0)])
        #expect(await pids(s, "worker").isEmpty)
        for pid in three.values { #expect(await eventually { !isAlive(pid) }) }
        #expect(await s.formation.map(\.count) == [1, 0])
        try await s.scale([("worker", 2)])
        #expect(await eventually { Set(await pids(s, "worker").keys) == [1, 2] })
        await s.shutdown(reason: nil)
        #expect(await s.waitUntilFinished() == 0)
    }

    @Test func rollingRestartReplacesEachInstance() async throws {
        let log = CapturingLog()
        let s = try Supervisor(plan: testPlan([
            .init(name: "app", command: "exec sleep 1000", count: 2, basePort: 6800, usePTY: false),
        ]), log: log)
        await s.start()
        #expect(await eventually { await pids(s, "app").count == 2 })
        let before = await pids(s, "app")
        try await s.restart(["app"])
        let after = await pids(s, "app")
        #expect(after.count == 2)
        for (i, pid) in before { #expect(after[i] != pid) }
        await #expect(throws: ControlServiceError.self) { try await s.restart(["wrker"]) }
        await s.shutdown(reason: nil)
        _ = await s.waitUntilFinished()
    }

    @Test func noRestartStopsEverythingWhenOneExits() async throws {
        let log = CapturingLog()
        let s = try Supervisor(plan: testPlan([
            .init(name: "short", command: "exit 2", count: 1, basePort: 6900, usePTY: false),
            .init(name: "long", command: "exec sleep 1000", count: 1, basePort: 7000, usePTY: false),
        ], stopWhenAnyExits: true), log: log)
        await s.start()
        #expect(await s.waitUntilFinished() == 1)
        #expect(log.systemLines.contains { $0.contains("--no-restart") })
    }

    @Test func wrapperExecsOnlySimpleCommands() {
        #expect(ShellCommand.execPrefixed("bundle exec sidekiq") == "exec bundle exec sidekiq")
        #expect(ShellCommand.execPrefixed("RAILS_ENV=dev rails s -p $PORT") == "RAILS_ENV=dev exec rails s -p $PORT")
        #expect(ShellCommand.execPrefixed("node -e \"a; b\"") == "exec node -e \"a; b\"")
        #expect(ShellCommand.execPrefixed("a && b") == "a && b")
        #expect(ShellCommand.execPrefixed("sleep 1 & sleep 2") == "sleep 1 & sleep 2")
        #expect(ShellCommand.execPrefixed("cat x | grep y") == "cat x | grep y")
        #expect(ShellCommand.execPrefixed("exec foo") == "exec foo")
        #expect(ShellCommand.execPrefixed("if true; then x; fi") == "if true; then x; fi")
        #expect(ShellCommand.execPrefixed("FOO='a b' x") == "FOO='a b' x")
        #expect(ShellCommand.execPrefixed("exit 3") == "exit 3")
        #expect(ShellCommand.execPrefixed("FOO=1\techo hi $FOO") == "FOO=1 exec echo hi $FOO")
        #expect(ShellCommand.execPrefixed("rails s 2>&1") == "exec rails s 2>&1")
        #expect(ShellCommand.execPrefixed("a 2>&1 &") == "a 2>&1 &")
        #expect(ShellCommand.execPrefixed("cd web") == "cd web")
    }

    @Test func machineIDsAreStableAndDistinct() {
        #expect(machineID(app: "a", group: "web", index: 1) == machineID(app: "a", group: "web", index: 1))
        #expect(machineID(app: "a", group: "web", index: 1) != machineID(app: "a", group: "web", index: 2))
        #expect(machineID(app: "a", group: "web", index: 1).count == 14)
    }

    @Test func backoffDoublesFromImmediateToTheCap() {
        let b = SupervisorPlan.Backoff.standard
        #expect((1...8).map { b.delay(afterFailures: $0) } == [0, 1, 2, 4, 8, 16, 30, 30])
    }
}

@Suite struct SupervisorScaleRaceTests {
    /// Scaling back up while surplus instances are still stopping (they ignore the kill signal for
    /// a while) must neither lose track of them nor hang the first request.
    @Test func scaleUpWhileSurplusInstancesAreStillStopping() async throws {
        let log = CapturingLog()
        let s = try Supervisor(plan: testPlan([
            .init(name: "w", command: "trap 'sleep 0.5; exit 0' INT; echo up; while :; do sleep 0.05; done",
                  count: 3, basePort: 7100, usePTY: false),
        ], killTimeout: 3), log: log)
        await s.start()
        #expect(await eventually { log.output("w.3").contains("up") })
        let downDone = Locked(false)
        Task { try? await s.scale([("w", 1)]); downDone.set(true) }
        #expect(await eventually { await s.snapshot().instances.contains { $0.state == "stopping" } })
        try await s.scale([("w", 3)])
        #expect(await eventually(timeout: 10) { downDone.get() }, "the scale-down request finished")
        #expect(await eventually { await s.snapshot().instances.filter { $0.pid != nil && $0.state == "running" }.count == 3 })
        await s.shutdown(reason: nil)
        #expect(await s.waitUntilFinished() == 0)
    }
}
