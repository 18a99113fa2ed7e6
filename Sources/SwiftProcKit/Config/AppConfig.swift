#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything swiftproc needs to run an app, read from a fly.toml and/or a Procfile.
///
/// Fly's rules are applied while loading, so the rest of swiftproc never has to know them:
/// every service, check and restart entry lists the groups it applies to (the default group
/// when the file named none), defaults are filled in, and durations are real durations.
public struct AppConfig: Sendable, Equatable {
    /// Which kind of file the configuration came from.
    public enum SourceKind: String, Sendable, Codable {
        case flyToml = "fly.toml"
        case procfile = "Procfile"
    }

    /// fly.toml's `app`, if any.
    public var appName: String?
    /// fly.toml's `primary_region` (Fly passes it to machines as `PRIMARY_REGION`).
    public var primaryRegion: String?
    public var source: SourceKind
    /// The file the configuration came from, as the user knows it.
    public var configPath: String
    /// The Procfile the processes came from, when that is not ``configPath`` (a fly.toml without
    /// `[processes]` next to a Procfile).
    public var procfilePath: String?
    /// The app directory: the configuration file's directory. Commands run here.
    public var directory: String
    /// Process groups in file order.
    public var groups: [ProcessGroup]
    /// The group that `[http_service]`, `[[services]]`, `[checks]` and `[[restart]]` entries
    /// without `processes` apply to: `app` if it exists, else the first name alphabetically —
    /// flyctl's rule.
    public var defaultGroup: String
    /// fly.toml's `[env]`, in file order, values as strings.
    public var env: [EnvVariable]
    /// The `.env` files' variables after merging (later files win); see ``envFiles``.
    public var dotenv: [EnvVariable]
    /// The env files that were actually read, in order.
    public var envFiles: [String]
    /// The signal a process gets when it is asked to stop (`kill_signal`, default SIGINT as on Fly).
    public var killSignal: KillSignal
    /// How long a process may take to stop before it is killed (`kill_timeout`, default 5 s, at most 300 s).
    public var killTimeout: Duration
    public var httpService: HTTPService?
    public var services: [Service]
    /// Top-level `[checks.NAME]`, in file order.
    public var checks: [HealthCheck]
    /// `[deploy] release_command`, or a Procfile's `release:` entry.
    public var releaseCommand: String?
    /// `[deploy] release_command_timeout`, default 5 minutes.
    public var releaseCommandTimeout: Duration
    /// `[deploy]`: how `restart` and `deploy` roll instances over.
    public var rollout = Rollout()
    /// fly.toml's `console_command` (what `fly console` runs).
    public var consoleCommand: String?
    /// ``consoleCommand`` with image paths mapped to the app directory (as Dockerfile commands
    /// are), when the Dockerfile says where the app lives in the image.
    public var localConsoleCommand: String?
    /// The Dockerfile read for groups without a command of their own, as the user knows it.
    public var dockerfilePath: String?
    /// What was read past: unknown keys, values swiftproc cannot use, groups with no command.
    public var warnings: [ConfigWarning] = []
    /// What the loader found worth saying that is not a problem (`check` prints them as notes).
    public var notes: [String] = []

    public init(appName: String? = nil, primaryRegion: String? = nil, source: SourceKind, configPath: String,
                procfilePath: String? = nil, directory: String, groups: [ProcessGroup], defaultGroup: String,
                env: [EnvVariable] = [], dotenv: [EnvVariable] = [], envFiles: [String] = [],
                killSignal: KillSignal = .defaultSignal, killTimeout: Duration = AppConfig.defaultKillTimeout,
                httpService: HTTPService? = nil, services: [Service] = [], checks: [HealthCheck] = [],
                releaseCommand: String? = nil, releaseCommandTimeout: Duration = AppConfig.defaultReleaseCommandTimeout) {
        self.appName = appName
        self.primaryRegion = primaryRegion
        self.source = source
        self.configPath = configPath
        self.procfilePath = procfilePath
        self.directory = directory
        self.groups = groups
        self.defaultGroup = defaultGroup
        self.env = env
        self.dotenv = dotenv
        self.envFiles = envFiles
        self.killSignal = killSignal
        self.killTimeout = killTimeout
        self.httpService = httpService
        self.services = services
        self.checks = checks
        self.releaseCommand = releaseCommand
        self.releaseCommandTimeout = releaseCommandTimeout
    }

