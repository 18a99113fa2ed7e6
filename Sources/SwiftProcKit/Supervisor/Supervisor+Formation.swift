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

    /// Current desired counts, in file order.
    public var formation: [(group: String, count: Int)] {
        plan.groups.map { ($0.name, desired[$0.name] ?? 0) }
    }

    /// Refuses changes while the app is not running yet (the release command) or stopping.
    private func requireRunning() throws(ControlServiceError) {
        switch phase {
        case .running: return
        case .notStarted, .releasing: throw ControlServiceError("the app has not started yet (the release command is still running)")
        case .stopping, .finished: throw ControlServiceError("swiftproc is stopping")
        }
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
                throw ControlServiceError("unknown process group \"\(group)\"; known groups: \(groupNames.joined(separator: ", "))")
            }
            after[group] = count
        }
        try check(after)
        var stopping: [Int] = []
        for (group, count) in targets {
            desired[group] = count
            let current = instances.filter { $0.group == group && $0.wanted }
            if count > current.count {
                // Instances still stopping keep their index until they are gone, so two live
                // processes never share a name.
                let used = Set(instances.filter { $0.group == group && ($0.wanted || $0.pid != nil || $0.pendingExit != nil) }
                    .map(\.index))
                var index = 1
                for _ in 0..<(count - current.count) {
                    while used.contains(index) { index += 1 }
                    log.register(name: "\(group).\(index)")
                    // An old, finished entry with that index makes way for the new one.
                    instances.removeAll { $0.group == group && $0.index == index && !$0.wanted && $0.pendingExit == nil }
                    launch(addInstance(group: group, index: index))
                    index += 1
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

    /// A formation must fit the open-file budget, and every instance needs a port of its own that
    /// exists and is not a proxy's: groups are 100 ports apart, so group 1 at 101 instances would
    /// take group 2's first port.
    private func check(_ formation: [String: Int]) throws(ControlServiceError) {
        // Counts come from clients: add without trapping (a sum past Int.max is simply too many).
        let total = formation.values.reduce(0) { sum, count in
            let (next, overflow) = sum.addingReportingOverflow(max(0, count))
            return overflow ? Int.max : next
        }
        if total > plan.maxInstances {
            throw ControlServiceError("\(total) instances is more than this process can supervise (at most \(plan.maxInstances) with its open-file limit; raise `ulimit -n`)")
        }
        var taken: [Int: String] = [:]
        for route in routes { if let port = route.proxy?.boundPort { taken[port] = "swiftproc's proxy for \(route.service.name)" } }
        for group in plan.groups {
            let count = formation[group.name] ?? 0
            guard count > 0 else { continue }
            let (last, overflow) = group.basePort.addingReportingOverflow(count - 1)
            if overflow || last > 65535 {
                throw ControlServiceError("\(group.name).\(count) would listen on port \(last), beyond 65535; use fewer instances or a lower base port (-p)")
            }
            for port in group.basePort...last {
                let name = "\(group.name).\(port - group.basePort + 1)"
                if let owner = taken[port] {
                    throw ControlServiceError("\(name) would listen on port \(port), which \(owner) uses; use fewer instances or another base port (-p)")
                }
                taken[port] = name
            }
        }
    }

    /// Rolling restart: one instance at a time, drained, stopped with the kill signal, started
    /// again. `names` are groups or instances (`app`, `worker.2`); empty means all. Concurrent
    /// requests queue behind each other, so never two instances are down at once.
    public func restart(_ names: [String]) async throws(ControlServiceError) {
        try requireRunning()
        let ids = try resolve(names).map(\.id)
        let previous = restartQueue
        let mine = Task {
            await previous?.value
            await self.replace(ids)
        }
        restartQueue = mine
        await mine.value
    }

    private func replace(_ ids: [Int]) async {
        for id in ids {
            guard phase == .running, let inst = instance(id: id), inst.wanted else { continue }
            inst.replacing = true
            await stop(id: id)
            inst.replacing = false
            // A scale-down may have taken it out of the formation meanwhile.
            guard inst.wanted else { continue }
            inst.consecutiveFailures = 0
            inst.restarts += 1
            launch(inst)
        }
    }

    /// Instances named by `names` (groups or `group.N`), in table order; empty means all.
    func resolve(_ names: [String]) throws(ControlServiceError) -> [Instance] {
        if names.isEmpty { return instances.filter(\.wanted) }
        var picked = Set<Int>()
        for name in names {
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
