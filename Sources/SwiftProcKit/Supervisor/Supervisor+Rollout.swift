import Foundation

/// Rolling instances over as `fly deploy` does: a batch (one instance, or `max_unavailable`)
/// goes down, its replacements start, and the next batch goes down only when they are ready.
extension Supervisor {
    /// What a replacement's readiness wait ended with.
    enum Readiness: Equatable {
        case ready
        /// Not ready by the deadline, or gave up (failed): why, for the user.
        case notReady(String)
        /// Scaled away or stopped meanwhile: nothing to wait for.
        case gone
    }

    /// Replaces instances `ids` (in order, grouped into batches per group) and returns the error
    /// that stopped the rollout, if any. With `strategy = "immediate"` everything goes at once
    /// and nothing is waited for.
    func rollOver(_ ids: [Int]) async -> ControlServiceError? {
        let picked = ids.compactMap(instance(id:))
        if plan.rollout.strategy == .immediate {
            await replaceAll(picked.map(\.id))
            return nil
        }
        var batches: [[Instance]] = []
        for group in plan.groups.map(\.name) {
            let members = picked.filter { $0.group == group }
            guard !members.isEmpty else { continue }
            let size = plan.rollout.batchSize(of: desired[group] ?? members.count)
            batches += stride(from: 0, to: members.count, by: size).map { Array(members[$0..<min($0 + size, members.count)]) }
        }
        for (n, batch) in batches.enumerated() {
            guard phase == .running else { return ControlServiceError("swiftproc is stopping; the rollout did not finish") }
            await replaceAll(batch.map(\.id))
            let deadline = Platform.monotonicSeconds() + DurationText.seconds(plan.rollout.waitTimeout)
            for inst in batch {
                if case .notReady(let why) = await waitUntilReady(id: inst.id, deadline: deadline) {
                    let rest = batches[(n + 1)...].flatMap { $0 }.map(\.name)
                    let left = rest.isEmpty ? "" : "; not restarted: \(rest.joined(separator: ", "))"
                    let message = "\(inst.name)'s replacement is not ready: \(why) — the rollout stopped\(left)"
                    log.system(message)
                    return ControlServiceError(message)
                }
            }
        }
        return nil
    }

    /// Replaces instances `ids` side by side.
    private func replaceAll(_ ids: [Int]) async {
        await withTaskGroup(of: Void.self) { tasks in
            for id in ids { tasks.addTask { await self.replaceOne(id: id) } }
        }
    }

    /// Stops one instance (drained, kill signal) and starts it again.
    private func replaceOne(id: Int) async {
        guard phase == .running, let inst = instance(id: id), inst.wanted else { return }
        inst.replacing = true
        await stop(id: id)
        inst.replacing = false
        // A scale-down may have taken it out of the formation meanwhile.
        guard inst.wanted, phase == .running else { return }
        inst.consecutiveFailures = 0
        inst.restarts += 1
        launch(inst)
    }

    /// Waits until instance `id` is ready to take the place of the one it replaced: its service
    /// checks pass; or, with none, it accepts connections on its `$PORT` (a group behind a
    /// service); or, for other groups, it has kept running for ``SupervisorPlan/settleTime``.
    func waitUntilReady(id: Int, deadline: Double) async -> Readiness {
        guard let inst = instance(id: id) else { return .gone }
        let gating = Set(plan.checks.filter { $0.gatesTraffic && $0.groups.contains(inst.group) }.map(\.spec.name))
        let served = !routes(serving: inst.group).isEmpty
        var why = "it did not start"
        while true {
            guard let current = instance(id: id), current.wanted, phase == .running else { return .gone }
            switch current.state {
            case .failed:
                return .notReady("it failed (\(current.restarts) restarts)")
            case .exited(let exit):
                // Its restart policy leaves it down: it will not get ready by waiting.
                return .notReady("it \(exit.description) and its restart policy leaves it stopped")
            case .running:
                if !gating.isEmpty {
                    let results = current.checks.filter { gating.contains($0.name) }
                    if !results.isEmpty && results.allSatisfy({ $0.status == .passing }) { return .ready }
                    why = results.first { $0.status != .passing }.map { "check \($0.name) is \($0.status.rawValue) (\($0.detail))" }
                        ?? "its checks have not run yet"
                } else if served {
                    let port = current.port
                    let accepts = await Task.detached { () -> Bool in
                        if case .connected(let fd) = TCPSocket.connect(port: port, timeout: 0.25) {
                            TCPSocket.close(fd)
                            return true
                        }
                        return false
                    }.value
                    if accepts { return .ready }
                    why = "nothing accepts connections on its port \(port)"
                } else if Platform.monotonicSeconds() - current.startedAt >= plan.settleTime {
                    return .ready
                } else {
                    why = "it has not kept running for \(formatSeconds(plan.settleTime))"
                }
            default:
                why = "it is \(current.describe(now: Platform.monotonicSeconds()).state)"
            }
            if Platform.monotonicSeconds() >= deadline {
                return .notReady("\(why) after \(formatSeconds(DurationText.seconds(plan.rollout.waitTimeout))) (wait_timeout)")
            }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }
}
