import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the control socket asks of a running supervisor: the formation, rolling restarts, status.
extension Supervisor {
    /// The known group names, in file order.
    public var groupNames: [String] { plan.groups.map(\.name) }

    /// Groups of the config that cannot run, with how to give each a command.
    public var unrunnableGroups: [String: String] { plan.unrunnable }

    /// Current desired counts, in file order.
    public var formation: [(group: String, count: Int)] {
        plan.groups.map { ($0.name, desired[$0.name] ?? 0) }
    }

    /// Refuses changes while the app is not running yet (the release command) or stopping.
    func requireRunning() throws(ControlServiceError) {
        switch phase {
        case .running: return
        case .notStarted, .releasing: throw ControlServiceError("the app has not started yet (the release command is still running)")
        case .stopping, .finished: throw ControlServiceError("swiftproc is stopping")
        }
    }

    /// Applies `change` to the formation as it is at this moment — not to a copy read earlier,
    /// so two `scale worker=+1` arriving together add two — and returns the counts before and
    /// after it, as this change made them (another request's change is not mixed in).
    public func scale(_ change: FormationChange) async throws(ControlServiceError) -> (before: [(group: String, count: Int)], after: [(group: String, count: Int)]) {
        let before = formation
        let target = change.applied(to: Formation(before.map { Formation.Entry(group: $0.group, count: $0.count) }))
        let counts = Dictionary(target.entries.map { ($0.group, $0.count) }, uniquingKeysWith: { _, last in last })
        let after = before.map { (group: $0.group, count: counts[$0.group] ?? $0.count) }
        // Runs on this actor up to its first suspension, which comes after `desired` is updated.
        try await scale(target.entries.map { ($0.group, $0.count) })
        return (before, after)
    }

    /// Changes the formation: starts missing instances at the lowest free indexes, stops surplus
    /// ones highest index first (each drained, then the kill signal and timeout), and returns
    /// when done. Throws, changing nothing, for an unknown group or a count whose ports would
    /// not work.
    public func scale(_ targets: [(group: String, count: Int)]) async throws(ControlServiceError) {
        try requireRunning()
        var after = desired
        for (group, count) in targets {
            guard groupPlan(group) != nil else {
                if let why = plan.unrunnable[group] { throw ControlServiceError("process group \"\(group)\" has no command: \(why)") }
                throw ControlServiceError("unknown process group \"\(group)\"; known groups: \(groupNames.joined(separator: ", "))")
            }
            after[group] = count
        }
        // Instances still stopping keep their index (and port) until they are gone, so two live
        // processes never share a name: new ones take the lowest free indexes, which may lie
        // beyond `count`. The ports checked are those of the highest index each group will use.
        var newIndexes: [String: [Int]] = [:]
        var span = after
        for (group, count) in targets {
            let current = instances.filter { $0.group == group && $0.wanted }
            guard count > current.count else { continue }
            let used = Set(instances.filter { $0.group == group && ($0.wanted || $0.pid != nil || $0.pendingExit != nil) }
                .map(\.index))
            var indexes: [Int] = []
            var index = 1
            for _ in 0..<(count - current.count) {
                while used.contains(index) { index += 1 }
                indexes.append(index)
                index += 1
            }
            newIndexes[group] = indexes
            span[group] = max(count, indexes.last ?? 0, current.map(\.index).max() ?? 0)
        }
        do {
            try check(span)
        } catch where span != after {
            throw ControlServiceError(error.message + " (counting instances still stopping, which keep their index and "
                                      + "port until they exit; try again once they have)")
        }
        var stopping: [Int] = []
        for (group, count) in targets {
            desired[group] = count
            let current = instances.filter { $0.group == group && $0.wanted }
            if count > current.count {
                for index in newIndexes[group] ?? [] {
                    log.register(name: "\(group).\(index)")
                    // An old, finished entry with that index makes way for the new one.
                    instances.removeAll { $0.group == group && $0.index == index && !$0.wanted && $0.pendingExit == nil }
                    launch(addInstance(group: group, index: index))
                }
            } else if count < current.count {
                for inst in current.sorted(by: { $0.index > $1.index }).prefix(current.count - count) {
                    inst.wanted = false
                    stopping.append(inst.id)
                }
            }
        }
        await withTaskGroup(of: Void.self) { tasks in
            for id in stopping { tasks.addTask { await self.stop(id: id) } }
        }
        instances.removeAll { stopping.contains($0.id) && !$0.wanted && !$0.isLive && $0.pendingExit == nil }
    }