    /// Fly's default `kill_timeout`.
    public static let defaultKillTimeout: Duration = .seconds(5)
    /// Fly's upper limit for `kill_timeout`.
    public static let maximumKillTimeout: Duration = .seconds(300)
    /// Fly's default `release_command_timeout`.
    public static let defaultReleaseCommandTimeout: Duration = .seconds(300)

    /// Group names in file order.
    public var groupNames: [String] { groups.map(\.name) }

    /// The group called `name`.
    public func group(named name: String) -> ProcessGroup? {
        groups.first { $0.name == name }
    }

    /// Every health check — top-level ones, then `[[http_service.checks]]`, then each service's
    /// — with the groups it applies to and the port it probes.
    public var allChecks: [HealthCheck] {
        checks + (httpService?.checks ?? []) + services.flatMap { $0.tcpChecks + $0.httpChecks }
    }

    /// The environment a process of this app sees: `inherited`, then `[env]`, then `.env`.
    public func environment(inheriting inherited: [String: String]) -> [String: String] {
        Environment.merged(inherited: inherited, config: env, dotenv: dotenv)
    }

    /// The groups that can run: those with a command.
    public var runnableGroups: [ProcessGroup] { groups.filter { $0.command != nil } }

    /// Throws unless at least one group has a command — `start` runs the others and says why
    /// the rest cannot run (see ``warnings``).
    ///
    /// On Fly a group without a command runs the image's; swiftproc looks for it in the
    /// Dockerfile, and where there is none it cannot guess.
    public func requireCommands() throws(ConfigError) {
        if let group = groups.first, runnableGroups.isEmpty {
            throw .missingCommand(group: group.name, configPath: configPath)
        }
    }
}

/// fly.toml's `[deploy] strategy`, `max_unavailable`, `wait_timeout`.
public struct Rollout: Sendable, Equatable {
    public enum Strategy: String, Sendable, CaseIterable {
        /// One batch at a time, each replacement ready before the next goes down.
        case rolling
        /// Everything at once, without waiting.
        case immediate
    }

    public var strategy: Strategy
    /// How many instances of a group may be down at once: a count (≥ 1), or a fraction of the
    /// group (0 < x < 1). Nil: one at a time.
    public var maxUnavailable: Double?
    /// How long a replacement may take to become ready (Fly's default: 5 minutes).
    public var waitTimeout: Duration

    public static let defaultWaitTimeout: Duration = .seconds(300)

    public init(strategy: Strategy = .rolling, maxUnavailable: Double? = nil, waitTimeout: Duration = Rollout.defaultWaitTimeout) {
        self.strategy = strategy
        self.maxUnavailable = maxUnavailable
        self.waitTimeout = waitTimeout
    }

    /// Instances of a group of `count` that may be down at once.
    public func batchSize(of count: Int) -> Int {
        guard let m = maxUnavailable, m > 0 else { return 1 }
        if m < 1 { return max(1, Int((Double(count) * m).rounded(.down))) }
        return Int(min(m, 1000))
    }
}

/// One process group: a name, the command each of its instances runs, and its restart policy.
public struct ProcessGroup: Sendable, Equatable {
    public var name: String
    /// Run with `sh -c` in the app directory. `nil` when no source had one (see
    /// ``AppConfig/requireCommands()``).
    public var command: String?
    /// Where ``command`` came from.
    public var source: CommandSource
    public var restart: RestartPolicy
    /// The group's `[[vm]]` memory (`FLY_VM_MEMORY_MB`); Fly's smallest machine when none is given.
    public var memoryMB: Int

    /// Memory of Fly's default machine size, shared-cpu-1x.
    public static let defaultMemoryMB = 256

    public init(name: String, command: String?, source: CommandSource? = nil, restart: RestartPolicy = .flyDefault,
                memoryMB: Int = ProcessGroup.defaultMemoryMB) {
        self.name = name
        self.command = command
        self.source = source ?? (command == nil ? .missing : .processes(nil))
        self.restart = restart
        self.memoryMB = memoryMB
    }
}

/// Where a group's command came from, so `check` can say it.
public enum CommandSource: Sendable, Equatable, CustomStringConvertible {
    /// fly.toml's `[processes]` (or a test's literal command).
    case processes(FilePosition?)
    /// An entry of a Procfile.
    case procfile(path: String, line: Int)
    /// `[experimental] cmd`/`entrypoint`, completed from the Dockerfile when it was read.
    case experimental(dockerfile: String?)
    /// The Dockerfile's ENTRYPOINT/CMD; `origin` is ``Dockerfile/origin`` (`20,21 (ENTRYPOINT + CMD)`).
    case dockerfile(path: String, origin: String)
    /// Nowhere: the group cannot run.
    case missing

