import Foundation

/// One running (or not) copy of a process group: `app.2`.
///
/// Owned by the ``Supervisor`` actor; a plain class only so the actor can mutate entries of its
/// table in place without copy-back noise.
final class Instance {
    enum State: Equatable {
        case starting
        case running
        /// Waiting to restart at `until` (monotonic seconds).
        case backingOff(until: Double)
        case stopping
        case exited(Platform.Exit)
        case failed
        /// Stopped by auto-stop for want of connections; auto-start brings it back.
        case stoppedIdle
    }

    let group: String
    let index: Int
    let name: String
    let machineID: String
    let port: Int
    let colorIndex: Int

    var state: State = .starting
    /// Wall-clock seconds since 1970 of the last state change.
    var lastUpdated: Double = Date().timeIntervalSince1970

    var process: Process?
    var pid: pid_t?
    /// Counts spawns, so a late notification about an earlier process is recognised and ignored.
    var generation = 0
    var startedAt: Double = 0
    /// Set once the current process's leader exit was seen (by peek or by Foundation).
    var exitSeen = false
    /// Set once Foundation reaped the current process.
    var reaped = true
    var restarts = 0
    var consecutiveFailures = 0
    /// False once the formation no longer wants this instance (scale down) or while a restart
    /// request replaces it: its exit then triggers no restart policy.
    var wanted = true
    /// The kill signal escalated to SIGKILL because the timeout passed.
    var killedHard = false
    /// Being stopped by auto-stop: its exit becomes `stoppedIdle`, not a restart.
    var stoppingForIdle = false
    /// The current process's health checks and their latest results, in check order.
    var monitor: HealthMonitor?
    var checks: [HealthResult] = []
    var pendingRestart: Task<Void, Never>?
    /// Resumed when the current process has exited and been cleaned up.
    var exitWaiters: [CheckedContinuation<Void, Never>] = []

    init(group: String, index: Int, machineID: String, port: Int, colorIndex: Int) {
        self.group = group
        self.index = index
        self.name = "\(group).\(index)"
        self.machineID = machineID
        self.port = port
        self.colorIndex = colorIndex
    }

    func set(_ state: State) {
        self.state = state
        lastUpdated = Date().timeIntervalSince1970
    }

    /// Whether a process of this instance may still exist.
    var hasProcess: Bool { pid != nil && !(exitSeen && reaped) }

    /// Words for `status`: the state and its detail.
    func describe(now: Double) -> (state: String, detail: String?) {
        switch state {
        case .starting: return ("starting", nil)
        case .running: return ("running", nil)
        case .backingOff(let until):
            return ("backing-off", "in \(max(0, Int((until - now).rounded(.up))))s")
        case .stopping: return ("stopping", nil)
        case .exited(let exit):
            switch exit {
            case .exited(let code): return ("exited", "\(code)")
            case .signaled(let sig): return ("exited", Platform.signalName(sig))
            }
        case .failed: return ("failed", nil)
        case .stoppedIdle: return ("stopped", "idle")
        }
    }
}
