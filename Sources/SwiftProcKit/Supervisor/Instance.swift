import Foundation

/// One running (or not) copy of a process group: `app.2`.
///
/// Owned by the ``Supervisor`` actor and never handed outside it. Work that outlives an `await`
/// (timers, stops, health notifications) refers to an instance by ``id`` — unique for the
/// supervisor's lifetime, unlike its name, which a later instance may reuse — plus the spawn
/// ``generation`` it was about.
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

    let id: Int
    let group: String
    let index: Int
    let name: String
    let machineID: String
    var port: Int
    let colorIndex: Int

    var state: State = .starting
    /// Wall-clock seconds since 1970 of the last state change.
    var lastUpdated: Double = Date().timeIntervalSince1970

    /// The current process (= process group) while one may exist.
    var pid: pid_t?
    /// The current process group's record with the watchdog, until the group has ended.
    var watched: GroupWatchdog.Group?
    /// The supervisor-wide number of the current spawn; a late notification about an earlier
    /// process carries an older one and is ignored.
    var generation = 0
    var startedAt: Double = 0
    /// Set once the current process's leader exit was seen (by peek or by Foundation).
    var exitSeen = false
    /// The current process's output is still being read.
    var outputOpen = false
    /// An exit seen while its output was still being read: announced (and the restart policy
    /// applied) once the output closed, so the exit line never overtakes the child's last lines.
    var pendingExit: Platform.Exit?
    var restarts = 0
    var consecutiveFailures = 0
    /// False once the formation no longer wants this instance (scale down): its exit triggers
    /// no restart and the instance leaves the table.
    var wanted = true
    /// A rolling restart is replacing this process: its exit triggers no restart policy; the
    /// restart starts it again. It still counts in the formation.
    var replacing = false
    /// Being stopped by auto-stop: its exit becomes `stoppedIdle`, not a restart.
    var stoppingForIdle = false
    var pendingRestart: Task<Void, Never>?
    /// A duplicate of the current process's pty master (pty instances), for `attach`; closed
    /// when its output ends.
    var terminal: Int32?
    /// The client attached to it, if any (one at a time).
    var attached: AttachSession?
    /// Resumed when the current process has exited.
    var exitWaiters: [CheckedContinuation<Void, Never>] = []
    /// The current process's health checks and their latest results, in check order.
    var monitor: HealthMonitor?
    var checks: [HealthResult] = []

    init(id: Int, group: String, index: Int, machineID: String, port: Int, colorIndex: Int) {
        self.id = id
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

    /// Whether its program is (as far as we know) alive.
    var isLive: Bool { pid != nil && !exitSeen }

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