    /// `fly.toml:12 [processes]`, `Procfile:2`, `Dockerfile:40,42 (ENTRYPOINT + CMD)`, `[experimental] cmd/entrypoint`.
    public var description: String {
        switch self {
        case .processes(let p): return p.map { "\($0.path):\($0.line) [processes]" } ?? "[processes]"
        case .procfile(let path, let line): return "\(path):\(line)"
        case .experimental(let dockerfile): return "[experimental] cmd/entrypoint" + (dockerfile.map { " with \($0)" } ?? "")
        case .dockerfile(let path, let origin):
            return origin.isEmpty ? path : "\(path):\(origin)"
        case .missing: return "none"
        }
    }
}

/// What happens when a process exits, from fly.toml's `[[restart]]`.
public enum RestartPolicy: Sendable, Equatable {
    /// Restart whatever the exit status.
    case always
    /// Restart after a non-zero exit, at most `retries` times in a row.
    case onFailure(retries: Int)
    /// Leave it stopped.
    case never

    /// Fly machines' default: on-failure with 10 retries. Also used for Procfile apps, so a
    /// crashing worker is retried rather than taking the whole app down as foreman does.
    public static let flyDefault: RestartPolicy = .onFailure(retries: 10)

    /// The fly.toml spelling: `always`, `on-failure`, `never`.
    public var name: String {
        switch self {
        case .always: return "always"
        case .onFailure: return "on-failure"
        case .never: return "never"
        }
    }

    /// `on-failure (10 retries)`, for plans and status output.
    public var summary: String {
        if case .onFailure(let retries) = self { return "on-failure (\(retries) \(retries == 1 ? "retry" : "retries"))" }
        return name
    }
}

/// A stop signal by name and number.
///
/// fly.toml names signals (`SIGTERM`); the supervisor needs the platform's number. Both are
/// kept so output shows what the file said and `kill(2)` gets the right value on Linux and macOS.
public struct KillSignal: Sendable, Hashable, Codable {
    /// The canonical name, `SIGINT`.
    public var name: String
    public var number: Int32

    public init(name: String, number: Int32) {
        self.name = name
        self.number = number
    }

    /// Fly's default stop signal.
    public static let defaultSignal = KillSignal(name: "SIGINT", number: SIGINT)

    /// The signals Fly accepts for `kill_signal`.
    public static let allowed: [KillSignal] = [
        KillSignal(name: "SIGINT", number: SIGINT),
        KillSignal(name: "SIGTERM", number: SIGTERM),
        KillSignal(name: "SIGQUIT", number: SIGQUIT),
        KillSignal(name: "SIGUSR1", number: SIGUSR1),
        KillSignal(name: "SIGUSR2", number: SIGUSR2),
        KillSignal(name: "SIGKILL", number: SIGKILL),
        KillSignal(name: "SIGSTOP", number: SIGSTOP),
    ]

    /// Reads `SIGTERM`, `TERM`, `sigterm`, `term`…; `nil` for a signal Fly does not accept.
    public init?(parsing text: String) {
        var upper = text.uppercased()
        if !upper.hasPrefix("SIG") { upper = "SIG" + upper }
        guard let match = KillSignal.allowed.first(where: { $0.name == upper }) else { return nil }
        self = match
    }
}

/// `auto_stop_machines`. Locally nothing is stopped for idleness; kept so `check` can say so.
public enum AutoStop: String, Sendable, Codable {
    case off, stop, suspend
}

/// `[http_service.concurrency]` / `[services.concurrency]`.
public struct Concurrency: Sendable, Equatable, Codable {
    /// `connections` or `requests`.
    public var type: String
    public var softLimit: Int
    /// Fly sets none unless the file gives one.
    public var hardLimit: Int?

    public init(type: String = "connections", softLimit: Int = 20, hardLimit: Int? = nil) {
        self.type = type
        self.softLimit = softLimit
        self.hardLimit = hardLimit
    }
}

/// fly.toml's `[http_service]`: one HTTP service on `internal_port`.
public struct HTTPService: Sendable, Equatable {
    /// The port the app listens on (default 8080).
    public var internalPort: Int
    public var forceHTTPS: Bool
    public var autoStopMachines: AutoStop
    public var autoStartMachines: Bool
    public var minMachinesRunning: Int
    /// The groups it routes to — never empty: the default group when the file named none.
    public var processes: [String]
    /// Whether `processes` was written in the file (rather than defaulted).
    public var processesGiven: Bool
    public var concurrency: Concurrency?
    /// `[[http_service.checks]]`, as HTTP checks on ``internalPort``.
    public var checks: [HealthCheck]

