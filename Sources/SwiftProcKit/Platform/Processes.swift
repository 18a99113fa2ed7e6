// The few libc calls the supervisor makes about processes, signals and terminals.
// Everything that differs between Glibc and Darwin lives here, so the rest of the code
// reads as plain Swift. See ../shared/docs/foundation-process.md for why each exists.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Process, signal and terminal helpers.
public enum Platform {
    /// Runs `process` with an empty signal mask on the calling thread.
    ///
    /// Foundation.Process on Linux copies the spawning thread's signal mask into the child, and
    /// libdispatch worker threads (where actors and Tasks run) block 52 signals — a child spawned
    /// from there ignores SIGTERM and SIGINT for life. Clearing the mask for the duration of
    /// `run()` fixes that everywhere and is harmless on Darwin.
    public static func runWithCleanSignalMask(_ process: Process) throws {
        var empty = sigset_t()
        var old = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        try process.run()
    }

    /// Sends `signal` to every member of process group `pgid`. Returns false when the group is gone.
    @discardableResult
    public static func signalGroup(_ pgid: pid_t, _ signal: Int32) -> Bool {
        guard pgid > 1 else { return false }
        return kill(-pgid, signal) == 0
    }

    /// How a child ended, as the kernel reports it.
    public enum Exit: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        public var isSuccess: Bool { self == .exited(0) }

