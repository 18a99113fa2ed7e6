import Foundation

/// Answers control-socket requests for a running ``Supervisor``: the bridge between the socket
/// layer (which knows framing, limits and slow clients) and supervisor state (which knows nothing
/// of sockets).
public struct SupervisorControl: ControlService {
    public let supervisor: Supervisor
    public let logs: LogMultiplexer
    /// Where a bare count goes (`swiftproc scale 3`), as `fly scale count 3` does.
    public let defaultGroup: String
    /// Re-reads the app's files with the options `start` was given: what `deploy` applies.
    /// Nil: this supervisor cannot deploy (tests that build plans by hand).
    public let reload: (@Sendable () throws -> Deployment)?

    /// A re-read configuration, ready to deploy.
    public struct Deployment: Sendable {
        public var plan: SupervisorPlan
        public var releaseCommand: String?
        public var releaseTimeout: Double
        public var usePTY: Bool
        /// The new config's warnings, rendered.
        public var warnings: [String]

        public init(plan: SupervisorPlan, releaseCommand: String?, releaseTimeout: Double, usePTY: Bool, warnings: [String]) {
            self.plan = plan
            self.releaseCommand = releaseCommand
            self.releaseTimeout = releaseTimeout
            self.usePTY = usePTY
            self.warnings = warnings
        }
    }

    public init(supervisor: Supervisor, logs: LogMultiplexer, defaultGroup: String,
                reload: (@Sendable () throws -> Deployment)? = nil) {
        self.supervisor = supervisor
        self.logs = logs
        self.defaultGroup = defaultGroup
        self.reload = reload
    }

    /// `swiftproc deploy` (and `start --watch`): re-read, then ``Supervisor/deploy(_:release:releaseTimeout:usePTY:)``.
    /// A config that does not load changes nothing; the reply carries its error. With
    /// `logWarnings` (`start --watch`, where no client prints the reply) the new config's
    /// warnings go to the merged log.
    public func deploy(logWarnings: Bool = false) async -> ControlReply {
        guard let reload else { return .failure("this supervisor was not started from files it can re-read") }
        let deployment: Deployment
        do {
            deployment = try reload()
        } catch let error as ConfigError {
            return .failure(error.rendered + "\nnothing was changed")
        } catch {
            return .failure("\(error)\nnothing was changed")
        }
        if logWarnings { for warning in deployment.warnings { logs.system(warning) } }
        do {
            let lines = try await supervisor.deploy(deployment.plan, release: deployment.releaseCommand,
                                                    releaseTimeout: deployment.releaseTimeout, usePTY: deployment.usePTY)
            return ControlReply(message: (deployment.warnings + lines).joined(separator: "\n"), status: await supervisor.snapshot())
        } catch {
            return .failure((deployment.warnings + [error.message]).joined(separator: "\n"))
        }
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
        case .deploy:
            return await deploy()
        case .attach:
            return .failure("attach is served on its own connection, not as a reply")
        }
    }

    private func scale(_ words: [String]) async -> ControlReply {
        let before = await supervisor.formation
        // Groups that cannot run are known too, so scaling one says why instead of "unknown".
        let known = before.map(\.group) + (await supervisor.unrunnableGroups).keys.sorted()
        var words = words
        if words.first == "count" { words.removeFirst() }
        if words.isEmpty {
            return ControlReply(message: before.map { "\($0.group)=\($0.count)" }.joined(separator: " "),
                                status: await supervisor.snapshot())
        }
        let change: FormationChange
        do {
            // Amounts are bounded by the parser and sums saturate: no count can trap the supervisor.
            change = try FormationChange.parse(words, known: known, defaultGroup: defaultGroup)
        } catch {
            return .failure(error.message)
        }
        let counts: (before: [(group: String, count: Int)], after: [(group: String, count: Int)])
        do {
            counts = try await supervisor.scale(change)
        } catch {
            return .failure(error.message)
        }
        let lines = zip(counts.before, counts.after).map { b, a in "\(b.group): \(b.count) → \(a.count)" }
        return ControlReply(message: lines.joined(separator: "\n"), status: await supervisor.snapshot())
    }

    public func logs(names: [String], lines: Int, subscriber: (any LogSubscriber)?) async throws(ControlServiceError) -> [LogRecord] {
        let known = await supervisor.groupNames
        var names = names
        for (i, name) in names.enumerated() {
            if let instance = await supervisor.instanceName(machineID: name) { names[i] = instance }
        }
        for name in names {
            // `group` or `group.N` with N ≥ 1 (or a machine id); anything else (``, `.`, `app.`, `app.x`) is unknown.
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

    public func attach(_ name: String, rows: UInt16, columns: UInt16) async throws(ControlServiceError) -> AttachSession {
        try await supervisor.attach(name, rows: rows, columns: columns)
    }

    public func detach(_ session: AttachSession) async {
        await supervisor.detach(session)
    }

    public func unsubscribe(_ subscriber: any LogSubscriber) async {
        logs.recent.unsubscribe(subscriber)
    }
}
