import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The command-line choices that shape a run, as `check` and `start` both take them.
///
/// Values are the text the user typed: turning them into numbers and checking their ranges is
/// the plan's job, so `check` refuses exactly what `start` refuses.
public struct RunOptions: Sendable, Equatable {
    /// `-m` words: `app=3,worker=2`, `all=2`.
    public var formation: [String] = []
    /// Group names given as arguments: run only these.
    public var onlyGroups: [String] = []
    /// `-p BASE`.
    public var portBase: String?
    /// `--restart always|on-failure|never`.
    public var restart: String?
    /// `--no-restart`: stop everything when any process exits (foreman's behaviour).
    public var stopWhenAnyExits = false
    /// `--no-tty`.
    public var noTTY = false
    /// `--pipes GROUPS`.
    public var pipeGroups: [String] = []
    /// `--no-proxy` makes this false.
    public var proxy = true
    /// `--proxy-port PORT`.
    public var proxyPort: String?
    /// `--idle-timeout DURATION`.
    public var idleTimeout: String?
    /// `--region REGION`: act as a machine in this region (`FLY_REGION`).
    public var region: String?
    /// The environment swiftproc was started with (children inherit it, below `[env]`).
    public var inheritedEnvironment: [String: String] = [:]

    public init() {}
}

extension SupervisorPlan {
    /// The most instances of one group: groups are 100 ports apart (foreman's scheme).
    public static let maximumPerGroup = 100

    /// Builds and validates the one plan for an app: what `check` prints, `start` runs, and
    /// `scale` checks changes against (``validate(_:)``).
    ///
    /// - Parameter requireRunnable: refuse an app none of whose groups has a command (`check`
    ///   passes false to print the plan first, then refuses).
    /// - Throws: ``ConfigError`` for an option out of range, a formation whose ports collide or
    ///   exceed 65535, more instances than the open-file limit allows, or no group able to run.
    public init(config: AppConfig, options: RunOptions, requireRunnable: Bool = true) throws(ConfigError) {
        if requireRunnable { try config.requireCommands() }
        let names = config.groupNames
        var formation = try Formation.forRun(words: options.formation, only: options.onlyGroups, groups: names)
        let named = Formation.mentionedGroups(options.formation).union(options.onlyGroups)
        for g in config.groups where g.command == nil {
            // Left out unless the user asked for it by name (then say why it cannot run).
            if !named.contains(g.name) || formation[g.name] == 0 {
                formation[g.name] = 0
            } else {
                throw .invalidOption("-m", "process group \"\(g.name)\" has no command, so it cannot run; "
                                     + AppConfig.noCommandAdvice(g.name, configPath: config.configPath,
                                                                 dockerfilePath: config.dockerfilePath))
            }
        }
        let ports = try PortPlan(config: config, base: options.portBase, environment: options.inheritedEnvironment)

        var override: Restart.Mode?
        if let text = options.restart {
            guard let mode = Restart.Mode(rawValue: text) else {
                throw .invalidOption("--restart", "--restart takes always, on-failure or never, not \"\(text)\"")
            }
            override = mode
        }
        for g in options.pipeGroups where !names.contains(g) {
            throw .unknownProcess(g, suggestions: Suggestions.closest(to: g, among: names), known: names)
        }
        var idleTimeout = 300.0
        if let text = options.idleTimeout {
            guard let d = DurationText.parse(text) ?? Int(text).map({ Duration.seconds($0) }),
                  d > .zero, d <= .seconds(366 * 86_400) else {
                throw .invalidOption("--idle-timeout", "--idle-timeout needs a duration like 30s or 5m, not \"\(text)\"")
            }
            idleTimeout = DurationText.seconds(d)
        }
        var proxyPort: Int?
        if let text = options.proxyPort {
            guard let p = Int(text), (0...65535).contains(p) else {
                throw .invalidOption("--proxy-port", "--proxy-port needs a port number (0-65535), not \"\(text)\"")
            }
            proxyPort = p
        }
        if let region = options.region, !SupervisorPlan.isRegionName(region) {
            throw .invalidOption("--region", "--region needs a region code like ord or ams, not \"\(region)\"")
        }

        let groups = config.runnableGroups.map { g in
            var restart = Restart(g.restart)
            if let override { restart = restart.overridden(by: override) }
            return Group(name: g.name, command: g.command ?? "", count: formation[g.name], restart: restart,
                         basePort: ports.port(group: g.name, instance: 1) ?? ports.base,
                         usePTY: !options.noTTY && !options.pipeGroups.contains(g.name), memoryMB: g.memoryMB)
        }
        let directory = URL(fileURLWithPath: config.directory)
        var environment = config.environment(inheriting: options.inheritedEnvironment)
        // The primary region reaches every process, the release command included; it wins over [env].
        if let primary = config.primaryRegion { environment["PRIMARY_REGION"] = primary }
        self.init(appName: config.appName ?? directory.lastPathComponent, directory: directory, groups: groups,
                  environment: environment, killSignal: config.killSignal.number,
                  killTimeout: DurationText.seconds(config.killTimeout), stopWhenAnyExits: options.stopWhenAnyExits,
                  stateFile: directory.appendingPathComponent(".swiftproc/children"),
                  services: Self.services(config, proxy: options.proxy, port: proxyPort),
                  checks: Self.checks(config), idleTimeout: idleTimeout)
        self.region = options.region ?? config.primaryRegion ?? SupervisorPlan.localRegion
        self.rollout = config.rollout
        self.unrunnable = Dictionary(uniqueKeysWithValues: config.groups.filter { $0.command == nil }.map {
            ($0.name, AppConfig.noCommandAdvice($0.name, configPath: config.configPath, dockerfilePath: config.dockerfilePath))
        })
        self.maxInstances = SupervisorPlan.instanceBudget(openFiles: Platform.openFileLimit())
        try validate(Dictionary(uniqueKeysWithValues: groups.map { ($0.name, $0.count) }))
    }