        public var description: String {
            switch self {
            case .exited(let code): return "exited with status \(code)"
            case .signaled(let sig): return "killed by \(Platform.signalName(sig))"
            }
        }
    }

    /// Looks at whether child `pid` has ended **without reaping it** (`waitid` with `WNOWAIT`).
    ///
    /// Foundation reaps a child only once every process holding its inherited socket has exited,
    /// so a program that exited while a grandchild lives on would otherwise go unnoticed. Peeking
    /// leaves the zombie for Foundation's own `waitpid`, which must get the status (reaping it
    /// ourselves makes Foundation report exit 0). Returns nil while it runs or when it is
    /// already reaped.
    public static func peekExit(_ pid: pid_t) -> Exit? {
        var info = siginfo_t()
        let r = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
        guard r == 0, info.si_signo == SIGCHLD else { return nil }
        #if os(Linux)
        let status = info._sifields._sigchld.si_status
        #else
        let status = info.si_status
        #endif
        if info.si_code == Int32(CLD_EXITED) { return .exited(status) }
        return .signaled(status)
    }

    /// The open-file limit ``raiseOpenFileLimit()`` reaches, without raising it: what a plan
    /// can count on.
    public static func openFileLimit() -> Int {
        guard let limit = currentOpenFileLimit() else { return 256 }
        return Int(clamping: reachableOpenFiles(limit))
    }

    /// Raises the soft open-file limit to the hard limit: each child costs about three fds.
    @discardableResult
    public static func raiseOpenFileLimit() -> Int {
        guard var limit = currentOpenFileLimit() else { return 256 }
        if limit.rlim_cur < reachableOpenFiles(limit) {
            var raised = limit
            raised.rlim_cur = reachableOpenFiles(limit)
            if setrlimit(openFileResource, &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }

    #if os(Linux)
    private static let openFileResource = Int32(RLIMIT_NOFILE.rawValue)
    #else
    private static let openFileResource = RLIMIT_NOFILE
    #endif

    private static func currentOpenFileLimit() -> rlimit? {
        var limit = rlimit()
        return getrlimit(openFileResource, &limit) == 0 ? limit : nil
    }

    /// The hard limit (on Darwin also at most OPEN_MAX, which setrlimit enforces).
    private static func reachableOpenFiles(_ limit: rlimit) -> rlim_t {
        #if canImport(Darwin)
        return min(limit.rlim_max, rlim_t(OPEN_MAX))
        #else
        return limit.rlim_max
        #endif
    }

    /// Installs a do-nothing SIGPIPE handler, so a write to a closed pipe or socket fails with
    /// EPIPE instead of killing swiftproc. A handler (unlike `SIG_IGN`) is reset at exec, so
    /// children still get the default SIGPIPE behaviour (`yes | head` ends quietly).
    public static func survivePipeErrors() {
        catchWithoutAction(SIGPIPE)
    }

    /// Catches `signal` with a handler that only notes it (``takeCaughtSignal(_:)``): swiftproc
    /// survives it, and — unlike `SIG_IGN`, which is inherited across exec — children still get
    /// the default action. The note matters in the moment before libdispatch's own handler
    /// takes over a ``SignalSource``'s signal: a Ctrl-C then would otherwise be lost.
    public static func catchWithoutAction(_ number: Int32) {
        signal(number) { caught in
            // Async-signal-safe: one aligned store.
            if caught > 0 && caught < 65 { Platform.caughtSignals[Int(caught)] = 1 }
        }
    }

    /// One flag per signal number, set by the handler of ``catchWithoutAction(_:)``.
    nonisolated(unsafe) static let caughtSignals: UnsafeMutablePointer<Int32> = {
        let flags = UnsafeMutablePointer<Int32>.allocate(capacity: 65)
        flags.initialize(repeating: 0, count: 65)
        return flags
    }()

    /// Whether `number` reached the do-nothing handler since the last call (and clears that).
    public static func takeCaughtSignal(_ number: Int32) -> Bool {
        guard number > 0 && number < 65 else { return false }
        let flags = caughtSignals
        guard flags[Int(number)] != 0 else { return false }
        flags[Int(number)] = 0
        return true
    }

    /// Whether `signal` is currently ignored (`SIG_IGN`) by this process — and so by every child it spawns.
    public static func isIgnored(_ number: Int32) -> Bool {
        var current = sigaction()
        guard sigaction(number, nil, &current) == 0 else { return false }
        #if os(Linux)
        return unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self) == 1
        #else
        return unsafeBitCast(current.__sigaction_u.__sa_handler, to: Int.self) == 1
        #endif
    }

    public static func setCloseOnExec(_ fd: Int32) {
        _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
    }

    /// A pseudo-terminal pair without output processing (`\n` stays `\n`), both ends close-on-exec.
    /// The child gets the slave as stdout/stderr so it line-buffers as in a terminal, and as
    /// stdin (see `swiftproc attach`). Input keeps a terminal's usual line discipline — line
    /// editing, echo, signal characters — so a prompt read while someone is attached behaves as
    /// in a terminal; with nobody attached no input arrives and nothing is echoed.
    public static func openRawPTY(columns: UInt16 = 132, rows: UInt16 = 40) -> (master: Int32, slave: Int32)? {
        var master: Int32 = -1
        var slave: Int32 = -1
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        guard openpty(&master, &slave, nil, nil, &size) == 0 else { return nil }
        setCloseOnExec(master)
        setCloseOnExec(slave)
        var t = termios()
        if tcgetattr(slave, &t) == 0 {
            t.c_oflag &= ~tcflag_t(OPOST)
            _ = tcsetattr(slave, TCSANOW, &t)
        }
        return (master, slave)
    }

    /// Sets a pseudo-terminal's window size (through its master).
    public static func setWindowSize(_ fd: Int32, rows: UInt16, columns: UInt16) {
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(fd, UInt(TIOCSWINSZ), &size)
    }

    /// The signal a terminal would send for `byte` typed on the pty behind `fd` (its interrupt,
    /// quit or suspend character while the program leaves `ISIG` on), or nil. Our ptys are no
    /// process's controlling terminal, so the kernel sends none itself.
    public static func terminalSignal(for byte: UInt8, terminal fd: Int32) -> Int32? {
        var t = termios()
        guard tcgetattr(fd, &t) == 0, t.c_lflag & tcflag_t(ISIG) != 0 else { return nil }
        let chars = withUnsafeBytes(of: t.c_cc) { Array($0) }
        if byte == chars[Int(VINTR)] { return SIGINT }
        if byte == chars[Int(VQUIT)] { return SIGQUIT }
        if byte == chars[Int(VSUSP)] { return SIGTSTP }
        return nil
    }

    /// The kernel's start time of `pid` (clock ticks since boot, field 22 of /proc/PID/stat), used to
    /// recognise our own leftover process groups after a crash without killing a recycled pid.
    /// nil where /proc does not exist (macOS) or the process is gone.
    public static func startTime(of pid: pid_t) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "comm)": state is field 3, so starttime (22) is the 20th after the paren.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// `SIGTERM` → "SIGTERM"; unknown numbers print as "signal 42".
    public static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGHUP: return "SIGHUP"
        case SIGINT: return "SIGINT"
        case SIGQUIT: return "SIGQUIT"
        case SIGILL: return "SIGILL"
        case SIGTRAP: return "SIGTRAP"
        case SIGABRT: return "SIGABRT"
        case SIGBUS: return "SIGBUS"
        case SIGFPE: return "SIGFPE"
        case SIGKILL: return "SIGKILL"
        case SIGUSR1: return "SIGUSR1"
        case SIGSEGV: return "SIGSEGV"
        case SIGUSR2: return "SIGUSR2"
        case SIGPIPE: return "SIGPIPE"
        case SIGALRM: return "SIGALRM"
        case SIGTERM: return "SIGTERM"
        case SIGSTOP: return "SIGSTOP"
        default: return "signal \(signal)"
        }
    }

    /// Whether a terminal is attached to `fd` (decides colour).
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Seconds on a clock that never jumps (backoff, timeouts).
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

