import Foundation

/// `swiftproc deploy`, the local `fly deploy`: a new plan (from a re-read fly.toml, Procfile and
/// `.env`) replaces the running one. The release command runs first; added groups start,
/// removed ones stop, and only the groups whose effective config changed roll over, one batch
/// at a time as `restart` does. Unchanged groups keep their processes.
extension Supervisor {
    /// What a deploy does to one group, for the report.
    public enum GroupChange: Equatable, Sendable {
        case added(count: Int)
        case removed
        /// Rolled over for these reasons (`command`, `env`, …).
        case changed([String])
        case unchanged
    }

    /// Applies `new` and returns one line per group saying what happened. Throws, changing
    /// nothing, when the release command fails, the formation would not fit, or a new service's
    /// port cannot be listened on; a replacement that never gets ready stops the rollout (the
    /// groups applied stay applied). Deploys and restarts run one after another, in the order
    /// asked.
    public func deploy(_ new: SupervisorPlan, release command: String?, releaseTimeout: Double,
                       usePTY: Bool) async throws(ControlServiceError) -> [String] {
        try requireRunning()
        let previous = restartQueue
        let mine = Task { () -> Result<[String], ControlServiceError> in
            await previous?.value
            do throws(ControlServiceError) {
                return .success(try await self.apply(new, release: command, releaseTimeout: releaseTimeout, usePTY: usePTY))
            } catch {
                return .failure(error)
            }
        }
        restartQueue = Task { _ = await mine.value }
        return try await mine.value.get()
    }

    /// The deploy itself, its turn in the queue come.
    private func apply(_ new: SupervisorPlan, release command: String?, releaseTimeout: Double,
                       usePTY: Bool) async throws(ControlServiceError) -> [String] {
        try requireRunning()
        if let command, !command.isEmpty {
            let release = ReleasePhase()
            self.release = release
            log.register(name: "release")
            let outcome = await release.run(command, plan: new, spawner: spawner, usePTY: usePTY, timeout: releaseTimeout,
                                            log: log, refusing: "not deploying")
            self.release = nil
            guard outcome == .succeeded else { throw ControlServiceError("the release command did not succeed; nothing was changed") }
            try requireRunning()
        }

        var new = new
        new.maxInstances = plan.maxInstances
        new.backoff = plan.backoff
        keepPorts(of: plan, in: &new)
        let changes = Self.changes(from: plan, to: new, services: servicesByGroup)
        // Counts: a kept group keeps what it was scaled to, an added one gets the plan's.
        var counts: [String: Int] = [:]
        for g in new.groups { counts[g.name] = plan.groups.contains { $0.name == g.name } ? (desired[g.name] ?? g.count) : g.count }
        var bound: [Int: String] = [:]
        for route in routes {
            if let port = route.proxy?.boundPort, new.services.contains(where: { $0.listenPort == port }) {
                bound[port] = "swiftproc's proxy for \(route.service.name)"
            }
        }
        do {
            try new.validate(counts, proxyPorts: bound)
        } catch {
            throw ControlServiceError(error.message)
        }
        let prepared = try prepareRoutes(for: new)

        // From here on the new plan is in force.
        let removed = plan.groups.map(\.name).filter { name in !new.groups.contains { $0.name == name } }
        let oldRoutes = routes
        plan = new
        groupOrder = Dictionary(uniqueKeysWithValues: new.groups.enumerated().map { ($1.name, $0) })
        desired = counts
        for (route, service) in prepared.kept {
            route.service = service
            route.pool.update(concurrency: service.concurrency)
            route.proxy?.update(httpErrors: service.isHTTP)
        }
        routes = prepared.routes
        // A service gone: drained like a stop — no new clients, open ones get kill_timeout.
        let gone = oldRoutes.filter { old in !routes.contains { $0 === old } }.compactMap(\.proxy)
        for proxy in gone { proxy.stopAccepting() }
        if !gone.isEmpty {
            let grace = plan.killTimeout
            Task.detached { for proxy in gone { _ = proxy.waitForConnections(timeout: grace); proxy.stop() } }
        }
        for route in routes {
            // Pools follow the services: instances of groups a service no longer routes to leave it.
            for id in route.pool.backendIDs where !route.service.groups.contains(where: { id.hasPrefix($0 + ".") }) {
                route.pool.remove(id)
            }
        }
        startIdleWatch()

        var lines: [String] = []
        var toRoll: [Int] = []
        for name in removed {
            let going = instances.filter { $0.group == name }
            for inst in going { inst.wanted = false }
            await withTaskGroup(of: Void.self) { tasks in
                for id in going.map(\.id) { tasks.addTask { await self.stop(id: id) } }
            }
            instances.removeAll { $0.group == name && !$0.isLive && $0.pendingExit == nil }
            lines.append("\(name): removed (\(going.count) stopped)")
        }
        for group in new.groups {
            switch changes[group.name] ?? .unchanged {
            case .added:
                let count = counts[group.name] ?? 0
                for index in stride(from: 1, through: count, by: 1) {
                    log.register(name: "\(group.name).\(index)")
                    launch(addInstance(group: group.name, index: index))
                }
                lines.append("\(group.name): added (\(count) started)")
            case .changed(let why):
                toRoll += instances.filter { $0.group == group.name && $0.wanted }.map(\.id)
                lines.append("\(group.name): \(why.joined(separator: ", ")) changed — rolling restart")
            case .removed, .unchanged:
                // Newly served by a service: its running instances join the pool.
                for inst in instances where inst.group == group.name && inst.state == .running {
                    for route in routes(serving: group.name) where !route.pool.backendIDs.contains(inst.name) {
                        route.pool.add(id: inst.name, port: inst.port)
                    }
                }
                lines.append("\(group.name): unchanged")
            }
        }
        for line in lines { log.system("deploy: \(line)") }
        if !toRoll.isEmpty, let error = await rollOver(toRoll) {
            throw ControlServiceError((lines + [error.message]).joined(separator: "\n"))
        }
        return lines
    }

