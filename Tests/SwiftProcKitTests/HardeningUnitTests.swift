import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 13, at the component level: per-spawn memory, spawn errors, saturating scale arithmetic.
@Suite(.serialized) struct HardeningUnitTests {
    private func spawnAndReap(_ spawner: Spawner, _ request: SpawnRequest) async throws -> SpawnedChild {
        let exited = CallCounter()
        let child = try spawner.spawn(request) { _, _ in exited.increment() }
        #expect(await eventually { Platform.peekExit(child.pid) != nil || exited.value > 0 })
        Platform.signalGroup(child.pid, SIGKILL)
        close(child.outputFD)
        #expect(await eventually { exited.value == 1 })
        return child
    }

    /// Foundation never frees a launched Process; what it holds must not be kept with it
    /// (Benchmarks/spawn-memory.sh measures the effect: KB of RSS per spawn).
    @Test func aLaunchedProcessKeepsNeitherEnvironmentNorScriptNorHandles() async throws {
        let spawner = try Spawner()
        var env = ProcessInfo.processInfo.environment
        env["BIG"] = String(repeating: "x", count: 8192)
        let child = try await spawnAndReap(spawner, SpawnRequest(command: "exit 0", environment: env,
                                                                 directory: URL(fileURLWithPath: "/tmp"), usePTY: false))
        #expect(child.process.environment == nil)
        #expect(child.process.arguments == nil)
        #expect(child.process.standardOutput == nil)
        #expect(child.process.terminationHandler == nil)
    }

    @Test func aSpawnFailureNamesItsCause() async throws {
        let spawner = try Spawner()
        var env = ProcessInfo.processInfo.environment
        env["HUGE"] = String(repeating: "x", count: 200_000)
        #expect {
            _ = try spawner.spawn(SpawnRequest(command: "true", environment: env, directory: URL(fileURLWithPath: "/tmp"),
                                               usePTY: false)) { _, _ in }
        } throws: { error in
            let text = "\(error)"
            return text.contains("E2BIG") && text.contains("too large to exec") && !text.contains("NSCocoaErrorDomain")
        }
    }

    @Test func environmentExecProblemsAreDetectedBeforeSpawning() {
        #expect(Platform.environmentExecProblem(["A": "b"]) == nil)
        #expect(Platform.environmentExecProblem(["HUGE": String(repeating: "x", count: Platform.execStringLimit)]) != nil)
        #expect(Platform.execArgumentLimit >= 4096)
    }

    @Test func scaleArithmeticSaturatesInsteadOfTrapping() throws {
        // Amounts past the per-group limit are refused before any arithmetic…
        #expect(throws: ConfigError.self) { try FormationChange.parse(["web=+9223372036854775807"], known: ["web"]) }
        #expect(throws: ConfigError.self) { try FormationChange.parse(["web=-9223372036854775807"], known: ["web"]) }
        // …and sums saturate instead of trapping.
        let nearMax = Formation([.init(group: "web", count: Int.max - 50)])
        #expect(try FormationChange.parse(["web=+100", "web=+100"], known: ["web"]).applied(to: nearMax)["web"] == Int.max)
        #expect(try FormationChange.parse(["web=-100"], known: ["web"]).applied(to: Formation([.init(group: "web", count: 3)]))["web"] == 0)
    }
}

/// Foundation on Linux keeps a launched Process alive (it and its run-loop source hold each
/// other) until `waitUntilExit()` runs; `Supervisor.release` does that once it has ended, so a
/// crash-looping group does not grow the supervisor by a Process per spawn.
@Suite struct ProcessReleaseTests {
    @Test func aReapedProcessIsFreedOnceReleased() async throws {
        weak var released: Process?
        do {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/true")
            let done = DispatchSemaphore(value: 0)
            process.terminationHandler = { _ in done.signal() }
            try process.run()
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                Thread { done.wait(); c.resume() }.start()
            }
            #expect(await eventually { !process.isRunning })
            Supervisor.release(process)
            released = process
        }
        // Without the release, Foundation's own cycle keeps it (measured: ~1.5 KB a spawn).
        #expect(await eventually { released == nil })
    }
}
