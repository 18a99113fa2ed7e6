import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything the supervisor needs to run an app, already resolved from the config files and the
/// command line. Keeping this separate from `AppConfig` lets the supervisor be driven (and tested)
/// without any file parsing, and lets flags like `--restart` or `-p` apply in one place, the CLI.
public struct SupervisorPlan: Sendable {
    /// When an instance that exited is started again. Mirrors fly.toml's `[[restart]]`.
    public struct Restart: Sendable, Equatable {
        public enum Mode: String, Sendable, Equatable, CaseIterable {
            case always
            case onFailure = "on-failure"
            case never
        }

        public var mode: Mode
        /// Consecutive failed starts tolerated before the instance is marked failed.
        public var retries: Int

        /// Fly's default for machines: on-failure, 10 retries.
        public static let flyDefault = Restart(mode: .onFailure, retries: 10)

        public init(mode: Mode, retries: Int) {
            self.mode = mode
            self.retries = retries
        }
    }

    public struct Group: Sendable, Equatable {
        public var name: String
        public var command: String
        /// Instances to run (the formation).
        public var count: Int
        public var restart: Restart
        /// Port of instance 1; instance N listens on `basePort + N - 1`.
        public var basePort: Int
        public var usePTY: Bool
        /// `FLY_VM_MEMORY_MB`: the group's `[[vm]]` memory.
        public var memoryMB: Int

        public init(name: String, command: String, count: Int, restart: Restart = .flyDefault,
                    basePort: Int, usePTY: Bool = true, memoryMB: Int = ProcessGroup.defaultMemoryMB) {
            self.name = name
            self.command = command
            self.count = count
            self.restart = restart
            self.basePort = basePort
            self.usePTY = usePTY
            self.memoryMB = memoryMB
        }
    }

    /// A port Fly's proxy would serve (`[http_service]`, or a `[[services]]` entry): locally, a
    /// proxy on 127.0.0.1 spreading connections over the instances of `groups`.
    public struct Service: Sendable, Equatable {
        /// `http_service` or `services[N]`, for messages.
        public var name: String
        public var groups: [String]
        /// Where the local proxy listens; nil when it is switched off (`--no-proxy`).
        public var listenPort: Int?
        public var concurrency: ProxyConcurrency?
        /// `auto_stop_machines`: stop instances with no connection for `SupervisorPlan.idleTimeout`.
        public var autoStop: Bool
        /// `auto_start_machines`: a waiting connection starts an idle-stopped instance.
        public var autoStart: Bool
        /// `min_machines_running`: auto-stop never goes below this many running instances.
        public var minRunning: Int
        /// Answer a connection that found no instance with an HTTP 503.
        public var isHTTP: Bool

        public init(name: String, groups: [String], listenPort: Int?, concurrency: ProxyConcurrency? = nil,
                    autoStop: Bool = false, autoStart: Bool = true, minRunning: Int = 0, isHTTP: Bool = true) {
            self.name = name
            self.groups = groups
            self.listenPort = listenPort
            self.concurrency = concurrency
            self.autoStop = autoStop
            self.autoStart = autoStart
            self.minRunning = minRunning
            self.isHTTP = isHTTP
        }
    }

    /// A health check and whom it applies to.
    public struct Check: Sendable, Equatable {
        public var spec: HealthCheckSpec
        public var groups: [String]
        /// A service's check takes a failing instance out of the proxy's rotation; a top-level
        /// `[checks]` entry only reports, as on Fly.
        public var gatesTraffic: Bool
        /// The check's port is the service's `internal_port`: locally each instance listens on its
        /// own `$PORT`, so the check probes that instead.
        public var usesInstancePort: Bool

        public init(spec: HealthCheckSpec, groups: [String], gatesTraffic: Bool, usesInstancePort: Bool) {
            self.spec = spec
            self.groups = groups
            self.gatesTraffic = gatesTraffic
            self.usesInstancePort = usesInstancePort
        }
    }

    public var appName: String
    /// The app's directory: children's working directory, home of `.swiftproc/`.
    public var directory: URL
    /// Groups in file order (which is also their colour order).
    public var groups: [Group]
    /// The environment every child starts from (inherited, then `[env]`, then `.env` files);
    /// per-instance variables (`PORT`, `PS`, `FLY_*`) are added on top.
    public var environment: [String: String]
    public var killSignal: Int32
    /// Seconds between the kill signal and SIGKILL.
    public var killTimeout: Double
    /// foreman's behaviour (`--no-restart`): when any child exits, stop everything.
    public var stopWhenAnyExits: Bool
    /// Backoff schedule; tests shorten it.
    public var backoff: Backoff
    /// Where leftover process groups are recorded (`.swiftproc/children`), or nil for none.
    public var stateFile: URL?
    /// Services to proxy, and how long an instance may go without connections before auto-stop.
    public var services: [Service] = []
    public var checks: [Check] = []
    public var idleTimeout: Double = 300
    /// How long a connection waits for an instance before it is refused.
    public var proxyWait: Double = 30
    /// The most instances at once: each costs about four file descriptors.
    public var maxInstances = 1000
    /// How `restart` and `deploy` roll instances over (`[deploy]`).
    public var rollout = Rollout()
    /// A replacement with no service in front and no check is ready once it has run this long.
    public var settleTime = 1.0
    /// `FLY_REGION`: `--region`, else `primary_region`, else `local`.
    public var region = SupervisorPlan.localRegion
    /// Groups of the config that cannot run (no command anywhere), with how to fix each.
    public var unrunnable: [String: String] = [:]