extension Platform {
    /// Whether `entry` (`NAME=value`) is one of the environment strings `pid` started with
    /// (`/proc/PID/environ`, which the kernel lets only the process's own user — or root — read).
    /// nil where that cannot be known: no /proc (macOS), the process is gone, or not ours.
    public static func environment(of pid: pid_t, contains entry: String) -> Bool? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        let wanted = Array(entry.utf8)
        return data.split(separator: 0, omittingEmptySubsequences: true).contains { $0.elementsEqual(wanted) }
    }
}

extension Platform {
    /// The most bytes of arguments plus environment one `exec` accepts (`sysconf(_SC_ARG_MAX)`).
    public static var execArgumentLimit: Int {
        let value = sysconf(Int32(_SC_ARG_MAX))
        return value > 0 ? value : 128 * 1024
    }

    /// The longest single argument or `NAME=value` string Linux execs (`MAX_ARG_STRLEN`, 32 pages);
    /// macOS has no such per-string limit, only ``execArgumentLimit``.
    public static var execStringLimit: Int {
        #if os(Linux)
        return 32 * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        return execArgumentLimit
        #endif
    }

    /// What an `exec` with these arguments and environment costs against ``execArgumentLimit``:
    /// each string with its NUL plus one pointer. For `check`'s "environment too large" warning.
    public static func execSize(arguments: [String], environment: [String: String]) -> Int {
        let pointer = MemoryLayout<UnsafeRawPointer>.size
        let args = arguments.reduce(0) { $0 + $1.utf8.count + 1 + pointer }
        let env = environment.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 + pointer }
        return args + env + pointer * 2
    }

    /// Whether `environment` alone can be exec'd: nil if so, else why not (one line).
    public static func environmentExecProblem(_ environment: [String: String]) -> String? {
        if let (name, value) = environment.first(where: { $0.key.utf8.count + $0.value.utf8.count + 1 >= execStringLimit }) {
            return "\(name) is \(name.utf8.count + value.utf8.count + 1) bytes; one variable may be at most \(execStringLimit - 1)"
        }
        let size = execSize(arguments: [], environment: environment)
        if size > execArgumentLimit - 4096 {
            return "the environment is \(size) bytes; with the command it must fit in \(execArgumentLimit)"
        }
        return nil
    }
}