    /// Why an instance's environment could not be exec'd (a value over the kernel's limit, or
    /// too much in all), checked on the largest one each group gets; nil when it fits.
    public func environmentProblem() -> String? {
        for group in groups {
            let env = environment(group: group.name, index: Self.maximumPerGroup, port: 65535)
            if let problem = Platform.environmentExecProblem(env) { return "\(group.name)'s environment is too large to start: \(problem)" }
        }
        return nil
    }

    /// The region a run acts in without `primary_region` or `--region`.
    public static let localRegion = "local"

    /// Fly's region codes are three lowercase letters; other short names are fine locally.
    static func isRegionName(_ text: String) -> Bool {
        (1...16).contains(text.count) && text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    /// Instances the supervisor can hold with `openFiles` descriptors: its share of the
    /// ``DescriptorBudget`` (the proxies' connections get the other share).
    public static func instanceBudget(openFiles: Int) -> Int {
        DescriptorBudget(openFiles: openFiles).instances
    }

    /// The rules every formation obeys — at start, in `check`, and for each `scale`: at most
    /// ``maximumPerGroup`` instances per group, every port ≤ 65535 and none a service's listening
    /// port, and no more instances than the open-file budget.
    public func validate(_ formation: [String: Int], proxyPorts: [Int: String] = [:]) throws(ConfigError) {
        var total = 0
        var taken = proxyPorts
        for service in services {
            if let port = service.listenPort, port != 0, taken[port] == nil {
                taken[port] = "swiftproc's proxy for \(service.name)"
            }
        }
        for group in groups {
            let count = formation[group.name] ?? 0
            guard count > 0 else { continue }
            if count > Self.maximumPerGroup {
                throw .invalidFormation(word: "\(group.name)=\(count)",
                                        reason: "at most \(Self.maximumPerGroup) instances per group (each group has 100 ports)",
                                        known: groups.map(\.name))
            }
            total += count
            let last = group.basePort + count - 1
            if last > 65535 {
                throw .invalidOption("-m", "\(group.name).\(count) would listen on port \(last), beyond 65535; "
                                     + "use fewer instances or a lower base port (-p)")
            }
            for port in group.basePort...last {
                let name = "\(group.name).\(port - group.basePort + 1)"
                if let owner = taken[port] {
                    throw .invalidOption("-m", "\(name) would listen on port \(port), which \(owner) uses; "
                                         + "use fewer instances or another base port (-p)")
                }
                taken[port] = name
            }
        }
        if total > maxInstances {
            throw .invalidOption("-m", "\(total) instances is more than this process can supervise (at most "
                                 + "\(maxInstances) with its open-file limit; raise `ulimit -n`)")
        }
    }

    /// Every check of the config. Service checks gate the proxy; top-level `[checks]` only report.
    /// A check on a service's `internal_port` probes each instance's own `$PORT`.
    static func checks(_ config: AppConfig) -> [Check] {
        let internalPorts = Set([config.httpService?.internalPort].compactMap { $0 } + config.services.map(\.internalPort))
        return config.allChecks.map { check in
            Check(spec: HealthCheckSpec(check), groups: check.processes.filter { config.group(named: $0)?.command != nil },
                  gatesTraffic: check.origin != .topLevel, usesInstancePort: internalPorts.contains(check.port))
        }
    }

    /// The services Fly's proxy would serve: `[http_service]` and each TCP `[[services]]` entry.
    /// Services on the same `internal_port` share one listener (on Fly they reach the same
    /// port of the same machines); UDP services get none. `--proxy-port` moves the first
    /// listener.
    static func services(_ config: AppConfig, proxy: Bool, port override: Int?) -> [Service] {
        var out: [Service] = []
        var byPort: [Int: Int] = [:]
        func add(_ service: Service, port: Int) {
            if let i = byPort[port] {
                for g in service.groups where !out[i].groups.contains(g) { out[i].groups.append(g) }
                out[i].isHTTP = out[i].isHTTP || service.isHTTP
                out[i].autoStop = out[i].autoStop || service.autoStop
                out[i].minRunning = max(out[i].minRunning, service.minRunning)
                if out[i].concurrency == nil { out[i].concurrency = service.concurrency }
                out[i].name += " + " + service.name
            } else {
                byPort[port] = out.count
                out.append(service)
            }
        }
        if let h = config.httpService {
            add(.init(name: "http_service", groups: h.processes, listenPort: h.internalPort,
                      concurrency: h.concurrency.map(ProxyConcurrency.init), autoStop: h.autoStopMachines != .off,
                      autoStart: h.autoStartMachines, minRunning: h.minMachinesRunning, isHTTP: true), port: h.internalPort)
        }
        for (i, svc) in config.services.enumerated() where svc.protocol != "udp" {
            let http = svc.ports.contains { $0.handlers.contains("http") }
            add(.init(name: "services[\(i)]", groups: svc.processes, listenPort: svc.internalPort,
                      concurrency: svc.concurrency.map(ProxyConcurrency.init), autoStop: svc.autoStopMachines != .off,
                      autoStart: svc.autoStartMachines, minRunning: svc.minMachinesRunning, isHTTP: http), port: svc.internalPort)
        }
        // A group with no command has no instance to route to.
        for i in out.indices { out[i].groups.removeAll { config.group(named: $0)?.command == nil } }
        if let override, !out.isEmpty { out[0].listenPort = override }
        if !proxy { for i in out.indices { out[i].listenPort = nil } }
        return out
    }
}

extension PortPlan {
    /// foreman's rule for the base port: `-p`, else `PORT` from the `.env` files, else `PORT`
    /// from the environment, else 5000.
    public init(config: AppConfig, base text: String?, environment: [String: String]) throws(ConfigError) {
        let dotenvPort = config.dotenv.last { $0.name == "PORT" }?.value
        guard let text = text ?? dotenvPort ?? environment["PORT"] else {
            // foreman's 5000, unless a service's internal_port (a Flask app's 5000) falls in the
            // groups' ports: then the next thousand that is clear of them.
            let servicePorts = [config.httpService?.internalPort].compactMap { $0 } + config.services.map(\.internalPort)
            let span = SupervisorPlan.maximumPerGroup * max(1, config.groups.count)
            let base = stride(from: PortPlan.defaultBase, through: 60_000, by: 1000)
                .first { b in !servicePorts.contains { (b..<(b + span)).contains($0) } } ?? PortPlan.defaultBase
            self.init(base: base, groups: config.groupNames)
            return
        }
        let origin = text == dotenvPort && text != environment["PORT"] ? "PORT in \(config.envFiles.joined(separator: ", "))" : "the base port"
        guard let base = Int(text.trimmingWhitespace), (1...65535).contains(base) else {
            throw .invalidOption("-p", "\(origin) must be a port number (1-65535), not \"\(text)\"")
        }
        self.init(base: base, groups: config.groupNames)
    }
}

extension Formation {
    /// The names `-m` words mention (`all` included).
    static func mentionedGroups(_ words: [String]) -> Set<String> {
        Set(words.flatMap { $0.split(whereSeparator: { $0 == "," || $0.isWhitespace }) }
            .compactMap { $0.split(separator: "=").first.map(String.init) })
    }

