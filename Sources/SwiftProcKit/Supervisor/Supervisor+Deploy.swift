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
    /// nothing, when the release command fails or a new service's port cannot be listened on;
    /// a replacement that never gets ready stops the rollout (the groups applied stay applied).
    public func deploy(_ new: SupervisorPlan, release command: String?, releaseTimeout: Double,
                       usePTY: Bool) async throws(ControlServiceError) -> [String] {
        try requireRunning()
        // One rollout at a time: after any restart under way.
        let previous = restartQueue
        await previous?.value
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
        let newRoutes = try openRoutes(for: new)

        // From here on the new plan is in force.
        let removed = plan.groups.map(\.name).filter { name in !new.groups.contains { $0.name == name } }
        let oldRoutes = routes
        plan = new
        groupOrder = Dictionary(uniqueKeysWithValues: new.groups.enumerated().map { ($1.name, $0) })
        desired = counts
        routes = newRoutes
        for route in oldRoutes where !newRoutes.contains(where: { $0 === route }) { route.proxy?.stop() }
        for route in newRoutes {
            // Pools follow the services: instances of groups a service no longer routes to leave it.
            for id in route.pool.backendIDs where !route.service.groups.contains(where: { id.hasPrefix($0 + ".") }) {
                route.pool.remove(id)
            }
        }

        var lines: [String] = []
        var rollOver: [Int] = []
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
            case .added(let count):
                for index in stride(from: 1, through: counts[group.name] ?? count, by: 1) {
                    log.register(name: "\(group.name).\(index)")
                    launch(addInstance(group: group.name, index: index))
                }
                lines.append("\(group.name): added (\(counts[group.name] ?? count) started)")
            case .changed(let why):
                // Their instances pick up the new ports, if those moved.
                for inst in instances where inst.group == group.name {
                    inst.port = group.basePort + inst.index - 1
                }
                rollOver += instances.filter { $0.group == group.name && $0.wanted }.map(\.id)
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
        if !rollOver.isEmpty, let error = await queuedRollout(rollOver) {
            throw ControlServiceError((lines + [error.message]).joined(separator: "\n"))
        }
        return lines
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
    /// checks, the services in front of it, its ports and its terminal.
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
            if before.basePort != g.basePort { why.append("ports") }
            if before.usePTY != g.usePTY { why.append("terminal") }
            if before.memoryMB != g.memoryMB { why.append("vm") }
            result[g.name] = why.isEmpty ? .unchanged : .changed(why)
        }
        return result
    }

    /// The routes for `new`: a running proxy on the same port is kept (its service updated),
    /// others are opened now. Throws, closing what it opened, when a port cannot be listened on.
    private func openRoutes(for new: SupervisorPlan) throws(ControlServiceError) -> [Route] {
        var result: [Route] = []
        var opened: [Route] = []
        for service in new.services {
            if let port = service.listenPort, let kept = routes.first(where: { $0.service.listenPort == port && $0.proxy != nil }) {
                kept.service = service
                result.append(kept)
                continue
            }
            let route = Supervisor.makeRoute(service)
            route.owner?.supervisor = self
            if let port = service.listenPort {
                let name = service.name
                let proxy = TCPProxy(port: port, pool: route.pool, waitForBackend: new.proxyWait,
                                     onNoBackend: { [weak self] in Task { await self?.connectionWaiting(named: name) } },
                                     httpErrors: service.isHTTP)
                do {
                    try proxy.start()
                } catch {
                    for r in opened { r.proxy?.stop() }
                    throw ControlServiceError("\(service.name): \(error); nothing was changed")
                }
                route.proxy = proxy
                opened.append(route)
                log.system("\(service.name): proxy on 127.0.0.1:\(proxy.boundPort) → \(service.groups.joined(separator: ", "))")
            }
            result.append(route)
        }
        return result
    }
}
