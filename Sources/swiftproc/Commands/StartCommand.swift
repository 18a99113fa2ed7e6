import Foundation
import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftproc start`: run the formation in the foreground (or detached with `-d`).
enum StartCommand: Command {
    static let name = "start"
    static let summary = "Run the app's process groups, merge their logs, restart crashed ones."
    static let usage = "[GROUP...] [options]"
    static let discussion = """
    Reads the [processes] of ./fly.toml (or a Procfile) and starts each group, one instance each
    unless -m says otherwise. Naming groups starts only those (the others can be scaled up later).
    Every instance runs `sh -c` in the app's directory, as the leader of its own process group,
    with a pseudo-terminal as stdout/stderr so it line-buffers as in a terminal (--no-tty: pipes).

    Environment, lowest precedence first: swiftproc's own, fly.toml's [env], the .env files
    (-e; default .env, the local stand-in for `fly secrets`), then per instance PORT, PS=GROUP.N,
    FLY_PROCESS_GROUP, FLY_APP_NAME, FLY_MACHINE_ID, FLY_REGION=local.

    PORT follows foreman: BASE (default 5000, -p) + 100 per group in file order + 1 per instance
    (web.1 = 5000, web.2 = 5001, worker.1 = 5100).

    Restarts follow fly.toml's [[restart]] (Fly's default: on-failure, 10 retries): the first
    restart is immediate, then 1s, 2s, 4s… up to 30s; an instance that ran 10s starts over.
    Ctrl-C (or SIGTERM/SIGHUP) sends kill_signal (default SIGINT) to every process group, waits
    kill_timeout (default 5s), then SIGKILLs what is left; a second Ctrl-C kills at once.
    With [http_service] (or [[services]] with an internal_port), a proxy listens on
    127.0.0.1:internal_port and spreads connections over the running, healthy instances of the
    groups it names, each listening on its own $PORT — as Fly's proxy does in front of machines.
    Scale-downs and restarts drain an instance first; auto_stop_machines stops instances idle
    for --idle-timeout, and a waiting connection starts one again.

    A release command ([deploy] release_command, or a Procfile's release:) runs first, once, as
    on Fly: with RELEASE_COMMAND=1, bounded by release_command_timeout; if it fails, start exits
    with its status (--skip-release skips it).
    While it runs, `swiftproc scale|status|logs|restart|stop` talk to it from other terminals.
    """
    static let options: [Option] = [
        CommonOptions.config, CommonOptions.procfile, AppOptions.formation, AppOptions.env, AppOptions.port,
        .value("restart", nil, "POLICY", "Override every group's restart policy: always, on-failure or never."),
        .flag("no-restart", nil, "Stop everything when any process exits (foreman's behaviour)."),
        .flag("no-tty", nil, "Give children pipes instead of a pseudo-terminal."),
        .value("pipes", nil, "GROUPS", "Give only these groups pipes instead of a pseudo-terminal (comma-separated)."),
        .flag("no-color", nil, "Do not colour the output (also: NO_COLOR set, or stdout not a terminal)."),
        .flag("no-timestamps", nil, "Do not print the time on each line."),
        .flag("no-proxy", nil, "Do not listen on the services' internal_port (no local proxy)."),
        .value("proxy-port", nil, "PORT", "Listen for [http_service] on PORT instead of its internal_port."),
        .value("idle-timeout", nil, "DURATION", "With auto_stop_machines: stop instances idle this long (default: 5m)."),
        .flag("skip-release", nil, "Do not run the release command ([deploy] release_command or Procfile release:)."),
        .flag("daemon", "d", "Detach; write logs to .swiftproc/swiftproc.log (follow with `swiftproc logs`)."),
        CommonOptions.socket,
        .value("log-lines", nil, "N", "Recent lines kept for `swiftproc logs` (default: 10000)."),
    ]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        let config = try AppOptions.loadConfig(arguments)
        try config.requireCommands()
        var plan = try makePlan(config, arguments)
        plan.maxInstances = max(1, (Platform.raiseOpenFileLimit() - 64) / 4)
        // Every flag is checked before a daemon detaches, so mistakes are reported here.
        var style = LogStyle.automatic(for: STDOUT_FILENO)
        if arguments.has("no-color") { style.color = false }
        if arguments.has("no-timestamps") { style.timestamps = false }
        let ringCapacity = try arguments.value("log-lines").map { text in
            guard let n = Int(text), (1...RecentLines.maximumCapacity).contains(n) else {
                throw UsageError(message: "--log-lines needs a number from 1 to \(RecentLines.maximumCapacity), not \"\(text)\"", command: name)
            }
            return n
        } ?? RecentLines.defaultCapacity
        let socketPath = ControlSocket.path(appDirectory: plan.directory.path, override: arguments.value("socket"),
                                            environment: ProcessInfo.processInfo.environment)
        let isDaemonChild = ProcessInfo.processInfo.environment[Daemon.childMarker] != nil
        if arguments.has("daemon") && !isDaemonChild {
            return try Daemon.detach(appDirectory: plan.directory, socketPath: socketPath)
        }
        // One supervisor per directory: `.swiftproc` checked (ours, 0700, no symlink) and its lock
        // taken before anything is written, listened on or spawned.
        let appLock: AppLock
        do {
            appLock = try StateDirectory.prepare(appDirectory: plan.directory.path).lock()
        } catch {
            throw Failure("swiftproc start: \(error)")
        }
        defer { withExtendedLifetime(appLock) {} }

        let logs = LogMultiplexer(output: STDOUT_FILENO, style: style, ringCapacity: ringCapacity)
        defer {
            logs.flush()
            logs.shutdown()
        }
        let supervisor = try Supervisor(plan: plan, log: logs)

        // Refuse before spawning anything if another supervisor owns this directory.
        let server = ControlServer(path: socketPath,
                                   service: SupervisorControl(supervisor: supervisor, logs: logs,
                                                              defaultGroup: config.defaultGroup))
        do {
            try server.start()
        } catch {
            throw Failure("swiftproc start: \(error)")
        }
        defer { server.stop() }

        // The proxies next, so a port in use stops us before anything runs.
        do {
            for line in try await supervisor.openProxies() { logs.system(line) }
            try await supervisor.checkFormation()
        } catch let error as ControlServiceError {
            throw Failure("swiftproc start: \(error.message)")
        } catch {
            throw Failure("swiftproc start: \(error) — or use --proxy-port PORT or --no-proxy")
        }

        // Signals become messages to the supervisor, which also stops a release command.
        // SIGHUP does not stop a daemon: it has no terminal.
        var shutdownSignals = [SIGINT, SIGTERM]
        if !isDaemonChild { shutdownSignals.append(SIGHUP) } else { Platform.catchWithoutAction(SIGHUP) }
        let sources = shutdownSignals.map { number in
            SignalSource(number) {
                Task { await supervisor.shutdown(reason: "\(Platform.signalName(number)) received") }
            }
        }
        defer { withExtendedLifetime(sources) {} }

        if let command = config.releaseCommand, !command.isEmpty, !arguments.has("skip-release") {
            let outcome = await supervisor.runRelease(command, timeout: DurationText.seconds(config.releaseCommandTimeout),
                                                      usePTY: !arguments.has("no-tty"))
            switch outcome {
            case .succeeded: break
            case .failed(_, let status): return status
            case .couldNotStart(let why): throw Failure("swiftproc start: the release command could not start: \(why)")
            case .timedOut: return 1
            case .cancelled:
                _ = await supervisor.waitUntilFinished()
                return 1
            }
        }
        await supervisor.start()
        return await supervisor.waitUntilFinished()
    }

    /// Turns config and flags into what the supervisor runs.
    static func makePlan(_ config: AppConfig, _ arguments: ParsedArguments) throws -> SupervisorPlan {
        let formation = try AppOptions.formation(config, arguments, command: name)
        let ports = try AppOptions.ports(config, arguments, command: name)
        var override: SupervisorPlan.Restart.Mode?
        if let text = arguments.value("restart") {
            guard let mode = SupervisorPlan.Restart.Mode(rawValue: text) else {
                throw UsageError(message: "--restart takes always, on-failure or never, not \"\(text)\"", command: name)
            }
            override = mode
        }
        let pipeGroups = Set(arguments.all("pipes").flatMap { $0.split(separator: ",").map(String.init) })
        for g in pipeGroups where !config.groupNames.contains(g) {
            throw ConfigError.unknownProcess(g, suggestions: closestMatch(to: g, in: config.groupNames).map { [$0] } ?? [],
                                             known: config.groupNames, at: nil)
        }
        let groups = config.groups.map { g in
            var restart = SupervisorPlan.Restart(g.restart)
            if let override { restart = restart.overridden(by: override) }
            return SupervisorPlan.Group(name: g.name, command: g.command ?? "", count: formation[g.name],
                                        restart: restart, basePort: ports.port(group: g.name, instance: 1) ?? ports.base,
                                        usePTY: !arguments.has("no-tty") && !pipeGroups.contains(g.name))
        }
        let directory = URL(fileURLWithPath: config.directory)
        var idleTimeout = 300.0
        if let text = arguments.value("idle-timeout") {
            guard let d = DurationText.parse(text) ?? Int(text).map({ Duration.seconds($0) }), DurationText.seconds(d) > 0 else {
                throw UsageError(message: "--idle-timeout needs a duration like 30s or 5m, not \"\(text)\"", command: name)
            }
            idleTimeout = DurationText.seconds(d)
        }
        var proxyPort: Int?
        if let text = arguments.value("proxy-port") {
            guard let p = Int(text), (0...65535).contains(p) else {
                throw UsageError(message: "--proxy-port needs a port number, not \"\(text)\"", command: name)
            }
            proxyPort = p
        }
        var environment = config.environment(inheriting: ProcessInfo.processInfo.environment)
        environment.removeValue(forKey: Daemon.childMarker)
        return SupervisorPlan(appName: config.appName ?? directory.lastPathComponent, directory: directory,
                              groups: groups, environment: environment, killSignal: config.killSignal.number,
                              killTimeout: DurationText.seconds(config.killTimeout),
                              stopWhenAnyExits: arguments.has("no-restart"),
                              stateFile: directory.appendingPathComponent(".swiftproc/children"),
                              services: services(config, proxy: !arguments.has("no-proxy"), port: proxyPort),
                              checks: checks(config), idleTimeout: idleTimeout)
    }

    /// Every check of the config. Service checks gate the proxy; top-level `[checks]` only report.
    /// A check on a service's `internal_port` probes each instance's own `$PORT`.
    static func checks(_ config: AppConfig) -> [SupervisorPlan.Check] {
        let internalPorts = Set([config.httpService?.internalPort].compactMap { $0 } + config.services.map(\.internalPort))
        return config.allChecks.map { check in
            SupervisorPlan.Check(spec: HealthCheckSpec(check), groups: check.processes,
                                 gatesTraffic: check.origin != .topLevel,
                                 usesInstancePort: internalPorts.contains(check.port))
        }
    }

    /// The services Fly's proxy would serve: `[http_service]` and each `[[services]]` entry.
    /// `--proxy-port` moves the http service's (else the first service's) listening port.
    static func services(_ config: AppConfig, proxy: Bool, port override: Int?) -> [SupervisorPlan.Service] {
        var out: [SupervisorPlan.Service] = []
        if let h = config.httpService {
            out.append(.init(name: "http_service", groups: h.processes, listenPort: h.internalPort,
                             concurrency: h.concurrency.map(ProxyConcurrency.init), autoStop: h.autoStopMachines != .off,
                             autoStart: h.autoStartMachines, minRunning: h.minMachinesRunning, isHTTP: true))
        }
        for (i, svc) in config.services.enumerated() {
            let http = svc.ports.contains { $0.handlers.contains("http") }
            out.append(.init(name: "services[\(i)]", groups: svc.processes, listenPort: svc.internalPort,
                             concurrency: svc.concurrency.map(ProxyConcurrency.init), autoStop: svc.autoStopMachines != .off,
                             autoStart: svc.autoStartMachines, minRunning: svc.minMachinesRunning, isHTTP: http))
        }
        if let override, !out.isEmpty { out[0].listenPort = override }
        if !proxy { for i in out.indices { out[i].listenPort = nil } }
        return out
    }
}

extension SupervisorPlan.Restart {
    /// `--restart MODE` for a group whose own policy is `self`: `always` retries for ever,
    /// `on-failure` keeps the group's retries when it had some (else Fly's 10), `never` none.
    func overridden(by mode: Mode) -> SupervisorPlan.Restart {
        switch mode {
        case .always: return .init(mode: .always, retries: Int.max)
        case .onFailure: return .init(mode: .onFailure, retries: self.mode == .onFailure ? retries : 10)
        case .never: return .init(mode: .never, retries: 0)
        }
    }

    /// fly.toml's policy in the supervisor's terms.
    init(_ policy: RestartPolicy) {
        switch policy {
        case .always: self.init(mode: .always, retries: Int.max)
        case .onFailure(let retries): self.init(mode: .onFailure, retries: retries)
        case .never: self.init(mode: .never, retries: 0)
        }
    }
}