    /// The formation `start` runs: `-m` words change only the groups they name (the rest keep
    /// one instance, as `fly scale count worker=3` leaves app alone; `all=N` sets every group),
    /// and naming groups as arguments runs only those.
    public static func forRun(words: [String], only: [String], groups names: [String]) throws(ConfigError) -> Formation {
        for g in only where !names.contains(g) {
            throw .unknownProcess(g, suggestions: Suggestions.closest(to: g, among: names), known: names)
        }
        var formation = try Formation.parse(words, known: names)
        let mentioned = mentionedGroups(words)
        if !mentioned.contains("all") {
            for g in names where !mentioned.contains(g) { formation[g] = 1 }
        }
        if !only.isEmpty {
            for g in names where !only.contains(g) { formation[g] = 0 }
        }
        return formation
    }
}

extension SupervisorPlan.Restart {
    /// `--restart MODE` for a group whose own policy is `self`: `always` retries for ever,
    /// `on-failure` keeps the group's retries when it had some (else Fly's 10), `never` none.
    public func overridden(by mode: Mode) -> SupervisorPlan.Restart {
        switch mode {
        case .always: return .init(mode: .always, retries: Int.max)
        case .onFailure: return .init(mode: .onFailure, retries: self.mode == .onFailure ? retries : 10)
        case .never: return .init(mode: .never, retries: 0)
        }
    }

    /// fly.toml's policy in the supervisor's terms.
    public init(_ policy: RestartPolicy) {
        switch policy {
        case .always: self.init(mode: .always, retries: Int.max)
        case .onFailure(let retries): self.init(mode: .onFailure, retries: retries)
        case .never: self.init(mode: .never, retries: 0)
        }
    }
}
