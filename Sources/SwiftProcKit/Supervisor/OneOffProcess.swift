import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A command run once in the foreground with the user's terminal — `swiftproc run` and
/// `swiftproc console`, foreman's `run` and `fly console`.
///
/// Foundation makes every child the leader of its own process group, so on a terminal the child
/// is handed the terminal's foreground (and continued, in case it tried to read first and was
/// stopped for it): then Ctrl-C, Ctrl-Z and reads reach it as if the shell had started it. The
/// terminal goes back to swiftproc when it ends. SIGTERM, SIGHUP (and SIGINT when there is no
/// terminal) sent to swiftproc are passed on to the child's group. Should swiftproc die (even by
/// SIGKILL), a ``GroupWatchdog`` sends the group `killSignal`, then SIGKILL after `killTimeout`
/// — else the command would linger in the background of the terminal the shell took back.
public enum OneOffProcess {
    /// Runs `words` (one word: a shell command line; several: argv, no shell parsing) with
    /// `environment` in `directory`; returns its exit status (128 + N when killed by signal N).
    public static func run(_ words: [String], environment: [String: String], directory: URL,
                           killSignal: Int32 = SIGINT, killTimeout: Double = 5) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // One word may be a whole command line (`swiftproc run "rake db:migrate && rake seed"`).
        process.arguments = words.count == 1 ? ["-c", words[0]] : ["-c", "exec \"$@\"", "sh"] + words
        process.environment = environment
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.standardInput
        process.standardOutput = FileHandle.standardOutput
        process.standardError = FileHandle.standardError

        let terminal = isatty(STDIN_FILENO) == 1 && Terminal.foregroundGroup(STDIN_FILENO) == getpgrp()
        // Signals for swiftproc go to the child's group. On a terminal, Ctrl-C and Ctrl-\ reach
        // the child directly once it has the foreground; caught here (a handler, which the child
        // does not inherit, unlike SIG_IGN) they cannot kill swiftproc in the moment before.
        let pid = Locked<pid_t>(0)
        let sources = [SIGTERM, SIGHUP, SIGINT, SIGQUIT].map { number in
            SignalSource(number) { if !terminal || number == SIGTERM || number == SIGHUP { Platform.signalGroup(pid.get(), number) } }
        }
        defer { withExtendedLifetime(sources) {} }

        let watchdog = GroupWatchdog()
        try watchdog.start()
        defer { watchdog.close() }
        try Platform.runWithCleanSignalMask(process)
        pid.set(process.processIdentifier)
        // The terminal first: until the child has the foreground, a Ctrl-C typed there reaches
        // swiftproc, which does not pass it on.
        if terminal {
            Terminal.setForegroundGroup(STDIN_FILENO, process.processIdentifier)
            Platform.signalGroup(process.processIdentifier, SIGCONT)
        }
        let watched = watchdog.watch(pgid: process.processIdentifier, signal: killSignal, timeout: killTimeout)
        process.waitUntilExit()
        // Reaped: what it left in the background is its own business, as before; its number is free.
        watchdog.forget(watched)
        if terminal { Terminal.setForegroundGroup(STDIN_FILENO, getpgrp()) }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}

extension SupervisorPlan {
    /// The environment of a one-off process of `group` (`swiftproc run`): the app's, with the
    /// machine variables of that group, `PS=GROUP.run` (or `name`), and `PORT` only when given.
    public func oneOffEnvironment(group: String, name: String? = nil, port: Int? = nil) -> [String: String] {
        var env = environment(group: group, index: 1, port: port ?? 0)
        env["PS"] = name ?? "\(group).run"
        env["PIDFILE"] = environment["PIDFILE"]
        if let port { env["PORT"] = String(port) } else { env["PORT"] = environment["PORT"] }
        let id = machineID(app: appName, group: group, index: 0)
        env["FLY_MACHINE_ID"] = id
        env["FLY_ALLOC_ID"] = id
        return env
    }
}