    /// Restart delays: the first restart is immediate, then `initial` doubling up to `maximum`;
    /// an instance that ran `resetAfter` seconds starts the count again.
    public struct Backoff: Sendable {
        public var initial: Double
        public var maximum: Double
        public var resetAfter: Double

        public static let standard = Backoff(initial: 1, maximum: 30, resetAfter: 10)

        public init(initial: Double, maximum: Double, resetAfter: Double) {
            self.initial = initial
            self.maximum = maximum
            self.resetAfter = resetAfter
        }

        /// Delay before restart number `failures` (1-based) of a crash loop.
        public func delay(afterFailures failures: Int) -> Double {
            guard failures > 1 else { return 0 }
            let exponent = min(failures - 2, 30)
            return min(maximum, initial * pow(2, Double(exponent)))
        }
    }

    public init(appName: String, directory: URL, groups: [Group], environment: [String: String],
                killSignal: Int32 = SIGINT, killTimeout: Double = 5, stopWhenAnyExits: Bool = false,
                backoff: Backoff = .standard, stateFile: URL? = nil, services: [Service] = [], checks: [Check] = [],
                idleTimeout: Double = 300) {
        self.appName = appName
        self.directory = directory
        self.groups = groups
        self.environment = environment
        self.killSignal = killSignal
        self.killTimeout = killTimeout
        self.stopWhenAnyExits = stopWhenAnyExits
        self.backoff = backoff
        self.stateFile = stateFile
        self.services = services
        self.checks = checks
        self.idleTimeout = idleTimeout
    }
}

/// A stable, Fly-looking machine id (14 hex digits) for an instance: the same app, group and
/// index get the same id on every run, so logs and `FLY_MACHINE_ID` stay recognisable.
public func machineID(app: String, group: String, index: Int) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in "\(app)/\(group)/\(index)".utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String((String(repeating: "0", count: max(0, 16 - hex.count)) + hex).suffix(14))
}

extension SupervisorPlan {
    /// Where instances' pid files go: swiftproc's own directory, so nothing is added to the
    /// app's `tmp/` and the directory exists before a server (puma) writes there.
    public var pidDirectory: URL { directory.appendingPathComponent(".swiftproc/pids") }

    /// Where Fly's private network address would be: IPv6, as Fly's 6PN addresses are, so apps
    /// that bind or cluster on `FLY_PRIVATE_IP` (Elixir's `inet6_tcp`) work locally.
    public static let localPrivateIP = "::1"

    /// The environment of instance `index` of `group`, listening on `port`: the app's, then what
    /// foreman and Fly set per machine. Fly's values win over `[env]` and `.env`, as they do on
    /// Fly; `PIDFILE` only fills a gap, so each Rails server (and the puma.rb Rails generates)
    /// gets its own pid file.
    public func environment(group: String, index: Int, port: Int) -> [String: String] {
        environment.merging(instanceVariables(group: group, index: index, port: port)) { _, instance in instance }
    }

    /// What swiftproc sets for one instance on top of the app's environment — what
    /// `check --show-env` lists per instance.
    public func instanceVariables(group: String, index: Int, port: Int) -> [String: String] {
        let name = "\(group).\(index)"
        var env: [String: String] = ["PORT": String(port), "PS": name]
        if environment["PIDFILE"] == nil { env["PIDFILE"] = pidDirectory.appendingPathComponent("\(name).pid").path }
        if let primary = environment["PRIMARY_REGION"] { env["PRIMARY_REGION"] = primary }
        addMachineEnvironment(to: &env, group: group, machineID: machineID(app: appName, group: group, index: index),
                              memoryMB: groups.first { $0.name == group }?.memoryMB ?? ProcessGroup.defaultMemoryMB)
        return env
    }

    /// The release command's environment: the app's with `RELEASE_COMMAND=1`, in its own
    /// `fly_app_release_command` group, as Fly runs it in a temporary machine.
    public func releaseEnvironment() -> [String: String] {
        var env = environment
        env["RELEASE_COMMAND"] = "1"
        let group = "fly_app_release_command"
        addMachineEnvironment(to: &env, group: group, machineID: machineID(app: appName, group: group, index: 1),
                              memoryMB: ProcessGroup.defaultMemoryMB)
        return env
    }

    /// The variables every Fly machine gets, with local values (README, "What it reads").
    private func addMachineEnvironment(to env: inout [String: String], group: String, machineID id: String, memoryMB: Int) {
        env["FLY_PROCESS_GROUP"] = group
        env["FLY_APP_NAME"] = appName
        env["FLY_MACHINE_ID"] = id
        env["FLY_ALLOC_ID"] = id
        env["FLY_REGION"] = region
        env["FLY_PRIVATE_IP"] = SupervisorPlan.localPrivateIP
        env["FLY_PUBLIC_IP"] = SupervisorPlan.localPrivateIP
        env["FLY_IMAGE_REF"] = "registry.fly.io/\(appName):deployment-local"
        env["FLY_MACHINE_VERSION"] = machineVersion(group: group)
        env["FLY_VM_MEMORY_MB"] = String(memoryMB)
    }

    /// A version id for a group's machines that changes when what they run changes (command,
    /// app environment), like Fly's per-deploy machine version.
    func machineVersion(group: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ text: String) {
            for byte in text.utf8 { hash ^= UInt64(byte); hash = hash &* 0x0000_0100_0000_01b3 }
            hash ^= 0xff; hash = hash &* 0x0000_0100_0000_01b3
        }
        mix(groups.first { $0.name == group }?.command ?? group)
        for key in environment.keys.sorted() { mix(key); mix(environment[key] ?? "") }
        let hex = String(hash, radix: 16)
        return String((String(repeating: "0", count: max(0, 16 - hex.count)) + hex).prefix(12))
    }
}
