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

    A group's command comes from [processes]; when that is empty or missing, from the same-named
    entry of a Procfile next to fly.toml, [experimental] cmd, or the Dockerfile's ENTRYPOINT/CMD
    (`swiftproc check` shows which). Warnings about the config are printed once, then it runs;
    a group with no command anywhere is named and left out.

    Environment, lowest precedence first: swiftproc's own, fly.toml's [env], the .env files
    (-e; default .env, the local stand-in for `fly secrets`), then per instance PORT, PS=GROUP.N,
    PIDFILE (unless set), and Fly's machine variables: FLY_PROCESS_GROUP, FLY_APP_NAME,
    FLY_MACHINE_ID, FLY_REGION (primary_region, or --region), PRIMARY_REGION, FLY_PRIVATE_IP,
    FLY_PUBLIC_IP, FLY_IMAGE_REF, FLY_MACHINE_VERSION, FLY_VM_MEMORY_MB.

    PORT follows foreman: BASE (-p, else PORT in .env or the environment, else 5000) + 100 per
    group in file order + 1 per instance (web.1 = 5000, web.2 = 5001, worker.1 = 5100).

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
        AppOptions.region,
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
        .flag("watch", nil, "Deploy (like `swiftproc deploy`) whenever fly.toml, the Procfile, a .env file or the Dockerfile changes."),
        .flag("daemon", "d", "Detach; write logs to .swiftproc/swiftproc.log (follow with `swiftproc logs`)."),
        CommonOptions.socket,
        .value("log-lines", nil, "N", "Recent lines kept for `swiftproc logs` (default: 10000)."),
    ]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        let config = try AppOptions.loadConfig(arguments)
        var plan = try AppOptions.plan(config, arguments)
        let isDaemonChild = ProcessInfo.processInfo.environment[Daemon.childMarker] != nil
        if !isDaemonChild { AppOptions.printWarnings(config, plan: plan) }
        plan.environment.removeValue(forKey: Daemon.childMarker)
        plan.maxInstances = SupervisorPlan.instanceBudget(openFiles: Platform.raiseOpenFileLimit())
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
        // `deploy` re-reads the files with the options given here.
        let usePTY = !arguments.has("no-tty")
        let cwd = FileManager.default.currentDirectoryPath
        let watched = Locked(config.watchedFiles(relativeTo: cwd))
        let control = SupervisorControl(supervisor: supervisor, logs: logs, defaultGroup: config.defaultGroup, reload: {
            let config = try AppOptions.loadConfig(arguments)
            watched.set(config.watchedFiles(relativeTo: cwd))
            var plan = try AppOptions.plan(config, arguments)
            plan.environment.removeValue(forKey: Daemon.childMarker)
            return SupervisorControl.Deployment(
                plan: plan, releaseCommand: arguments.has("skip-release") ? nil : config.releaseCommand,
                releaseTimeout: DurationText.seconds(config.releaseCommandTimeout), usePTY: usePTY,
                warnings: config.warnings.map(\.description))
        })
        let server = ControlServer(path: socketPath, service: control)
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
        var watcher: FileWatcher?
        if arguments.has("watch") {
            watcher = FileWatcher(paths: { watched.get() })
            logs.system("watching \(watched.get().map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ")) — a change deploys")
            watcher?.start {
                logs.system("a file changed — deploying")
                // The supervisor logs what happened to each group; a failure is said here.
                let reply = await control.deploy(logWarnings: true)
                if !reply.ok {
                    for line in reply.error?.split(separator: "\n") ?? [] { logs.system("deploy failed: " + line) }
                }
            }
        }
        defer { watcher?.stop() }
        return await supervisor.waitUntilFinished()
    }
}
