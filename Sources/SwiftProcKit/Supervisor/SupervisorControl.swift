import Foundation

/// Answers control-socket requests for a running ``Supervisor``: the bridge between the socket
/// layer (which knows framing, limits and slow clients) and supervisor state (which knows nothing
/// of sockets).
public struct SupervisorControl: ControlService {
    public let supervisor: Supervisor
    public let logs: LogMultiplexer
    /// Where a bare count goes (`swiftproc scale 3`), as `fly scale count 3` does.
    public let defaultGroup: String

    public init(supervisor: Supervisor, logs: LogMultiplexer, defaultGroup: String) {
        self.supervisor = supervisor
        self.logs = logs
        self.defaultGroup = defaultGroup
    }

    public func reply(to request: ControlRequest) async -> ControlReply {
        switch request.command {
        case .ping:
            return ControlReply(message: "pong")
        case .status:
            return ControlReply(status: await supervisor.snapshot())
        case .scale:
            return await scale(request.arguments)
        case .restart:
            do {
                try await supervisor.restart(request.arguments)
                return ControlReply(message: "restarted", status: await supervisor.snapshot())
            } catch {
                return .failure(error.message)
            }
        case .stop:
            Task { await supervisor.shutdown(reason: "stop requested") }
            return ControlReply(message: "stopping")
        case .logs:
            return .failure("logs are sent by the log stream, not as a reply")
        }
    }

    private func scale(_ words: [String]) async -> ControlReply {
        let before = await supervisor.formation
        let known = before.map(\.group)
        var words = words
        if words.first == "count" { words.removeFirst() }
        if words.isEmpty {
            return ControlReply(message: before.map { "\($0.group)=\($0.count)" }.joined(separator: " "),
                                status: await supervisor.snapshot())
        }
        let current = Formation(before.map { Formation.Entry(group: $0.group, count: $0.count) })
        let target: Formation
        do {
            target = Self.saturatingApply(try FormationChange.parse(words, known: known, defaultGroup: defaultGroup),
                                          to: current)
        } catch {
            return .failure(error.message)
        }
        do {
            try await supervisor.scale(target.entries.map { ($0.group, $0.count) })
        } catch {
            return .failure(error.message)
        }
        let after = await supervisor.formation
        let lines = zip(before, after).map { b, a in "\(b.group): \(b.count) → \(a.count)" }
        return ControlReply(message: lines.joined(separator: "\n"), status: await supervisor.snapshot())
    }

    /// `change` applied to `formation` with arithmetic that cannot trap: `web=+N` on a huge
    /// count saturates at `Int.max` (which the supervisor then refuses as too many instances)
    /// and never goes below 0 — a client's numbers must never crash the running app.
    static func saturatingApply(_ change: FormationChange, to formation: Formation) -> Formation {
        var result = formation
        for item in change.items {
            switch item.adjustment {
            case .set(let n):
                result[item.group] = max(0, n)
            case .add(let d):
                let (sum, overflow) = result[item.group].addingReportingOverflow(d)
                result[item.group] = overflow ? (d > 0 ? Int.max : 0) : max(0, sum)
            }
        }
        return result
    }

    public func logs(names: [String], lines: Int, subscriber: (any LogSubscriber)?) async throws(ControlServiceError) -> [LogRecord] {
        let known = await supervisor.groupNames
        for name in names {
            // `group` or `group.N` with N ≥ 1; anything else (``, `.`, `app.`, `app.x`) is unknown.
            let parts = name.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let groupOK = parts.first.map(known.contains) ?? false
            let indexOK = parts.count == 1 || (Int(parts[1]).map { $0 >= 1 } ?? false)
            if !groupOK || !indexOK {
                throw ControlServiceError("unknown process \"\(name)\"; known groups: \(known.joined(separator: ", "))")
            }
        }
        let filter = LogFilter(names: names)
        guard let subscriber else { return logs.recent.snapshot(last: lines, matching: filter) }
        return logs.recent.snapshotAndSubscribe(last: lines, matching: filter, subscriber: subscriber)
    }

    public func unsubscribe(_ subscriber: any LogSubscriber) async {
        logs.recent.unsubscribe(subscriber)
    }
}
