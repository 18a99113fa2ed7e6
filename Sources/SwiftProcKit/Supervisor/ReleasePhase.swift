import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs fly.toml's `[deploy] release_command` (or a Procfile's `release:`) once before the
/// formation starts, as Fly runs it in a temporary machine before a deploy: with the app's
/// environment plus `RELEASE_COMMAND=1` and `FLY_PROCESS_GROUP=fly_app_release_command`, its
/// output prefixed `release`, bounded by `release_command_timeout`.
public final class ReleasePhase: @unchecked Sendable {
    public enum Outcome: Sendable, Equatable {
        case succeeded
        /// The command ended unsuccessfully; `status` is what `start` exits with.
        case failed(Platform.Exit, status: Int32)
        case timedOut
        case cancelled
        case couldNotStart(String)
    }

    private let lock = NSLock()
    private var cancelled = false
    private var pid: pid_t?

    public init() {}

    /// Runs `command` with `spawner` and waits for it. Output goes to `log` as `release` lines.
    /// `refusing` ends the messages of a failure: what does not happen (`not starting`).
    func run(_ command: String, plan: SupervisorPlan, spawner: Spawner, usePTY: Bool, timeout: Double,
             log: any SupervisorLog, refusing: String) async -> Outcome {
        let env = plan.releaseEnvironment()
        let child: SpawnedChild
        // Seen by a peek while its zombie waits, or reported by Foundation once it reaped it —
        // which, with nothing else in the group holding its descriptors, may come first.
        let reaped = Locked<Platform.Exit?>(nil)
        do {
            child = try spawner.spawn(SpawnRequest(command: command, environment: env, directory: plan.directory,
                                                   usePTY: usePTY, killSignal: plan.killSignal,
                                                   killTimeout: plan.killTimeout),
                                      onExit: { _, exit in reaped.set(exit) })
        } catch {
            return .couldNotStart(String(describing: error))
        }
        let setPID: (pid_t?) -> Bool = { [self] p in lock.lock(); defer { lock.unlock() }; pid = p; return cancelled }
        if setPID(child.pid) { Platform.signalGroup(child.pid, SIGKILL) }
        let outputClosed = Locked(false)
        log.attach(fd: child.outputFD, source: "release", group: "release", colorIndex: -1, isPTY: usePTY,
                   onClose: { outputClosed.set(true) })
        log.system("running release command: \(command)")
        let deadline = Platform.monotonicSeconds() + timeout
        var exit: Platform.Exit?
        while exit == nil {
            exit = Platform.peekExit(child.pid) ?? reaped.get()
            // A cancel SIGKILLs the group: that exit is the cancel's, not the command's verdict.
            if isCancelled {
                Platform.signalGroup(child.pid, SIGKILL)
                spawner.groupEnded(child.watched)
                _ = setPID(nil)
                log.system("release command stopped; \(refusing)")
                return .cancelled
            }
            if exit != nil { break }
            if Platform.monotonicSeconds() >= deadline {
                Platform.signalGroup(child.pid, SIGKILL)
                spawner.groupEnded(child.watched)
                _ = setPID(nil)
                log.system("release command timed out after \(formatSeconds(timeout)); \(refusing)")
                return .timedOut
            }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        // Any leftovers of the release command go with it; then the watchdog forgets the group.
        Platform.signalGroup(child.pid, SIGKILL)
        spawner.groupEnded(child.watched)
        _ = setPID(nil)
        // Foundation may not have reaped it yet; release it once it has (see Supervisor.release).
        let process = child.process
        Task.detached { while process.isRunning { try? await Task.sleep(nanoseconds: 50_000_000) }; Supervisor.release(process) }
        // Its last lines come before the verdict.
        let flushDeadline = Platform.monotonicSeconds() + 1
        while !outputClosed.get() && Platform.monotonicSeconds() < flushDeadline {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        guard let exit, !exit.isSuccess else {
            log.system("release command succeeded")
            return .succeeded
        }
        let status: Int32
        switch exit {
        case .exited(let code): status = code
        case .signaled(let sig): status = 128 + sig
        }
        log.system("release command \(exit.description); \(refusing)")
        return .failed(exit, status: status)
    }

    private var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }

    /// Stops a running release command (Ctrl-C during the release phase).
    public func cancel() {
        lock.lock()
        cancelled = true
        let p = pid
        lock.unlock()
        if let p { Platform.signalGroup(p, SIGKILL) }
    }
}

/// A value shared with a callback on another thread.
public final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
    public func set(_ newValue: Value) { lock.lock(); value = newValue; lock.unlock() }
}
