import Foundation

/// What `swiftproc check` reports: the loaded configuration as swiftproc will run it.
///
/// One value feeds both the text (``renderPlan(_:formation:ports:showEnv:)``) and `--json`, so
/// the two can never disagree. Durations are seconds; env values are present only when asked
/// for, because `check` output ends up in bug reports and CI logs.
public struct Plan: Codable, Sendable, Equatable {
    public struct Group: Codable, Sendable, Equatable {
        public var name: String
        public var command: String?
        /// Where the command came from: `fly.toml:7 [processes]`, `Procfile:2`, `Dockerfile:40,42 …`.
        public var commandSource: String
        public var count: Int
        public var ports: [Int]
        /// `always`, `on-failure` or `never`.
        public var restart: String
        /// For `on-failure`.
        public var retries: Int?
        public var isDefault: Bool
    }

    public struct Signal: Codable, Sendable, Equatable {
        public var name: String
        public var number: Int32
    }

    /// `[http_service]` or one `[[services]]` entry.
    public struct Route: Codable, Sendable, Equatable {
        /// `http_service` or `services`.
        public var section: String
        public var internalPort: Int
        public var `protocol`: String
        /// Public ports (`[[services.ports]]`); for `http_service`, Fly's 80 and 443.
        public var publicPorts: [String]
        public var processes: [String]
        public var autoStopMachines: String
        public var minMachinesRunning: Int
    }

    public struct Check: Codable, Sendable, Equatable {
        public var name: String
        public var type: String
        /// `checks`, `http_service` or `services`.
        public var section: String
        public var port: Int
        public var method: String?
        public var path: String?
        public var intervalSeconds: Double?
        public var timeoutSeconds: Double?
        public var gracePeriodSeconds: Double?
        public var processes: [String]
    }

    /// One instance as `start` runs it.
    public struct Instance: Codable, Sendable, Equatable {
        public var name: String
        public var machineID: String
        public var port: Int
        /// What swiftproc sets for this instance on top of the app's environment (`PORT`, `PS`,
        /// `PIDFILE`, `FLY_*`, `PRIMARY_REGION`); only with `showEnv`.
        public var env: [String: String]?
    }

    public struct EnvEntry: Codable, Sendable, Equatable {
        public var name: String
        /// `env` (fly.toml's `[env]`) or `dotenv`.
        public var source: String
        /// Only with `showEnv`.
        public var value: String?
    }

    public var app: String?
    public var primaryRegion: String?
    /// `fly.toml` or `Procfile`.
    public var source: String
    public var configPath: String
    public var procfilePath: String?
    public var directory: String
    public var defaultGroup: String
    public var groups: [Group]
    /// Every instance the formation starts, in start order.
    public var instances: [Instance]
    /// `FLY_REGION`.
    public var region: String
    public var killSignal: Signal
    public var killTimeoutSeconds: Double
    public var routes: [Route]
    public var checks: [Check]
    public var releaseCommand: String?
    public var releaseCommandTimeoutSeconds: Double
    public var envFiles: [String]
    /// Variables after precedence (`.env` over `[env]`), in first-seen order.
    public var env: [EnvEntry]
    /// Things that behave differently locally, or that the user may not expect.
    public var notes: [String]
    /// The config's warnings, as `file:line:col: warning: message`.
    public var warnings: [String]