    public init(internalPort: Int = 8080, forceHTTPS: Bool = false, autoStopMachines: AutoStop = .off,
                autoStartMachines: Bool = true, minMachinesRunning: Int = 0, processes: [String],
                processesGiven: Bool = false, concurrency: Concurrency? = nil, checks: [HealthCheck] = []) {
        self.internalPort = internalPort
        self.forceHTTPS = forceHTTPS
        self.autoStopMachines = autoStopMachines
        self.autoStartMachines = autoStartMachines
        self.minMachinesRunning = minMachinesRunning
        self.processes = processes
        self.processesGiven = processesGiven
        self.concurrency = concurrency
        self.checks = checks
    }
}

/// fly.toml's `[[services]]`: a TCP/UDP service on `internal_port` with public ports.
public struct Service: Sendable, Equatable {
    /// `[[services.ports]]`.
    public struct Port: Sendable, Equatable, Codable {
        public var port: Int?
        public var startPort: Int?
        public var endPort: Int?
        public var handlers: [String]
        public var forceHTTPS: Bool

        public init(port: Int? = nil, startPort: Int? = nil, endPort: Int? = nil, handlers: [String] = [], forceHTTPS: Bool = false) {
            self.port = port
            self.startPort = startPort
            self.endPort = endPort
            self.handlers = handlers
            self.forceHTTPS = forceHTTPS
        }
    }

    public var internalPort: Int
    /// `tcp` (default) or `udp`.
    public var `protocol`: String
    public var ports: [Port]
    /// The groups it routes to — never empty: the default group when the file named none.
    public var processes: [String]
    public var processesGiven: Bool
    public var autoStopMachines: AutoStop
    public var autoStartMachines: Bool
    public var minMachinesRunning: Int
    public var concurrency: Concurrency?
    public var tcpChecks: [HealthCheck]
    public var httpChecks: [HealthCheck]

    public init(internalPort: Int, protocol: String = "tcp", ports: [Port] = [], processes: [String],
                processesGiven: Bool = false, autoStopMachines: AutoStop = .off, autoStartMachines: Bool = true,
                minMachinesRunning: Int = 0, concurrency: Concurrency? = nil,
                tcpChecks: [HealthCheck] = [], httpChecks: [HealthCheck] = []) {
        self.internalPort = internalPort
        self.protocol = `protocol`
        self.ports = ports
        self.processes = processes
        self.processesGiven = processesGiven
        self.autoStopMachines = autoStopMachines
        self.autoStartMachines = autoStartMachines
        self.minMachinesRunning = minMachinesRunning
        self.concurrency = concurrency
        self.tcpChecks = tcpChecks
        self.httpChecks = httpChecks
    }
}

/// A health check: a top-level `[checks.NAME]` or a service's check.
///
/// One type for all of them so a health checker needs one code path: every check knows its
/// port (a service check probes the service's `internal_port`) and its groups. Durations the
/// file did not give are `nil`; the runner picks its own defaults.
public struct HealthCheck: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case http, tcp
    }

    /// Where a check was declared; on Fly only service checks take a machine out of rotation.
    public enum Origin: String, Sendable, Codable {
        case topLevel = "checks"
        case httpService = "http_service"
        case service = "services"
    }

    /// The `[checks.NAME]` key, or a generated `servicecheck-00-http-8080` like Fly's.
    public var name: String
    public var kind: Kind
    public var origin: Origin
    public var port: Int
    public var path: String?
    public var method: String?
    /// `http` or `https` for HTTP checks.
    public var `protocol`: String?
    public var interval: Duration?
    public var timeout: Duration?
    public var gracePeriod: Duration?
    public var headers: [EnvVariable]
    /// The groups it applies to — never empty.
    public var processes: [String]

    public init(name: String, kind: Kind, origin: Origin, port: Int, path: String? = nil, method: String? = nil,
                protocol: String? = nil, interval: Duration? = nil, timeout: Duration? = nil,
                gracePeriod: Duration? = nil, headers: [EnvVariable] = [], processes: [String]) {
        self.name = name
        self.kind = kind
        self.origin = origin
        self.port = port
        self.path = path
        self.method = method
        self.protocol = `protocol`
        self.interval = interval
        self.timeout = timeout
        self.gracePeriod = gracePeriod
        self.headers = headers
        self.processes = processes
    }
}
