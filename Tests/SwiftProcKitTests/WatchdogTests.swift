import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one helper process that stops every process group when swiftproc dies (GroupWatchdog):
/// its line protocol, its bookkeeping, and the real helper acting on what it was told.
@Suite(.serialized) struct WatchdogTests {
    /// A process group of its own (Foundation makes every child a group leader) running `command`.
    private func group(_ command: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try Platform.runWithCleanSignalMask(p)
        #expect(getpgid(p.processIdentifier) == p.processIdentifier)
        return p
    }

    private func helperIsGone(_ pid: pid_t) -> Bool { !isAlive(pid) }

    /// Whether `pid` has `signal` ignored (`SigIgn` in /proc/PID/status).
    private func ignores(_ pid: pid_t, _ signal: Int32) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("SigIgn:") }),
              let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) else { return false }
        return mask & (1 << UInt64(signal - 1)) != 0
    }

    private func pids(_ s: Supervisor, _ group: String) async -> [Int: pid_t] {
        var out: [Int: pid_t] = [:]
        for i in await s.snapshot().instances where i.group == group { if let p = i.pid { out[i.index] = p } }
        return out
    }

    @Test func linesOfTheProtocol() {
        #expect(GroupWatchdog.addLine(pgid: 1234, signal: SIGTERM, timeout: 5) == "add 1234 TERM 50\n")
        #expect(GroupWatchdog.addLine(pgid: 7, signal: SIGINT, timeout: 0.25) == "add 7 INT 3\n")
        #expect(GroupWatchdog.addLine(pgid: 7, signal: SIGKILL, timeout: 0) == "add 7 KILL 1\n")
        #expect(GroupWatchdog.addLine(pgid: 7, signal: 42, timeout: .infinity) == "add 7 42 864000\n")
        #expect(GroupWatchdog.addLine(pgid: 7, signal: SIGUSR1, timeout: .nan) == "add 7 USR1 1\n")
        #expect(GroupWatchdog.delLine(pgid: 1234) == "del 1234\n")
        // Lines stay far below PIPE_BUF, so each is one write.
        #expect(GroupWatchdog.addLine(pgid: .max, signal: SIGUSR2, timeout: 1e300).utf8.count < 64)
    }

    /// A recycled pgid must never be signalled: `forget` removes the record, and a late `forget`
    /// of an earlier group that had the same number leaves the newer record alone.
    @Test func bookkeepingForgetsOnlyTheGroupItWasGiven() {
        let watchdog = GroupWatchdog()
        defer { watchdog.close(waitingUpTo: 0) }
        // pgids no process has (beyond pid_max): the helper's kill would fail harmlessly.
        let first = watchdog.watch(pgid: 99_999_991, signal: SIGTERM, timeout: 1)
        let other = watchdog.watch(pgid: 99_999_992, signal: SIGTERM, timeout: 1)
        #expect(watchdog.watchedGroups == [99_999_991, 99_999_992])
        watchdog.forget(first)
        #expect(watchdog.watchedGroups == [99_999_992])
        watchdog.forget(first)
        #expect(watchdog.watchedGroups == [99_999_992])
        // The number comes back for a new group; the stale handle does not remove it.
        let again = watchdog.watch(pgid: 99_999_991, signal: SIGINT, timeout: 1)
        #expect(again != first)
        watchdog.forget(first)
        #expect(watchdog.watchedGroups == [99_999_991, 99_999_992])
        watchdog.forget(again)
        watchdog.forget(other)
        #expect(watchdog.watchedGroups.isEmpty)
    }

    /// Closing swiftproc's end is what swiftproc's death looks like to the helper: the groups it
    /// still has get their signal; a group that was `del`eted is left alone.
    @Test func onEOFTheHelperSignalsRecordedGroupsAndNoOthers() async throws {
        let watchdog = GroupWatchdog()
        try watchdog.start()
        let helper = try #require(watchdog.helperPID)
        let recorded = try group("exec sleep 1000")
        let forgotten = try group("exec sleep 1000")
        defer { kill(forgotten.processIdentifier, SIGKILL) }
        watchdog.watch(pgid: recorded.processIdentifier, signal: SIGTERM, timeout: 5)
        let handle = watchdog.watch(pgid: forgotten.processIdentifier, signal: SIGTERM, timeout: 5)
        watchdog.forget(handle)
        watchdog.close(waitingUpTo: 0)
        #expect(await eventually(timeout: 5) { !recorded.isRunning })
        #expect(recorded.terminationReason == .uncaughtSignal && recorded.terminationStatus == SIGTERM,
                "the kill signal, not SIGKILL")
        #expect(await eventually(timeout: 5) { helperIsGone(helper) })
        #expect(forgotten.isRunning)
    }

    @Test func aGroupIgnoringItsSignalIsKilledAfterItsTimeout() async throws {
        let watchdog = GroupWatchdog()
        let stubborn = try group("trap '' TERM; while :; do sleep 0.05; done")
        let polite = try group("exec sleep 1000")
        watchdog.watch(pgid: stubborn.processIdentifier, signal: SIGTERM, timeout: 1)
        watchdog.watch(pgid: polite.processIdentifier, signal: SIGTERM, timeout: 1)
        let start = Date()
        watchdog.close(waitingUpTo: 0)
        #expect(await eventually(timeout: 5) { !polite.isRunning })
        #expect(polite.terminationStatus == SIGTERM)
        #expect(await eventually(timeout: 5) { !stubborn.isRunning })
        let took = Date().timeIntervalSince(start)
        #expect(stubborn.terminationReason == .uncaughtSignal && stubborn.terminationStatus == SIGKILL)
        #expect(took >= 0.9 && took < 4, "SIGKILL after kill_timeout (1 s), took \(took) s")
    }

    @Test func killOrStopAsTheKillSignalMeansSIGKILLAtOnce() async throws {
        let watchdog = GroupWatchdog()
        let a = try group("exec sleep 1000")
        let b = try group("exec sleep 1000")
        watchdog.watch(pgid: a.processIdentifier, signal: SIGSTOP, timeout: 30)
        watchdog.watch(pgid: b.processIdentifier, signal: SIGKILL, timeout: 30)
        watchdog.close(waitingUpTo: 0)
        #expect(await eventually(timeout: 5) { !a.isRunning && !b.isRunning })
        #expect(a.terminationStatus == SIGKILL && b.terminationStatus == SIGKILL)
    }

    /// The helper ignores the signals a terminal or a careless `kill` sends; killed anyway, it is
    /// replaced, and the new one knows every group.
    @Test func aKilledHelperIsReplacedAndKnowsEveryGroup() async throws {
        let watchdog = GroupWatchdog()
        let child = try group("exec sleep 1000")
        defer { kill(child.processIdentifier, SIGKILL) }
        watchdog.watch(pgid: child.processIdentifier, signal: SIGTERM, timeout: 5)
        let first = try #require(watchdog.helperPID)
        let signals = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE]
        // Once its first line (the trap) has run.
        #expect(await eventually(timeout: 5) { signals.allSatisfy { ignores(first, $0) } })
        for signal in signals { kill(first, signal) }
        // Old enough that the replacement comes at once (a helper dying young is replaced after 1 s).
        #expect(await eventually(timeout: 5) { (watchdog.helperStartedSecondsAgo ?? 0) > 1 })
        #expect(isAlive(first), "ignores INT TERM HUP QUIT USR1 USR2 PIPE")
        #expect(child.isRunning)
        kill(first, SIGKILL)
        #expect(await eventually(timeout: 5) { (watchdog.helperPID ?? first) != first })
        let second = try #require(watchdog.helperPID)
        #expect(watchdog.helperLaunches == 2)
        #expect(isAlive(second))
        watchdog.close(waitingUpTo: 0)
        #expect(await eventually(timeout: 5) { !child.isRunning }, "the new helper got the record")
        #expect(child.terminationStatus == SIGTERM)
    }

    /// Only digits and capitals reach the helper's `eval`: anything else on a line is skipped.
    @Test func theHelperSkipsMalformedLines() async throws {
        let marker = temporaryDirectory().appendingPathComponent("injected").path
        let victim = try group("exec sleep 1000")
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        let helper = Process()
        helper.executableURL = URL(fileURLWithPath: "/bin/sh")
        helper.arguments = ["-c", GroupWatchdog.script]
        helper.standardInput = FileHandle(fileDescriptor: fds[0], closeOnDealloc: false)
        helper.standardOutput = FileHandle.nullDevice
        helper.standardError = FileHandle.nullDevice
        try Platform.runWithCleanSignalMask(helper)
        close(fds[0])
        let pgid = victim.processIdentifier
        let lines = [
            "add \(pgid);touch \(marker) TERM 5", "add \(pgid) TERM;touch${IFS}\(marker) 5",
            "add \(pgid) TERM 5$(touch \(marker))", "add \(pgid) 'TERM' 5", "add $(touch \(marker)) TERM 5",
            "add 0 TERM 5", "add -1 TERM 5", "del", "bogus \(pgid) TERM 5", "add \(pgid) TERM",
            "add \(pgid) USR1 5", "del \(pgid)",  // recorded, then deleted: not signalled
        ].joined(separator: "\n") + "\n"
        #expect(Platform.writeAll(fds[1], Array(lines.utf8)))
        close(fds[1])
        #expect(await eventually(timeout: 5) { !helper.isRunning })
        #expect(helper.terminationStatus == 0)
        #expect(victim.isRunning, "no line recorded it")
        #expect(!FileManager.default.fileExists(atPath: marker))
        kill(pgid, SIGKILL)
    }

    /// The spawner's children are recorded; one that exited is forgotten once reaped, and the
    /// supervisor forgets an instance's group as soon as it handled its exit.
    @Test func exitedChildrenAreForgotten() async throws {
        let spawner = try Spawner()
        let done = CallCounter()
        let child = try spawner.spawn(SpawnRequest(command: "exec sleep 1000", environment: ProcessInfo.processInfo.environment,
                                                   directory: URL(fileURLWithPath: "/tmp"), usePTY: false)) { _, _ in done.increment() }
        #expect(spawner.watchdog.watchedGroups == [child.pid])
        #expect(child.watched.pgid == child.pid)
        Platform.signalGroup(child.pid, SIGKILL)
        close(child.outputFD)
        #expect(await eventually { done.value == 1 })
        #expect(spawner.watchdog.watchedGroups.isEmpty)
        spawner.stopWatchdog()
        #expect(spawner.watchdog.helperPID == nil)

        let log = CapturingLog()
        var once = SupervisorPlan.Group(name: "once", command: "exit 3", count: 1, basePort: 7300, usePTY: false)
        once.restart = .init(mode: .never, retries: 0)
        let s = try Supervisor(plan: testPlan([
            once, .init(name: "long", command: "exec sleep 1000", count: 1, basePort: 7400, usePTY: false),
        ]), log: log)
        await s.start()
        #expect(await eventually { await s.snapshot().instances.first { $0.name == "once.1" }?.state == "exited" })
        let long = try #require(await pids(s, "long")[1])
        #expect(s.spawner.watchdog.watchedGroups == [long])
        let helper = try #require(s.spawner.watchdog.helperPID)
        await s.shutdown(reason: nil)
        #expect(await s.waitUntilFinished() == 0)
        #expect(s.spawner.watchdog.watchedGroups.isEmpty)
        #expect(s.spawner.watchdog.helperPID == nil)
        #expect(await eventually(timeout: 5) { !isAlive(helper) }, "a normal shutdown ends the helper")
    }
}