    /// The report of `plan`, the one plan built from `config` and the command line.
    /// - Parameter showEnv: include env values (and each instance's variables).
    public init(_ config: AppConfig, plan: SupervisorPlan, showEnv: Bool = false) {
        app = config.appName
        primaryRegion = config.primaryRegion
        region = plan.region
        source = config.source.rawValue
        configPath = config.configPath
        procfilePath = config.procfilePath
        directory = config.directory
        defaultGroup = config.defaultGroup
        groups = config.groups.map { g in
            let planned = plan.groups.first { $0.name == g.name }
            let count = planned?.count ?? 0
            var retries: Int?
            if case .onFailure(let n) = g.restart { retries = n }
            let ports = planned.map { p in count > 0 ? Array(p.basePort..<(p.basePort + count)) : [] } ?? []
            return Group(name: g.name, command: g.command, commandSource: g.source.description, count: count, ports: ports,
                         restart: planned?.restart.mode.rawValue ?? g.restart.name,
                         retries: planned.map { $0.restart.mode == .onFailure ? $0.restart.retries : nil } ?? retries,
                         isDefault: g.name == config.defaultGroup)
        }
        instances = plan.groups.flatMap { g in
            (0..<max(0, g.count)).map { i -> Instance in
                let port = g.basePort + i
                let env = showEnv ? plan.instanceVariables(group: g.name, index: i + 1, port: port) : nil
                return Instance(name: "\(g.name).\(i + 1)", machineID: machineID(app: plan.appName, group: g.name, index: i + 1),
                                port: port, env: env)
            }
        }
        killSignal = Signal(name: config.killSignal.name, number: config.killSignal.number)
        killTimeoutSeconds = DurationText.seconds(config.killTimeout)

        var routes: [Route] = []
        if let http = config.httpService {
            routes.append(Route(section: "http_service", internalPort: http.internalPort, protocol: "tcp",
                                publicPorts: ["80", "443"], processes: http.processes,
                                autoStopMachines: http.autoStopMachines.rawValue, minMachinesRunning: http.minMachinesRunning))
        }
        for s in config.services {
            let publicPorts = s.ports.map { p -> String in
                var text = p.port.map(String.init) ?? "\(p.startPort.map(String.init) ?? "?")-\(p.endPort.map(String.init) ?? "?")"
                if !p.handlers.isEmpty { text += " [\(p.handlers.joined(separator: ", "))]" }
                return text
            }
            routes.append(Route(section: "services", internalPort: s.internalPort, protocol: s.protocol,
                                publicPorts: publicPorts, processes: s.processes,
                                autoStopMachines: s.autoStopMachines.rawValue, minMachinesRunning: s.minMachinesRunning))
        }
        self.routes = routes
        checks = config.allChecks.map { c in
            Check(name: c.name, type: c.kind.rawValue, section: c.origin.rawValue, port: c.port,
                  method: c.kind == .http ? c.method : nil, path: c.kind == .http ? c.path : nil,
                  intervalSeconds: c.interval.map(DurationText.seconds), timeoutSeconds: c.timeout.map(DurationText.seconds),
                  gracePeriodSeconds: c.gracePeriod.map(DurationText.seconds), processes: c.processes)
        }
        releaseCommand = config.releaseCommand
        releaseCommandTimeoutSeconds = DurationText.seconds(config.releaseCommandTimeout)
        envFiles = config.envFiles

        // `.env` over `[env]`, first-seen order; an index keeps 40,000-line files linear.
        var env: [EnvEntry] = []
        var position: [String: Int] = [:]
        for (v, source) in config.env.map({ ($0, "env") }) + config.dotenv.map({ ($0, "dotenv") }) {
            let entry = EnvEntry(name: v.name, source: source, value: showEnv ? v.value : nil)
            if let i = position[v.name] { env[i] = entry } else { position[v.name] = env.count; env.append(entry) }
        }
        self.env = env

        warnings = config.warnings.map(\.description)
        var notes = config.notes
        if config.source == .flyToml, let procfile = config.procfilePath {
            notes.append("processes come from \(procfile); everything else from \(config.configPath)")
        }
        for g in config.groups where g.command == nil {
            notes.append("group \"\(g.name)\" has no command and will not start")
        }
        for s in config.services where s.protocol == "udp" {
            notes.append("[[services]] on :\(s.internalPort) is UDP: swiftproc's proxy is TCP only, so it is not proxied "
                         + "(each instance still listens on its own $PORT)")
        }
        for service in plan.services where service.name.contains(" + ") {
            notes.append("\(service.name) share internal_port \(service.listenPort.map(String.init) ?? "-") and so one local listener")
        }
        for (section, autoStop) in [("http_service", config.httpService?.autoStopMachines)] + config.services.map({ ("services", $0.autoStopMachines) })
            where autoStop == .suspend {
            notes.append("\(section): auto_stop_machines = \"suspend\" behaves as \"stop\" locally")
        }
        if config.groups.count > 1 {
            if let http = config.httpService, !http.processesGiven {
                notes.append("[http_service] names no processes, so it routes to the default group \"\(config.defaultGroup)\" only, as on Fly")
            }
            for (i, s) in config.services.enumerated() where !s.processesGiven {
                notes.append("[[services]] #\(i + 1) names no processes, so it routes to the default group \"\(config.defaultGroup)\" only, as on Fly")
            }
        }
        if let first = plan.groups.first, first.basePort >= PortPlan.defaultBase + 1000, first.basePort % 1000 == 0,
           config.dotenv.allSatisfy({ $0.name != "PORT" }),
           let port = ([config.httpService?.internalPort].compactMap { $0 } + config.services.map(\.internalPort))
               .first(where: { (PortPlan.defaultBase..<first.basePort).contains($0) }) {
            notes.append("instance ports start at \(first.basePort), not 5000: \(port) is a service's internal_port, "
                         + "where swiftproc's proxy listens (-p BASE to choose)")
        }
        for g in groups where g.count == 0 && g.command != nil {
            notes.append("group \"\(g.name)\" is scaled to 0 and will not start")
        }
        self.notes = notes
    }

