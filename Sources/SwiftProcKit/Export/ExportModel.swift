import Foundation
import TOML

/// Everything an export format needs, in swiftproc's own terms: the app as `check` and `start`
/// see it (config + formation + ports), flattened to plain values.
///
/// The only code that reads ``AppConfig`` is ``ExportModel/init(config:formation:ports:image:workingDirectory:)``,
/// so a change to the configuration model is adapted in one place; the format writers only
/// see this value, and tests build it directly.
public struct ExportModel: Sendable, Equatable {
    /// One process group with a command.
    public struct Group: Sendable, Equatable {
        public var name: String
        /// The command as written (run with `sh -c`, like `start`).
        public var command: String
        /// Instances in the formation (may be 0).
        public var count: Int
        /// `PORT` of instance 1 under `start`'s scheme; instance N gets `basePort + N - 1`.
        public var basePort: Int
        public var restart: RestartPolicy
        /// The checks that apply to this group, service checks first.
        public var checks: [Check]

        public init(name: String, command: String, count: Int, basePort: Int, restart: RestartPolicy = .flyDefault,
                    checks: [Check] = []) {
            self.name = name
            self.command = command
            self.count = count
            self.basePort = basePort
            self.restart = restart
            self.checks = checks
        }
    }

    /// A health check, durations in seconds.
    public struct Check: Sendable, Equatable {
        public var name: String
        public var isHTTP: Bool
        /// Whether it comes from a service (Fly takes a failing instance out of rotation) rather
        /// than top-level `[checks]` (report only).
        public var gatesTraffic: Bool
        public var port: Int
        public var path: String
        public var useHTTPS: Bool
        public var headers: [EnvVariable]
        public var interval: Double?
        public var timeout: Double?
        public var gracePeriod: Double?

        public init(name: String, isHTTP: Bool, gatesTraffic: Bool, port: Int, path: String = "/", useHTTPS: Bool = false,
                    headers: [EnvVariable] = [], interval: Double? = nil, timeout: Double? = nil, gracePeriod: Double? = nil) {
            self.name = name
            self.isHTTP = isHTTP
            self.gatesTraffic = gatesTraffic
            self.port = port
            self.path = path
            self.useHTTPS = useHTTPS
            self.headers = headers
            self.interval = interval
            self.timeout = timeout
            self.gracePeriod = gracePeriod
        }
    }

    /// `[http_service]` or one `[[services]]` entry.
    public struct Service: Sendable, Equatable {
        /// `http_service`, or `services-1`, `services-2`… in file order.
        public var name: String
        public var isHTTPService: Bool
        public var internalPort: Int
        /// `tcp` or `udp`.
        public var `protocol`: String
        /// Public ports; `[80, 443]` for the http service. Port ranges are not listed.
        public var publicPorts: [Int]
        public var groups: [String]

        public init(name: String, isHTTPService: Bool, internalPort: Int, protocol: String = "tcp",
                    publicPorts: [Int], groups: [String]) {
            self.name = name
            self.isHTTPService = isHTTPService
            self.internalPort = internalPort
            self.protocol = `protocol`
            self.publicPorts = publicPorts
            self.groups = groups
        }
    }

    /// `fly.toml` or `Procfile`.
    public var sourceKind: AppConfig.SourceKind
    /// The file it came from, as the user named it (for header comments).
    public var sourcePath: String
    /// `app`, else the app directory's name.
    public var appName: String
    /// Absolute app directory (commands run here).
    public var directory: String
    /// Groups with a command, in file order.
    public var groups: [Group]
    /// Groups left out because they have no command.
    public var skippedGroups: [String]
    /// `[env]`, in file order.
    public var env: [EnvVariable]
    /// The `.env` files' variables after merging (later files win).
    public var dotenv: [EnvVariable]
    /// The `.env` files that were read, absolute.
    public var envFiles: [String]
    /// `SIGINT` etc.
    public var killSignal: String
    /// Whole seconds (rounded up).
    public var killTimeout: Int
    public var releaseCommand: String?
    /// Whole seconds (rounded up).
    public var releaseTimeout: Int
    /// The container image (`--image`, else fly.toml's `[build] image`).
    public var image: String?
    public var services: [Service]