    /// Checks the starting formation (call after ``openProxies()``).
    public func checkFormation() throws(ControlServiceError) {
        try check(desired)
    }

    /// The plan's rules (``SupervisorPlan/validate(_:proxyPorts:)``), against the ports the
    /// proxies really bound.
    private func check(_ formation: [String: Int]) throws(ControlServiceError) {
        var bound: [Int: String] = [:]
        for route in routes { if let port = route.proxy?.boundPort { bound[port] = "swiftproc's proxy for \(route.service.name)" } }
        do {
            try plan.validate(formation, proxyPorts: bound)
        } catch {
            throw ControlServiceError(error.message)
        }
    }

    /// Rolling restart as `fly deploy` rolls machines: `names` are groups or instances (`app`,
    /// `worker.2`, a machine id); empty means all. See ``rollOver(_:)``. Concurrent requests
    /// queue behind each other, so never two rollouts overlap. Throws when a replacement does not
    /// become ready: the instances after it are left as they were.
    public func restart(_ names: [String]) async throws(ControlServiceError) {
        try requireRunning()
        let ids = try resolve(names).map(\.id)
        if let error = await queuedRollout(ids) { throw error }
    }

    /// Runs ``rollOver(_:)`` after any rollout already under way.
    func queuedRollout(_ ids: [Int]) async -> ControlServiceError? {
        let previous = restartQueue
        let mine = Task { () -> ControlServiceError? in
            await previous?.value
            return await self.rollOver(ids)
        }
        restartQueue = Task { _ = await mine.value }
        return await mine.value
    }

    /// `GROUP.N` for a Fly-style machine id, which is derived from the app, group and index, so
    /// an id from `status` or an old log line names the same instance on every run.
    public func instanceName(machineID id: String) -> String? {
        for group in plan.groups {
            for index in 1...SupervisorPlan.maximumPerGroup where machineID(app: plan.appName, group: group.name, index: index) == id {
                return "\(group.name).\(index)"
            }
        }
        return nil
    }

    /// Instances named by `names` (groups, `group.N` or machine ids), in table order; empty means all.
    func resolve(_ names: [String]) throws(ControlServiceError) -> [Instance] {
        if names.isEmpty { return instances.filter(\.wanted) }
        var picked = Set<Int>()
        for name in names.map({ instanceName(machineID: $0) ?? $0 }) {
            let matches = instances.filter { $0.wanted && ($0.group == name || $0.name == name) }
            if matches.isEmpty {
                if groupOrder[name] != nil {
                    throw ControlServiceError("group \"\(name)\" has no instances (scaled to 0)")
                }
                throw ControlServiceError("unknown process \"\(name)\"; known groups: \(groupNames.joined(separator: ", "))")
            }
            picked.formUnion(matches.map(\.id))
        }
        return instances.filter { picked.contains($0.id) }
    }

    public func snapshot() -> StatusSnapshot {
        let now = Platform.monotonicSeconds()
        let groups = plan.groups.map { g in
            GroupStatus(name: g.name, command: g.command, desired: desired[g.name] ?? 0,
                        failed: instances.contains { $0.group == g.name && $0.state == .failed })
        }
        let rows = instances.filter { $0.wanted || $0.isLive }.map { inst -> InstanceStatus in
            let (state, detail) = inst.describe(now: now)
            return InstanceStatus(group: inst.group, index: inst.index, name: inst.name, machineID: inst.machineID,
                                  pid: inst.isLive ? inst.pid : nil, state: state, detail: detail,
                                  restarts: inst.restarts, port: inst.port, checksTotal: inst.checks.count,
                                  checksPassing: inst.checks.filter(\.passing).count, lastUpdated: inst.lastUpdated)
        }
        var snapshot = StatusSnapshot(app: plan.appName, pid: getpid(), groups: groups, instances: rows)
        snapshot.phase = phaseName
        return snapshot
    }
}
