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
}

/// The one owner of supervisor state: desired formation, instances, restarts, shutdown.
///
/// Every outside event arrives as a call on this actor: a child's exit (from the SIGCHLD source
/// or Foundation's termination handler), a signal, a control request, a backoff timer. Nothing
/// here touches child output — that flows on the log path's own thread.
public actor Supervisor {
    public let plan: SupervisorPlan
    private let log: any SupervisorLog
    private let spawner: Spawner
    /// Group name → desired count, starting from the plan's formation.
    private var desired: [String: Int]
    /// Instances of all groups, kept sorted by group (file order) then index.
    private var instances: [Instance] = []
    /// Every Process not yet reaped by Foundation, by pid (kept alive until its handler ran).
    private var unreaped: [pid_t: Process] = [:]
    private var shuttingDown = false
    private var forced = false
    private var hardKills = 0
    private var anyFailed = false
    private var exitCode: Int32 = 0
    private var finished = false
    private var finishWaiters: [CheckedContinuation<Int32, Never>] = []
    private var stateWriteScheduled = false
    private let groupOrder: [String: Int]
    /// SIGCHLD is how exits are noticed: Foundation's own notification waits for every process
    /// that inherited the child's fds, which includes the watchdog loop in the child's group.
    private var childSignal: SignalSource?
    /// One per service: the pool of instances its proxy spreads connections over.
    private let routes: [Route]
    private var idleWatch: Task<Void, Never>?

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
        self.routes = plan.services.map { Route(service: $0, pool: BackendPool(concurrency: $0.concurrency)) }
    }

    // MARK: - Proxies

    /// A service's proxy and pool. The pool is fed by instance lifecycle: added when started,
    /// drained before a stop, removed at exit.
    final class Route: @unchecked Sendable {
        let service: SupervisorPlan.Service
        let pool: BackendPool
        var proxy: TCPProxy?

        init(service: SupervisorPlan.Service, pool: BackendPool) {
            self.service = service
            self.pool = pool
        }
    }

    private func routes(serving group: String) -> [Route] {
        routes.filter { $0.service.groups.contains(group) }
    }

    /// Opens every service's proxy on 127.0.0.1. Call before ``start()``, so a port in use is
    /// reported before anything is spawned. Returns one line per proxy for the user.
    public func openProxies() throws -> [String] {
        var lines: [String] = []
        for (i, route) in routes.enumerated() {
            guard let port = route.service.listenPort else { continue }
            let proxy = TCPProxy(port: port, pool: route.pool, waitForBackend: plan.proxyWait,
                                 onNoBackend: { [weak self] in Task { await self?.connectionWaiting(route: i) } },
                                 httpErrors: route.service.isHTTP)
            do {
                try proxy.start()
            } catch {
                routes.forEach { $0.proxy?.stop() }
                throw error
            }
            route.proxy = proxy
            lines.append("\(route.service.name): proxy on 127.0.0.1:\(proxy.boundPort) → \(route.service.groups.joined(separator: ", "))")
        }
        return lines
    }

    /// The port a service's proxy listens on (0 when it has none).
    public func proxyPort(service index: Int) -> Int { routes[index].proxy?.boundPort ?? 0 }

    /// A client waits at a proxy with no instance to take it: start an idle-stopped one.
    private func connectionWaiting(route index: Int) {
        let route = routes[index]
        guard route.service.autoStart, !shuttingDown else { return }
        let candidates = instances.filter { route.service.groups.contains($0.group) && $0.wanted }
        if candidates.contains(where: { $0.state == .running || $0.state == .starting }) { return }
        guard let inst = candidates.first(where: { $0.state == .stoppedIdle }) else { return }
        log.system("\(inst.name) starting: a connection is waiting at \(route.service.name)")
        launch(inst)
    }

    /// Auto-stop: instances of an `auto_stop_machines` service with no connection for the idle
    /// timeout are stopped, down to `min_machines_running`, highest index first.
    private func stopIdleInstances() {
        guard !shuttingDown else { return }
        for route in routes where route.service.autoStop {
            let running = instances.filter {
                route.service.groups.contains($0.group) && $0.wanted && $0.state == .running && !$0.stoppingForIdle
            }.sorted { $0.index > $1.index }
            var left = running.count
            for inst in running where left > route.service.minRunning {
                guard route.pool.openConnections(inst.name) == 0,
                      let idle = route.pool.idleSeconds(inst.name), idle >= plan.idleTimeout else { continue }
                left -= 1
                inst.stoppingForIdle = true
                log.system("\(inst.name) has had no connections for \(formatSeconds(plan.idleTimeout.rounded())) — stopping it (auto_stop_machines)")
                let name = inst.name
                Task { await self.stop(name, drain: false) }
            }
        }
    }

    private func startIdleWatch() {
        guard routes.contains(where: { $0.service.autoStop }) else { return }
        let every = min(max(plan.idleTimeout / 4, 0.05), 30)
        idleWatch = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(every * 1e9))
                await self?.stopIdleInstances()
            }
        }
    }

    // MARK: - Starting

    /// Cleans up what a crashed earlier run left behind, then starts the formation.
    public func start() {
        childSignal = SignalSource(SIGCHLD) { [weak self] in
            Task { await self?.childrenChanged() }
        }
        if let file = plan.stateFile {
            let killed = LeftoverProcesses.killAll(recordedIn: file)
            if killed > 0 {
                log.system("stopped \(killed) process group\(killed == 1 ? "" : "s") left over from an earlier run")
            }
        }
        for group in plan.groups where group.count > 0 {
            for index in 1...group.count { log.register(name: "\(group.name).\(index)") }
        }
        for group in plan.groups {
            for index in stride(from: 1, through: group.count, by: 1) {
                launch(addInstance(group: group.name, index: index))
            }
        }
        startIdleWatch()
    }

    private func groupPlan(_ name: String) -> SupervisorPlan.Group? {
        groupOrder[name].map { plan.groups[$0] }
    }

    private func addInstance(group: String, index: Int) -> Instance {
        let position = groupOrder[group] ?? 0
        let g = plan.groups[position]
        let inst = Instance(group: group, index: index,
                            machineID: machineID(app: plan.appName, group: group, index: index),
                            port: g.basePort + index - 1, colorIndex: position)
        let at = instances.firstIndex { (groupOrder[$0.group] ?? 0, $0.index) > (position, index) } ?? instances.count
        instances.insert(inst, at: at)
        return inst
    }

    /// The environment of one instance: the app's, then what foreman and Fly set per machine.
    private func environment(for inst: Instance) -> [String: String] {
        var env = plan.environment
        env["PORT"] = String(inst.port)
        env["PS"] = inst.name
        env["FLY_PROCESS_GROUP"] = inst.group
        env["FLY_APP_NAME"] = plan.appName
        env["FLY_MACHINE_ID"] = inst.machineID
        env["FLY_ALLOC_ID"] = inst.machineID
        env["FLY_REGION"] = "local"
        return env
    }

    private func launch(_ inst: Instance) {
        guard !shuttingDown, inst.wanted, let group = groupPlan(inst.group) else { return }
        inst.pendingRestart = nil
        inst.generation += 1
        inst.startedAt = Platform.monotonicSeconds()
        let request = SpawnRequest(command: group.command, environment: environment(for: inst),
                                   directory: plan.directory, usePTY: group.usePTY,
                                   killSignal: plan.killSignal, killTimeout: plan.killTimeout)
        do {
            let child = try spawner.spawn(request) { [weak self] pid, exit in
                Task { await self?.foundationReaped(pid: pid, exit: exit) }
            }
            unreaped[child.pid] = child.process
            inst.pid = child.pid
            inst.exitSeen = false
            inst.killedHard = false
            inst.stoppingForIdle = false
            inst.set(.running)
            for route in routes(serving: inst.group) { route.pool.add(id: inst.name, port: inst.port) }
            startHealthChecks(inst)
            log.attach(fd: child.outputFD, source: inst.name, group: inst.group, colorIndex: inst.colorIndex,
                       isPTY: group.usePTY, onClose: {})
            log.system("\(inst.name) started (pid \(child.pid), port \(inst.port))")
            scheduleStateWrite()
        } catch {
            log.system("\(inst.name) could not start: \(error)")
            inst.pid = nil
            afterExit(inst, .exited(127), announce: false)
        }
    }

    // MARK: - Health checks

    /// Starts the instance's checks, each on the instance's own port where it probes the service's.
    private func startHealthChecks(_ inst: Instance) {
        let specs = plan.checks.filter { $0.groups.contains(inst.group) }.map { check -> HealthCheckSpec in
            var spec = check.spec
            if check.usesInstancePort { spec.port = inst.port }
            return spec
        }
        guard !specs.isEmpty else { return }
        let (name, generation) = (inst.name, inst.generation)
        let monitor = HealthMonitor(instance: name, checks: specs) { [weak self] result in
            Task { await self?.healthChanged(name, generation: generation, result) }
        }
        inst.monitor = monitor
        inst.checks = monitor.results
        monitor.start()
    }

    /// A check of `name` changed. The monitor's current results are the truth: notifications hop
    /// here through separate tasks and may arrive out of order.
    private func healthChanged(_ name: String, generation: Int, _ result: HealthResult) {
        guard let inst = instance(name), inst.generation == generation, let monitor = inst.monitor else { return }
        let now = monitor.results
        for (before, after) in zip(inst.checks, now) where after.status != before.status {
            // Logged once per change of state, not every interval; a first result only when failing.
            if before.status != .pending || after.status == .failing {
                log.system("\(name) check \(after.name) is \(after.status.rawValue) (\(after.detail))")
            }
        }
        inst.checks = now
        let gating = Set(plan.checks.filter { $0.gatesTraffic && $0.groups.contains(inst.group) }.map(\.spec.name))
        let healthy = !inst.checks.contains { gating.contains($0.name) && $0.status == .failing }
        for route in routes(serving: inst.group) { route.pool.setHealthy(name, healthy) }
    }

    // MARK: - Exits

    /// SIGCHLD arrived: look (without reaping) for instances whose program has ended.
    public func childrenChanged() {
        for inst in instances {
            guard let pid = inst.pid, !inst.exitSeen, let exit = Platform.peekExit(pid) else { continue }
            leaderExited(inst, exit)
        }
    }

    /// Foundation reaped `pid` (its termination handler ran).
    private func foundationReaped(pid: pid_t, exit: Platform.Exit) {
        if let inst = instances.first(where: { $0.pid == pid && !$0.exitSeen }) {
            leaderExited(inst, exit)
        }
        unreaped[pid] = nil
        if shuttingDown { finishIfDone() }
    }

    private func leaderExited(_ inst: Instance, _ exit: Platform.Exit) {
        guard let pid = inst.pid else { return }
        inst.exitSeen = true
        inst.pid = nil
        for route in routes(serving: inst.group) { route.pool.remove(inst.name) }
        inst.monitor?.stop()
        inst.monitor = nil
        inst.checks = []
        // The program is gone; whatever it left in its group (the watchdog, orphans) goes too,
        // so Foundation's reaping and the output's EOF follow promptly.
        Platform.signalGroup(pid, SIGKILL)
        scheduleStateWrite()
        let waiters = inst.exitWaiters
        inst.exitWaiters = []
        waiters.forEach { $0.resume() }
        afterExit(inst, exit, announce: true)
    }

    private func describe(_ exit: Platform.Exit) -> String {
        switch exit {
        case .exited(127): return "exited with status 127 (command not found)"
        case .exited(126): return "exited with status 126 (command not executable)"
        default: return exit.description
        }
    }

    /// Applies the restart policy to an instance whose process ended (or never started).
    private func afterExit(_ inst: Instance, _ exit: Platform.Exit, announce: Bool) {
        let what = "\(inst.name) \(describe(exit))"
        if inst.stoppingForIdle && inst.wanted && !shuttingDown {
            inst.stoppingForIdle = false
            inst.set(.stoppedIdle)
            if announce { log.system("\(what) — stopped (idle)") }
            return
        }
        if shuttingDown || !inst.wanted {
            inst.set(.exited(exit))
            if announce { log.system(what) }
            return
        }
        if plan.stopWhenAnyExits {
            inst.set(.exited(exit))
            log.system("\(what) — stopping all processes (--no-restart)")
            if !exit.isSuccess { exitCode = 1 }
            Task { await self.shutdown(reason: nil) }
            return
        }
        guard let group = groupPlan(inst.group) else { return }
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
            log.system("\(what) — failed after \(group.restart.retries) restart\(group.restart.retries == 1 ? "" : "s"); giving up")
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
            let (name, generation) = (inst.name, inst.generation)
            inst.pendingRestart = Task { [weak self] in
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                guard !Task.isCancelled else { return }
                await self?.restartDue(name, generation: generation)
            }
        }
    }

    private func restartDue(_ name: String, generation: Int) {
        guard let inst = instance(name), inst.generation == generation, case .backingOff = inst.state else { return }
        launch(inst)
    }

    // MARK: - Stopping

    private func instance(_ name: String) -> Instance? { instances.first { $0.name == name } }

    /// Stops one instance: its kill signal to the whole process group, SIGKILL after the timeout.
    /// With `drain`, it first leaves its services' rotation and its open connections get up to
    /// `kill_timeout` to finish, as Fly drains a machine.
    private func stop(_ name: String, drain: Bool = true) async {
        guard let inst = instance(name) else { return }
        inst.pendingRestart?.cancel()
        inst.pendingRestart = nil
        guard inst.pid != nil, !inst.exitSeen else {
            if case .backingOff = inst.state { inst.set(.exited(.exited(0))) }
            return
        }
        inst.set(.stopping)
        if drain {
            for route in routes(serving: inst.group) { await route.pool.drain(name, timeout: plan.killTimeout) }
        }
        guard let pid = inst.pid, !inst.exitSeen else { return }
        Platform.signalGroup(pid, plan.killSignal)
        let generation = inst.generation
        let timeout = plan.killTimeout
        let escalation = Task { [weak self] in
            try? await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
            guard !Task.isCancelled else { return }
            await self?.escalate(name, generation: generation)
        }
        await withCheckedContinuation { inst.exitWaiters.append($0) }
        escalation.cancel()
    }

    private func escalate(_ name: String, generation: Int) {
        guard let inst = instance(name), inst.generation == generation, let pid = inst.pid, !inst.exitSeen else { return }
        log.system("\(inst.name) did not stop within \(formatSeconds(plan.killTimeout)) — sending SIGKILL")
        inst.killedHard = true
        hardKills += 1
        Platform.signalGroup(pid, SIGKILL)
    }

    /// Stops everything and finishes. A second call while stopping kills at once (a second Ctrl-C).
    /// `reason` is printed first, e.g. "SIGINT received".
    public func shutdown(reason: String?) async {
        if shuttingDown {
            guard !forced, !finished else { return }
            forced = true
            log.system("killing all processes now")
            for inst in instances {
                if let pid = inst.pid, !inst.exitSeen {
                    inst.killedHard = true
                    hardKills += 1
                    Platform.signalGroup(pid, SIGKILL)
                }
            }
            return
        }
        shuttingDown = true
        idleWatch?.cancel()
        // No new connections; open ones end with their instances.
        for route in routes { route.proxy?.stop() }
        let running = instances.filter { $0.pid != nil && !$0.exitSeen }
        var words = reason.map { [$0] } ?? []
        if !running.isEmpty { words.append("sending \(Platform.signalName(plan.killSignal)) to all processes") }
        if !words.isEmpty { log.system(words.joined(separator: " — ")) }
        await withTaskGroup(of: Void.self) { tasks in
            for name in instances.map(\.name) {
                tasks.addTask { await self.stop(name, drain: false) }
            }
        }
        // Foundation reaps once a group's last member is gone; give stragglers a moment.
        let deadline = Platform.monotonicSeconds() + 3
        while !unreaped.isEmpty && Platform.monotonicSeconds() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        finishIfDone(force: true)
    }

    private func finishIfDone(force: Bool = false) {
        guard shuttingDown, !finished else { return }
        guard force || (unreaped.isEmpty && instances.allSatisfy { $0.pid == nil }) else { return }
        finished = true
        if hardKills > 0 {
            log.system("stopped; \(hardKills) process group\(hardKills == 1 ? " was" : "s were") killed with SIGKILL")
            exitCode = 1
        } else if !unreaped.isEmpty {
            log.system("stopped; \(unreaped.count) process\(unreaped.count == 1 ? "" : "es") left a descendant outside its process group")
        } else {
            log.system("all processes stopped")
        }
        if anyFailed { exitCode = 1 }
        if let file = plan.stateFile { try? FileManager.default.removeItem(at: file) }
        let waiters = finishWaiters
        finishWaiters = []
        waiters.forEach { $0.resume(returning: exitCode) }
    }

    /// Suspends until shutdown finished; returns swiftproc's exit status.
    public func waitUntilFinished() async -> Int32 {
        if finished { return exitCode }
        return await withCheckedContinuation { finishWaiters.append($0) }
    }

    public var isShuttingDown: Bool { shuttingDown }

    // MARK: - Formation

    /// The known group names, in file order.
    public var groupNames: [String] { plan.groups.map(\.name) }

    /// Current desired counts, in file order.
    public var formation: [(group: String, count: Int)] {
        plan.groups.map { ($0.name, desired[$0.name] ?? 0) }
    }

    /// Changes the formation: starts missing instances at the lowest free indexes, stops surplus
    /// ones highest index first (each with the kill signal and timeout), and returns when done.
    /// Unknown group names are the caller's to reject; they are ignored here.
    public func scale(_ targets: [(group: String, count: Int)]) async {
        var stopping: [Instance] = []
        for (group, count) in targets where groupOrder[group] != nil && !shuttingDown {
            desired[group] = count
            let current = instances.filter { $0.group == group && $0.wanted }
            if count > current.count {
                // Surplus instances still stopping keep their index until they are gone, so the
                // table never holds two live processes under one name.
                let used = Set(instances.filter { $0.group == group && ($0.wanted || $0.pid != nil) }.map(\.index))
                var index = 1
                for _ in 0..<(count - current.count) {
                    while used.contains(index) { index += 1 }
                    log.register(name: "\(group).\(index)")
                    // An old, finished entry with that index makes way for the new one.
                    instances.removeAll { $0.group == group && $0.index == index && !$0.wanted }
                    launch(addInstance(group: group, index: index))
                    index += 1
                }
            } else if count < current.count {
                for inst in current.sorted(by: { $0.index > $1.index }).prefix(current.count - count) {
                    inst.wanted = false
                    stopping.append(inst)
                }
            }
        }
        await withTaskGroup(of: Void.self) { tasks in
            for name in stopping.map(\.name) { tasks.addTask { await self.stop(name) } }
        }
        instances.removeAll { inst in stopping.contains { $0 === inst } && !inst.wanted }
    }

    /// Rolling restart: one instance at a time, stopped with the kill signal and started again.
    /// `names` are groups or instances (`app`, `worker.2`); empty means all.
    public func restart(_ names: [String]) async throws(ControlServiceError) {
        let targets = try resolve(names)
        for inst in targets where !shuttingDown {
            inst.wanted = false
            await stop(inst.name)
            inst.wanted = true
            inst.consecutiveFailures = 0
            inst.restarts += 1
            launch(inst)
        }
    }

    /// Instances named by `names` (groups or `group.N`), in table order; empty means all.
    private func resolve(_ names: [String]) throws(ControlServiceError) -> [Instance] {
        if names.isEmpty { return instances.filter(\.wanted) }
        var picked: [Instance] = []
        for name in names {
            let matches = instances.filter { $0.wanted && ($0.group == name || $0.name == name) }
            if matches.isEmpty {
                let known = plan.groups.map(\.name).joined(separator: ", ")
                if groupOrder[name] != nil {
                    throw ControlServiceError("group \"\(name)\" has no instances (scaled to 0)")
                }
                throw ControlServiceError("unknown process \"\(name)\"; known groups: \(known)")
            }
            for m in matches where !picked.contains(where: { $0 === m }) { picked.append(m) }
        }
        return instances.filter { inst in picked.contains { $0 === inst } }
    }

    // MARK: - Status

    public func snapshot() -> StatusSnapshot {
        let now = Platform.monotonicSeconds()
        let groups = plan.groups.map { g in
            GroupStatus(name: g.name, command: g.command, desired: desired[g.name] ?? 0,
                        failed: instances.contains { $0.group == g.name && $0.state == .failed })
        }
        let rows = instances.filter { $0.wanted || $0.pid != nil }.map { inst -> InstanceStatus in
            let (state, detail) = inst.describe(now: now)
            return InstanceStatus(group: inst.group, index: inst.index, name: inst.name, machineID: inst.machineID,
                                  pid: inst.pid, state: state, detail: detail, restarts: inst.restarts,
                                  port: inst.port, checksTotal: inst.checks.count,
                                  checksPassing: inst.checks.filter(\.passing).count, lastUpdated: inst.lastUpdated)
        }
        return StatusSnapshot(app: plan.appName, pid: getpid(), groups: groups, instances: rows)
    }

    // MARK: - Leftover bookkeeping

    private func scheduleStateWrite() {
        guard plan.stateFile != nil, !stateWriteScheduled else { return }
        stateWriteScheduled = true
        Task { self.writeStateFile() }
    }

    private func writeStateFile() {
        stateWriteScheduled = false
        guard let file = plan.stateFile, !finished else { return }
        let pids = instances.compactMap { $0.exitSeen ? nil : $0.pid }
        LeftoverProcesses.record(pids, in: file)
    }
}

func formatSeconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s))s" : String(format: "%.1fs", s)
}
extension LogMultiplexer: SupervisorLog {}