    public init(sourceKind: AppConfig.SourceKind = .flyToml, sourcePath: String = "fly.toml", appName: String,
                directory: String, groups: [Group], skippedGroups: [String] = [], env: [EnvVariable] = [],
                dotenv: [EnvVariable] = [], envFiles: [String] = [], killSignal: String = "SIGINT", killTimeout: Int = 5,
                releaseCommand: String? = nil, releaseTimeout: Int = 300, image: String? = nil, services: [Service] = []) {
        self.sourceKind = sourceKind
        self.sourcePath = sourcePath
        self.appName = appName
        self.directory = directory
        self.groups = groups
        self.skippedGroups = skippedGroups
        self.env = env
        self.dotenv = dotenv
        self.envFiles = envFiles
        self.killSignal = killSignal
        self.killTimeout = killTimeout
        self.releaseCommand = releaseCommand
        self.releaseTimeout = releaseTimeout
        self.image = image
        self.services = services
    }

    /// The adapter from the loaded configuration: the one place that reads ``AppConfig``.
    ///
    /// - Parameters:
    ///   - formation: counts per group, as `start` would run them.
    ///   - ports: `start`'s port scheme (gives each group's base `PORT`).
    ///   - image: `--image`; when `nil`, fly.toml's `[build] image` is used if there is one.
    ///   - workingDirectory: where relative paths the user typed (`-e`) are resolved.
    public init(config: AppConfig, formation: Formation, ports: PortPlan, image: String? = nil,
                workingDirectory: String = FileManager.default.currentDirectoryPath) {
        let directory = URL(fileURLWithPath: config.directory).standardizedFileURL.path
        var services: [Service] = []
        if let http = config.httpService {
            services.append(Service(name: "http_service", isHTTPService: true, internalPort: http.internalPort,
                                    publicPorts: [80, 443], groups: http.processes))
        }
        for (i, s) in config.services.enumerated() {
            services.append(Service(name: "services-\(i + 1)", isHTTPService: false, internalPort: s.internalPort,
                                    protocol: s.protocol, publicPorts: s.ports.compactMap(\.port), groups: s.processes))
        }
        let checks = config.allChecks
        var groups: [Group] = []
        var skipped: [String] = []
        for g in config.groups {
            guard let command = g.command, !command.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                skipped.append(g.name)
                continue
            }
            let mine = checks.filter { $0.processes.contains(g.name) }.map { c in
                Check(name: c.name, isHTTP: c.kind == .http, gatesTraffic: c.origin != .topLevel, port: c.port,
                      path: c.path ?? "/", useHTTPS: c.protocol == "https", headers: c.headers,
                      interval: c.interval.map(DurationText.seconds), timeout: c.timeout.map(DurationText.seconds),
                      gracePeriod: c.gracePeriod.map(DurationText.seconds))
            }
            groups.append(Group(name: g.name, command: command, count: formation[g.name],
                                basePort: ports.port(group: g.name, instance: 1) ?? ports.base, restart: g.restart,
                                checks: mine.filter(\.gatesTraffic) + mine.filter { !$0.gatesTraffic }))
        }
        var image = image
        if image == nil, config.source == .flyToml {
            let full = URL(fileURLWithPath: config.directory)
                .appendingPathComponent(URL(fileURLWithPath: config.configPath).lastPathComponent).path
            image = ExportModel.buildImage(flyTomlAt: full)
        }
        self.init(sourceKind: config.source, sourcePath: config.configPath,
                  appName: config.appName ?? URL(fileURLWithPath: directory).lastPathComponent,
                  directory: directory, groups: groups, skippedGroups: skipped, env: config.env, dotenv: config.dotenv,
                  envFiles: config.envFiles.map {
                      URL(fileURLWithPath: $0, relativeTo: URL(fileURLWithPath: workingDirectory, isDirectory: true))
                          .standardizedFileURL.path
                  },
                  killSignal: config.killSignal.name, killTimeout: Int(DurationText.seconds(config.killTimeout).rounded(.up)),
                  releaseCommand: config.releaseCommand,
                  releaseTimeout: Int(DurationText.seconds(config.releaseCommandTimeout).rounded(.up)),
                  image: image, services: services)
    }

    /// fly.toml's `[build] image`, if the file has one.
    static func buildImage(flyTomlAt path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
              let root = try? ConfigLoader.decodeFlyToml(String(decoding: data, as: UTF8.self), path: path),
              let build = root["build"]?.tableValue, let image = build["image"]?.stringValue,
              !image.isEmpty else { return nil }
        return image
    }

    /// `[env]` then `.env`, later names replacing earlier ones in place: what a process sees
    /// before the per-instance variables.
    public var mergedEnvironment: [EnvVariable] {
        var out: [EnvVariable] = []
        for v in env + dotenv {
            if let i = out.firstIndex(where: { $0.name == v.name }) { out[i] = v } else { out.append(v) }
        }
        return out
    }

    /// The services that route to `group`.
    public func services(of group: String) -> [Service] {
        services.filter { $0.groups.contains(group) }
    }
}
