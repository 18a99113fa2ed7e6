import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the supervisor needs from the log path: hand it a child's output fd, write its own lines.
/// ``LogMultiplexer`` is the real one; the protocol keeps the supervisor from depending on how
/// lines are read, formatted and written.
public protocol SupervisorLog: Sendable {
    /// Takes ownership of `fd` (a pipe or pty master) and prints its lines as `source`.
    func attach(fd: Int32, source: String, group: String, colorIndex: Int, isPTY: Bool,
                onClose: @escaping @Sendable () -> Void)
    /// A `system` line.
    func system(_ message: String)
    /// Makes room for `name` in the padded name column before its first line.
    func register(name: String)
    /// The last `count` lines `source` printed (for ``CrashHint``).
    func recentLines(of source: String, last count: Int) -> [String]
    /// Sends `source`'s raw output to `tap` too (for `attach`); nil removes it.
    func setTap(source: String, _ tap: (any LogTap)?)
}

extension SupervisorLog {
    public func recentLines(of source: String, last count: Int) -> [String] { [] }
    public func setTap(source: String, _ tap: (any LogTap)?) {}
}

extension LogMultiplexer: SupervisorLog {
    public func recentLines(of source: String, last count: Int) -> [String] {
        recent.snapshot(last: count, matching: LogFilter(names: [source])).map { String(decoding: $0.text, as: UTF8.self) }
    }
}