    /// Running groups keep their ports across a deploy (an instance's port never moves under
    /// it, and a replacement never starts on a port an old instance still holds); an added group
    /// takes the first 100-port block no kept group uses.
    private func keepPorts(of old: SupervisorPlan, in new: inout SupervisorPlan) {
        var kept: [Int] = []
        for i in new.groups.indices {
            if let before = old.groups.first(where: { $0.name == new.groups[i].name }) {
                new.groups[i].basePort = before.basePort
                kept.append(before.basePort)
            }
        }
        func overlaps(_ base: Int) -> Bool {
            kept.contains { abs($0 - base) < SupervisorPlan.maximumPerGroup }
        }
        for i in new.groups.indices where !old.groups.contains(where: { $0.name == new.groups[i].name }) {
            var base = new.groups[i].basePort
            while overlaps(base) { base += SupervisorPlan.maximumPerGroup }
            new.groups[i].basePort = base
            kept.append(base)
        }
    }

    /// Group → the services (listening port and name) that route to it, from the running plan.
    private var servicesByGroup: [String: [String]] {
        var result: [String: [String]] = [:]
        for route in routes {
            for g in route.service.groups { result[g, default: []].append("\(route.service.listenPort.map(String.init) ?? "-")") }
        }
        return result
    }

    /// What changes for each group between two plans. A group's effective config is its command,
    /// its environment (the app's, and what Fly sets per machine), restart policy, kill settings,
    /// checks, the services in front of it, its terminal and vm. (Not its ports: ``keepPorts``
    /// has already made them the running ones.)
    static func changes(from old: SupervisorPlan, to new: SupervisorPlan, services: [String: [String]]) -> [String: GroupChange] {
        var result: [String: GroupChange] = [:]
        for name in old.groups.map(\.name) where !new.groups.contains(where: { $0.name == name }) { result[name] = .removed }
        for g in new.groups {
            guard let before = old.groups.first(where: { $0.name == g.name }) else {
                result[g.name] = .added(count: g.count)
                continue
            }
            var why: [String] = []
            if before.command != g.command { why.append("command") }
            // FLY_MACHINE_VERSION follows the command and env; it is not a reason of its own.
            var oldEnv = old.environment(group: g.name, index: 1, port: before.basePort)
            var newEnv = new.environment(group: g.name, index: 1, port: before.basePort)
            oldEnv["FLY_MACHINE_VERSION"] = nil
            newEnv["FLY_MACHINE_VERSION"] = nil
            if oldEnv != newEnv { why.append("env") }
            if before.restart != g.restart { why.append("restart policy") }
            if old.killSignal != new.killSignal || old.killTimeout != new.killTimeout { why.append("kill settings") }
            if old.checks.filter({ $0.groups.contains(g.name) }) != new.checks.filter({ $0.groups.contains(g.name) }) {
                why.append("checks")
            }
            let newServices = new.services.filter { $0.groups.contains(g.name) }.map { "\($0.listenPort.map(String.init) ?? "-")" }
            if (services[g.name] ?? []).sorted() != newServices.sorted() { why.append("services") }
            if before.usePTY != g.usePTY { why.append("terminal") }
            if before.memoryMB != g.memoryMB { why.append("vm") }
            result[g.name] = why.isEmpty ? .unchanged : .changed(why)
        }
        return result
    }

    /// The routes for `new`, without touching the running ones: a route whose proxy listens on
    /// a port `new` still serves is kept (its new service applied by the caller, once nothing can
    /// fail any more); others get a new route, their proxies started here. Throws, stopping what
    /// it started, when a port cannot be listened on.
    private func prepareRoutes(for new: SupervisorPlan) throws(ControlServiceError)
        -> (routes: [Route], kept: [(Route, SupervisorPlan.Service)]) {
        var result: [Route] = []
        var kept: [(Route, SupervisorPlan.Service)] = []
        var opened: [Route] = []
        for service in new.services {
            if let port = service.listenPort, let route = routes.first(where: { $0.service.listenPort == port && $0.proxy != nil }) {
                kept.append((route, service))
                result.append(route)
                continue
            }
            let route = Supervisor.makeRoute(service)
            adopt(route)
            if let port = service.listenPort {
                do {
                    route.proxy = try startProxy(for: route, port: port)
                } catch {
                    for r in opened { r.proxy?.stop() }
                    throw ControlServiceError("\(service.name): \(error); nothing was changed")
                }
                opened.append(route)
                log.system("\(service.name): proxy on 127.0.0.1:\(route.proxy!.boundPort) → \(service.groups.joined(separator: ", "))")
            }
            result.append(route)
        }
        return (result, kept)
    }
}