    /// The plan as pretty-printed JSON, for `check --json`; keys sorted, so the output is stable.
    public func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes, .sortedKeys]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// The plan for `swiftproc check` as text: each group in file order with its count, ports,
/// restart policy and command, then how processes stop, what the services route to, checks,
/// the release command, env keys (values only with `showEnv`), and notes.
public func renderPlan(_ plan: Plan, showEnv: Bool = false) -> String {
    var out: [String] = []
    var header = plan.app.map { "app \"\($0)\" from \(plan.configPath)" } ?? "app from \(plan.configPath)"
    if let region = plan.primaryRegion { header += " (primary region \(region))" }
    if plan.region != (plan.primaryRegion ?? SupervisorPlan.localRegion) { header += " (acting as region \(plan.region))" }
    out.append(header)
    out.append("  directory  \(plan.directory)")
    out.append("")
    out.append("processes (default group: \(plan.defaultGroup))")
    let width = plan.groups.map(\.name.count).max() ?? 0
    for g in plan.groups {
        let name = g.name.padding(toLength: width, withPad: " ", startingAt: 0)
        let portText: String
        switch g.ports.count {
        case 0: portText = "no port"
        case 1: portText = "port \(g.ports[0])"
        default: portText = "ports \(g.ports[0])-\(g.ports[g.ports.count - 1])"
        }
        let restart = g.retries.map { "on-failure (\($0) \($0 == 1 ? "retry" : "retries"))" } ?? g.restart
        out.append("  \(name)  × \(g.count)  \(portText)  restart \(restart)")
        out.append("  \(String(repeating: " ", count: width))  \(g.command ?? "(no command)")")
        if g.command != nil { out.append("  \(String(repeating: " ", count: width))  from \(g.commandSource)") }
    }
    out.append("")
    out.append("stop       \(plan.killSignal.name), then SIGKILL after \(seconds(plan.killTimeoutSeconds))")
    for r in plan.routes {
        let label = r.section == "http_service" ? "http       " : "service    "
        var line = label + "\(r.protocol) :\(r.internalPort) → \(r.processes.joined(separator: ", "))"
        if !r.publicPorts.isEmpty { line += "; public \(r.publicPorts.joined(separator: ", "))" }
        if r.autoStopMachines != "off" { line += "; auto_stop_machines = \(r.autoStopMachines)" }
        out.append(line)
    }
    for c in plan.checks {
        var line = "check      \(c.name): \(c.type)"
        if c.type == "http" { line += " \(c.method ?? "GET") \(c.path ?? "/")" }
        line += " on :\(c.port) → \(c.processes.joined(separator: ", "))"
        var timing: [String] = []
        if let i = c.intervalSeconds { timing.append("every \(seconds(i))") }
        if let t = c.timeoutSeconds { timing.append("timeout \(seconds(t))") }
        if let g = c.gracePeriodSeconds { timing.append("grace \(seconds(g))") }
        if !timing.isEmpty { line += " (\(timing.joined(separator: ", ")))" }
        out.append(line)
    }
    if let release = plan.releaseCommand {
        out.append("release    \(release) (timeout \(seconds(plan.releaseCommandTimeoutSeconds)))")
    }
    if !plan.envFiles.isEmpty {
        out.append("env files  \(plan.envFiles.joined(separator: ", "))")
    }
    if !plan.env.isEmpty {
        if showEnv {
            out.append("env")
            for e in plan.env {
                out.append("  \(e.name)=\(e.value ?? "")  (\(e.source == "env" ? "[env]" : ".env"))")
            }
        } else {
            let fromConfig = plan.env.filter { $0.source == "env" }.map(\.name)
            let fromDotenv = plan.env.filter { $0.source == "dotenv" }.map(\.name)
            var parts: [String] = []
            if !fromConfig.isEmpty { parts.append("[env] " + fromConfig.joined(separator: ", ")) }
            if !fromDotenv.isEmpty { parts.append(".env " + fromDotenv.joined(separator: ", ")) }
            out.append("env        " + parts.joined(separator: "; ") + " (values hidden)")
        }
    }
    if showEnv {
        for instance in plan.instances {
            out.append("\(instance.name) (machine \(instance.machineID)) also gets")
            for (key, value) in (instance.env ?? [:]).sorted(by: { $0.key < $1.key }) { out.append("  \(key)=\(value)") }
        }
    }
    if !plan.notes.isEmpty {
        out.append("")
        out.append("notes")
        for n in plan.notes { out.append("  - \(n)") }
    }
    return out.joined(separator: "\n") + "\n"
}

private func seconds(_ value: Double) -> String {
    DurationText.format(.nanoseconds(Int64((value * 1e9).rounded())))
}