/// The one owner of supervisor state: desired formation, instances, restarts, shutdown.
///
/// Every outside event arrives as a call on this actor: a child's exit (from the SIGCHLD source
/// or Foundation's termination handler), a signal, a control request, a backoff timer, a proxy
/// waiting for an instance, a health check. Nothing here touches child output — that flows on
/// the log path's own thread. This file holds the lifecycle; `Supervisor+Formation.swift` scale,
/// restart and status; `Supervisor+Edge.swift` the proxies, checks and auto stop/start.
public actor Supervisor {
    /// Where the supervisor is in its life. Control requests that change the formation are
    /// accepted only while `running`.
    enum Phase: Equatable {
        case notStarted
        /// The release command runs; nothing else has started.
        case releasing
        case running
        /// Shutting down; `forced` after a second request (a second Ctrl-C): SIGKILL at once.
        case stopping(forced: Bool)
        case finished
    }

    /// What runs; replaced by ``deploy(_:release:)``.
    public internal(set) var plan: SupervisorPlan
    let log: any SupervisorLog
    nonisolated let spawner: Spawner
    var phase = Phase.notStarted
    /// Group name → desired count, starting from the plan's formation.
    var desired: [String: Int]
    /// Instances of all groups, kept sorted by group (file order) then index.
    var instances: [Instance] = []
    var groupOrder: [String: Int]
    /// Every Process not yet reaped by Foundation, by pid (kept alive until its handler ran).
    private var unreaped: [pid_t: Process] = [:]
    private var nextInstanceID = 0
    private var spawnCount = 0
    /// Process groups SIGKILLed during shutdown because they outlived `kill_timeout`.
    private var hardKills = 0
    private var anyFailed = false
    /// "group/cause" pairs a ``CrashHint`` was already printed for: once per run is enough.
    private var crashHintsGiven: Set<String> = []
    private var exitCode: Int32 = 0
    private var finishWaiters: [CheckedContinuation<Int32, Never>] = []
    private var stateWriteScheduled = false
    /// The release command under way (before start, or for a deploy), so a shutdown cancels it.
    var release: ReleasePhase?
    private var leftoversCleaned = false
    /// Marks this run's children (``LeftoverProcesses/markerVariable``), so a later run kills
    /// only process groups that provably were ours.
    let ownerToken = LeftoverProcesses.makeToken()
    /// Whether the user (a signal, `swiftproc stop`) has asked to stop, as opposed to `--no-restart`.
    private var userAskedToStop = false
    /// SIGCHLD is how exits are noticed: Foundation's own notification waits for every process
    /// that inherited the child's fds, which includes whatever the program left running.
    private var childSignal: SignalSource?
    /// One per service: the pool of instances its proxy spreads connections over.
    var routes: [Route]
    /// The connection limit every proxy of this supervisor shares (from the open-file limit
    /// when the supervisor starts, after `start` raised it).
    let proxyAdmission = ProxyAdmission(limit: DescriptorBudget(openFiles: Platform.openFileLimit()).proxyConnections)
    var idleWatch: Task<Void, Never>?
    /// Rolling restarts run one after another, never two at once.
    var restartQueue: Task<Void, Never>?

    public init(plan: SupervisorPlan, log: any SupervisorLog) throws(SpawnError) {
        self.plan = plan
        self.log = log
        self.spawner = try Spawner()
        var desired: [String: Int] = [:]
        var order: [String: Int] = [:]
        for (i, g) in plan.groups.enumerated() {
            desired[g.name] = g.count
            order[g.name] = i
        }
        self.desired = desired
        self.groupOrder = order
        self.routes = plan.services.map(Supervisor.makeRoute)
        // The name column is as wide as it will be from the first line on.
        for group in plan.groups where group.count > 0 {
            for index in 1...group.count { log.register(name: "\(group.name).\(index)") }
        }
    }

    var isStopping: Bool {
        switch phase {
        case .stopping, .finished: return true
        default: return false
        }
    }

    /// `running`, `releasing`, `stopping`… for `status`.
    var phaseName: String {
        switch phase {
        case .notStarted: return "starting"
        case .releasing: return "releasing"
        case .running: return "running"
        case .stopping: return "stopping"
        case .finished: return "stopped"
        }
    }

    // MARK: - Starting

    private func watchChildren() {
        guard childSignal == nil else { return }
        // Daemonized descendants (setsid + double fork) come back to us instead of init.
        Platform.becomeChildSubreaper()
        childSignal = SignalSource(SIGCHLD) { [weak self] in
            Task { await self?.childrenChanged() }
        }
    }

    /// Runs the release command (see ``ReleasePhase``) before anything else starts. A shutdown
    /// meanwhile (Ctrl-C, `swiftproc stop`) cancels it.
    public func runRelease(_ command: String, timeout: Double, usePTY: Bool) async -> ReleasePhase.Outcome {
        guard phase == .notStarted else { return .cancelled }
        phase = .releasing
        log.register(name: "release")
        watchChildren()
        cleanUpLeftovers()
        let release = ReleasePhase()
        self.release = release
        let outcome = await release.run(command, plan: plan, spawner: spawner, usePTY: usePTY,
                                        timeout: timeout, log: log, refusing: "not starting")
        self.release = nil
        if phase == .releasing { phase = .notStarted }
        return outcome
    }

    /// Cleans up what a crashed earlier run left behind, then starts the formation.
    public func start() {
        guard phase == .notStarted else { return }
        phase = .running
        watchChildren()
        cleanUpLeftovers()
        // Where each instance's PIDFILE goes (see SupervisorPlan.instanceVariables).
        if plan.environment["PIDFILE"] == nil {
            // Pid files of an earlier run are stale (its processes are gone): a recycled pid in
            // one could make a Rails server refuse to start.
            try? FileManager.default.removeItem(at: plan.pidDirectory)
            try? FileManager.default.createDirectory(at: plan.pidDirectory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
        for group in plan.groups {
            for index in stride(from: 1, through: group.count, by: 1) {
                launch(addInstance(group: group.name, index: index))
            }
        }
        startIdleWatch()
    }

    /// Stops what a crashed earlier run left behind (once, before anything of ours runs).
    private func cleanUpLeftovers() {
        guard let file = plan.stateFile, !leftoversCleaned else { return }
        leftoversCleaned = true
        let killed = LeftoverProcesses.killAll(recordedIn: file)
        if killed > 0 {
            log.system("stopped \(killed) process group\(killed == 1 ? "" : "s") left over from an earlier run")
        }
    }

    func groupPlan(_ name: String) -> SupervisorPlan.Group? {
        groupOrder[name].map { plan.groups[$0] }
    }

    func instance(id: Int) -> Instance? { instances.first { $0.id == id } }

    func addInstance(group: String, index: Int) -> Instance {
        let position = groupOrder[group] ?? 0
        let g = plan.groups[position]
        nextInstanceID += 1
        let inst = Instance(id: nextInstanceID, group: group, index: index,
                            machineID: machineID(app: plan.appName, group: group, index: index),
                            port: g.basePort + index - 1, colorIndex: position)
        // Instances of a group a deploy removed (still stopping) sort last.
        let at = instances.firstIndex { (groupOrder[$0.group] ?? Int.max, $0.index) > (position, index) } ?? instances.count
        instances.insert(inst, at: at)
        return inst
    }

    func launch(_ inst: Instance) {
        guard phase == .running, inst.wanted, let group = groupPlan(inst.group) else { return }
        inst.pendingRestart = nil
        spawnCount += 1
        inst.generation = spawnCount
        inst.startedAt = Platform.monotonicSeconds()
        var environment = plan.environment(group: inst.group, index: inst.index, port: inst.port)
        // Proof for a later run that a recorded process group is ours (see LeftoverProcesses).
        environment[LeftoverProcesses.markerVariable] = ownerToken
        let request = SpawnRequest(command: group.command, environment: environment,
                                   directory: plan.directory, usePTY: group.usePTY,
                                   killSignal: plan.killSignal, killTimeout: plan.killTimeout, inputFromTerminal: true)
        let (id, generation) = (inst.id, inst.generation)
        do {
            let child = try spawner.spawn(request) { [weak self] pid, exit in
                Task { await self?.foundationReaped(id: id, generation: generation, pid: pid, exit: exit) }
            }
            unreaped[child.pid] = child.process
            inst.pid = child.pid
            inst.watched = child.watched
            inst.exitSeen = false
            inst.outputOpen = true
            inst.stoppingForIdle = false
            inst.set(.running)
            closeTerminal(inst)
            if group.usePTY {
                let copy = dup(child.outputFD)
                if copy >= 0 { Platform.setCloseOnExec(copy); inst.terminal = copy }
            }
            log.attach(fd: child.outputFD, source: inst.name, group: inst.group, colorIndex: inst.colorIndex,
                       isPTY: group.usePTY, onClose: { [weak self] in
                           Task { await self?.outputClosed(id: id, generation: generation) }
                       })
            log.system("\(inst.name) started (pid \(child.pid), port \(inst.port))")
            for route in routes(serving: inst.group) { route.pool.add(id: inst.name, port: inst.port) }
            startHealthChecks(inst)
            scheduleStateWrite()
        } catch {
            inst.pid = nil
            inst.exitSeen = true
            afterExit(inst, .exited(127), what: "\(inst.name) could not start: \(error)")
        }
    }

    // MARK: - Exits

    /// SIGCHLD arrived: look (without reaping) for instances whose program has ended.
    func childrenChanged() {
        for inst in instances where inst.isLive {
            if let pid = inst.pid, let exit = Platform.peekExit(pid) { leaderExited(inst, exit) }
        }
        // Adopted orphans that exited are ours to reap (Foundation never waits for them).
        for orphan in Platform.adoptedChildren() where orphan.isZombie { Platform.reap(orphan.pid) }
    }

    /// At the end of a stop: descendants that left their process group and session (daemonized)
    /// and were re-parented to us as subreaper are killed too — nothing outlives swiftproc.
    private func stopAdoptedDescendants() {
        let strays = Platform.adoptedChildren()
        let live = strays.filter { !$0.isZombie }
        for stray in live {
            kill(stray.pid, SIGKILL)
            // A daemon that made its own session leads its own group: take its children too.
            if getpgid(stray.pid) == stray.pid { Platform.signalGroup(stray.pid, SIGKILL) }
        }
        let deadline = Platform.monotonicSeconds() + 1
        var pending = strays.map(\.pid)
        while !pending.isEmpty && Platform.monotonicSeconds() < deadline {
            pending.removeAll { Platform.reap($0) || kill($0, 0) != 0 }
            if !pending.isEmpty { usleep(5_000) }
        }
        if !live.isEmpty {
            let list = live.prefix(5).map { "\($0.command) (pid \($0.pid))" }.joined(separator: ", ")
            log.system("stopped \(live.count) daemonized descendant\(live.count == 1 ? "" : "s") that had left its process group: \(list)")
        }
    }

    /// Foundation reaped the process of spawn `generation` of instance `id`.
    private func foundationReaped(id: Int, generation: Int, pid: pid_t, exit: Platform.Exit) {
        if let inst = instance(id: id), inst.generation == generation, inst.isLive {
            leaderExited(inst, exit)
        }
        Self.release(unreaped.removeValue(forKey: pid))
        if isStopping { finishIfDone() }
    }

    /// Lets go of a Process Foundation has reaped. On Linux a launched Process and its run-loop
    /// source hold each other until `waitUntilExit()` clears the source — which returns at once
    /// for a process that has ended — so without it every spawn leaked about 1.5 KB.
    static func release(_ process: Process?) {
        guard let process, !process.isRunning else { return }
        process.waitUntilExit()
    }

    private func leaderExited(_ inst: Instance, _ exit: Platform.Exit) {
        guard let pid = inst.pid else { return }
        inst.exitSeen = true
        inst.pid = nil
        // The program is gone; whatever it left in its group (orphans) goes too, so Foundation's
        // reaping and the output's EOF follow promptly. Then the watchdog forgets the group: its
        // number may be reused once the leader is reaped.
        Platform.signalGroup(pid, SIGKILL)
        if let watched = inst.watched { spawner.groupEnded(watched) }
        inst.watched = nil
        for route in routes(serving: inst.group) { route.pool.remove(inst.name) }
        stopHealthChecks(inst)
        scheduleStateWrite()
        guard inst.outputOpen else { return announce(inst, exit) }
        // Its last lines may still be in the pipe: announce once they are written. The group was
        // just killed, so the output closes at once — unless a descendant that left the group
        // holds it, hence the deadline.
        inst.pendingExit = exit
        let (id, generation) = (inst.id, inst.generation)
        Task { [weak self] in
            try? await Task.sleep(nanoseconds: 1_000_000_000)
            await self?.outputClosed(id: id, generation: generation)
        }
    }

    /// The output of spawn `generation` of instance `id` was read to its end (or we stopped waiting).
    private func outputClosed(id: Int, generation: Int) {
        guard let inst = instance(id: id), inst.generation == generation else { return }
        inst.outputOpen = false
        closeTerminal(inst)
        guard let exit = inst.pendingExit else { return }
        inst.pendingExit = nil
        announce(inst, exit)
        if isStopping { finishIfDone() }
    }

    /// The process behind the pty is gone: an attached client is told, the master copy closed.
    func closeTerminal(_ inst: Instance) {
        if let session = inst.attached {
            session.end()
            log.setTap(source: inst.name, nil)
            inst.attached = nil
        }
        if let fd = inst.terminal { close(fd) }
        inst.terminal = nil
    }

    /// The exit is final: say so, apply the restart policy, and only then let whoever waits in
    /// ``stop(id:drain:)`` go on (a rolling restart relaunches right after).
    private func announce(_ inst: Instance, _ exit: Platform.Exit) {
        let waiters = inst.exitWaiters
        inst.exitWaiters = []
        afterExit(inst, exit)
        waiters.forEach { $0.resume() }
    }

    private func describe(_ exit: Platform.Exit) -> String {
        switch exit {
        case .exited(127): return "exited with status 127 (command not found)"
        case .exited(126): return "exited with status 126 (command not executable)"
        default: return exit.description
        }
    }

    /// Applies the restart policy to an instance whose process ended, or never started (then
    /// `what` says why instead of the exit status).
    /// One hint line per group and known cause, when the instance's last lines show one.
    private func giveCrashHint(_ inst: Instance) {
        guard let cause = CrashHint.cause(in: log.recentLines(of: inst.name, last: 20)),
              crashHintsGiven.insert("\(inst.group)/\(cause.rawValue)").inserted else { return }
        log.system(cause.advice(for: inst.name))
    }

    private func afterExit(_ inst: Instance, _ exit: Platform.Exit, what override: String? = nil) {
        let what = override ?? "\(inst.name) \(describe(exit))"
        if inst.stoppingForIdle && inst.wanted && !isStopping {
            inst.stoppingForIdle = false
            inst.set(.stoppedIdle)
            log.system("\(what) — stopped (idle)")
            // A client that arrived while it was stopping found nothing to start; start it now.
            if routes(serving: inst.group).contains(where: clientsAreWaiting) {
                log.system("\(inst.name) starting: a connection is waiting")
                launch(inst)
            }
            return
        }
        if isStopping || !inst.wanted || inst.replacing {
            inst.set(.exited(exit))
            log.system(what)
            return
        }
        if plan.stopWhenAnyExits {
            inst.set(.exited(exit))
            log.system("\(what) — stopping all processes (--no-restart)")
            if !exit.isSuccess { exitCode = 1 }
            Task { await self.shutdown(reason: nil, requestedByUser: false) }
            return
        }
        guard let group = groupPlan(inst.group) else { return }
        if !exit.isSuccess { giveCrashHint(inst) }
        let restart: Bool
        switch group.restart.mode {
        case .always: restart = true
        case .onFailure: restart = !exit.isSuccess
        case .never: restart = false
        }
        guard restart else {
            inst.set(.exited(exit))
            log.system(what)
            return
        }
        let now = Platform.monotonicSeconds()
        if now - inst.startedAt >= plan.backoff.resetAfter { inst.consecutiveFailures = 0 }
        inst.consecutiveFailures += 1
        if inst.consecutiveFailures > group.restart.retries {
            inst.set(.failed)
            anyFailed = true
            let n = group.restart.retries
            log.system("\(what) — failed after \(n) restart\(n == 1 ? "" : "s"); giving up")
            return
        }
        let delay = plan.backoff.delay(afterFailures: inst.consecutiveFailures)
        inst.set(.backingOff(until: now + delay))
        inst.restarts += 1
        if delay == 0 {
            log.system("\(what) — restarting")
            launch(inst)
        } else {
            log.system("\(what) — restarting in \(formatSeconds(delay))")
            let (id, generation) = (inst.id, inst.generation)
            inst.pendingRestart = Task { [weak self] in
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                guard !Task.isCancelled else { return }
                await self?.restartDue(id: id, generation: generation)
            }
        }
    }

    private func restartDue(id: Int, generation: Int) {
        guard let inst = instance(id: id), inst.generation == generation, case .backingOff = inst.state else { return }
        launch(inst)
    }

    // MARK: - Stopping

    /// Stops one instance: its kill signal to the whole process group, SIGKILL after the timeout.
    /// With `drain`, it first leaves its services' rotation and its open connections get up to
    /// `kill_timeout` to finish, as Fly drains a machine.
    func stop(id: Int, drain: Bool = true) async {
        guard let inst = instance(id: id) else { return }
        inst.pendingRestart?.cancel()
        inst.pendingRestart = nil
        guard inst.isLive else {
            if case .backingOff = inst.state { inst.set(.exited(.exited(0))) }
            return
        }
        inst.set(.stopping)
        if drain {
            for route in routes(serving: inst.group) { await route.pool.drain(inst.name, timeout: plan.killTimeout) }
        }
        guard let pid = inst.pid, !inst.exitSeen else { return }
        Platform.signalGroup(pid, plan.killSignal)
        let (generation, timeout) = (inst.generation, plan.killTimeout)
        let escalation = Task { [weak self] in
            try? await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
            guard !Task.isCancelled else { return }
            await self?.killHard(id: id, generation: generation,
                                 because: "did not stop within \(formatSeconds(timeout))")
        }
        await withCheckedContinuation { inst.exitWaiters.append($0) }
        escalation.cancel()
    }

    /// SIGKILLs the process group of spawn `generation` of instance `id`, if it still runs.
    private func killHard(id: Int, generation: Int, because reason: String?) {
        guard let inst = instance(id: id), inst.generation == generation, inst.isLive, let pid = inst.pid else { return }
        if let reason { log.system("\(inst.name) \(reason) — sending SIGKILL") }
        if isStopping { hardKills += 1 }
        Platform.signalGroup(pid, SIGKILL)
    }

    /// Stops everything and finishes. A second request while stopping kills at once (a second
    /// Ctrl-C) — unless the stop was swiftproc's own (`--no-restart`): then the user's first
    /// request is their first. `reason` is printed first, e.g. "SIGINT received".
    public func shutdown(reason: String?, requestedByUser: Bool = true) async {
        switch phase {
        case .finished, .stopping(forced: true):
            return
        case .stopping(forced: false):
            if requestedByUser && !userAskedToStop {
                userAskedToStop = true
                return
            }
            phase = .stopping(forced: true)
            log.system("killing all processes now")
            for inst in instances { killHard(id: inst.id, generation: inst.generation, because: nil) }
            return
        case .notStarted, .releasing, .running:
            break
        }
        let wasReleasing = phase == .releasing
        phase = .stopping(forced: false)
        userAskedToStop = requestedByUser
        if !wasReleasing { release?.cancel() }
        if wasReleasing {
            release?.cancel()
            log.system([reason, "stopping the release command"].compactMap { $0 }.joined(separator: " — "))
        }
        idleWatch?.cancel()
        // Drain: no new connections, but the open ones keep flowing while the instances, given
        // their kill signal, finish them (up to kill_timeout); what is left is closed after.
        for route in routes { route.proxy?.stopAccepting() }
        let running = instances.filter(\.isLive)
        if !wasReleasing {
            var words = reason.map { [$0] } ?? []
            if !running.isEmpty { words.append("sending \(Platform.signalName(plan.killSignal)) to all processes") }
            if !words.isEmpty { log.system(words.joined(separator: " — ")) }
        }
        await withTaskGroup(of: Void.self) { tasks in
            for id in instances.map(\.id) {
                tasks.addTask { await self.stop(id: id, drain: false) }
            }
        }
        let proxies = routes.compactMap(\.proxy)
        let grace = plan.killTimeout
        if !proxies.isEmpty {
            // The instances are gone (or were killed after kill_timeout), so their connections
            // are ending: a moment for the relays to pass on the last bytes, then cut the rest.
            await Task.detached { for proxy in proxies { _ = proxy.waitForConnections(timeout: min(grace, 1)); proxy.stop() } }.value
        }
        // Foundation reaps once a group's last member is gone; give stragglers a moment.
        let deadline = Platform.monotonicSeconds() + 3
        while (!unreaped.isEmpty || instances.contains { $0.pendingExit != nil }) && Platform.monotonicSeconds() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        finishIfDone(force: true)
    }

    private func finishIfDone(force: Bool = false) {
        guard case .stopping = phase else { return }
        guard force || (unreaped.isEmpty && !instances.contains { $0.isLive || $0.pendingExit != nil }) else { return }
        stopAdoptedDescendants()
        // Every group was stopped and forgotten: the watchdog's helper has nothing to do and exits.
        spawner.stopWatchdog()
        phase = .finished
        if hardKills > 0 {
            log.system("stopped; \(hardKills) process group\(hardKills == 1 ? " was" : "s were") killed with SIGKILL")
            exitCode = 1
        } else if !unreaped.isEmpty {
            log.system("stopped; \(unreaped.count) process\(unreaped.count == 1 ? "" : "es") left a descendant outside its process group")
        } else if !instances.isEmpty {
            log.system("all processes stopped")
        }
        if anyFailed { exitCode = 1 }
        if let file = plan.stateFile { LeftoverProcesses.forget(file) }
        let waiters = finishWaiters
        finishWaiters = []
        waiters.forEach { $0.resume(returning: exitCode) }
    }

    /// Suspends until shutdown finished; returns swiftproc's exit status.
    public func waitUntilFinished() async -> Int32 {
        if phase == .finished { return exitCode }
        return await withCheckedContinuation { finishWaiters.append($0) }
    }

    // MARK: - Leftover bookkeeping

    private func scheduleStateWrite() {
        guard plan.stateFile != nil, !stateWriteScheduled else { return }
        stateWriteScheduled = true
        Task { self.writeStateFile() }
    }

    private func writeStateFile() {
        stateWriteScheduled = false
        guard let file = plan.stateFile, phase != .finished else { return }
        LeftoverProcesses.record(instances.compactMap { $0.isLive ? $0.pid : nil }, token: ownerToken, in: file)
    }
}

func formatSeconds(_ s: Double) -> String {
    // Durations come from flags (`--idle-timeout 9223372036854775807`): never trap converting.
    guard s.isFinite, abs(s) < 1e15 else { return String(format: "%.0fs", s) }
    return s == s.rounded() ? "\(Int(s))s" : String(format: "%.1fs", s)
}
