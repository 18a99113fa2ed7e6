import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a child could not be started at all (as opposed to starting and failing).
public enum SpawnError: Error, Sendable, CustomStringConvertible {
    case directoryMissing(String)
    case outOfFileDescriptors
    case launchFailed(String)

    public var description: String {
        switch self {
        case .directoryMissing(let dir): return "directory \(dir) does not exist"
        case .outOfFileDescriptors: return "out of file descriptors (raise `ulimit -n` or run fewer instances)"
        case .launchFailed(let why): return "could not start /bin/sh: \(why)"
        }
    }
}

/// What to start.
public struct SpawnRequest: Sendable {
    public var command: String
    public var environment: [String: String]
    public var directory: URL
    /// Give the child a pseudo-terminal (so it line-buffers) instead of a pipe.
    public var usePTY: Bool
    /// What the watchdog sends the group when swiftproc itself dies, and how long it waits before SIGKILL.
    public var killSignal: Int32
    public var killTimeout: Double
    /// With a pty: the command's stdin is the pty too, so `swiftproc attach` can type into it
    /// (else /dev/null: a release command must not wait for input nobody gives).
    public var inputFromTerminal: Bool

    public init(command: String, environment: [String: String], directory: URL, usePTY: Bool,
                killSignal: Int32 = SIGINT, killTimeout: Double = 5, inputFromTerminal: Bool = false) {
        self.command = command
        self.environment = environment
        self.directory = directory
        self.usePTY = usePTY
        self.killSignal = killSignal
        self.killTimeout = killTimeout
        self.inputFromTerminal = inputFromTerminal
    }
}

/// A started child. `process` must stay owned by one isolation domain (the supervisor).
public struct SpawnedChild {
    public let process: Process
    public let pid: pid_t
    /// The read end of the child's merged stdout+stderr (a pipe or a pty master); the caller owns it.
    public let outputFD: Int32
}

/// Starts children with Foundation.Process, one at a time.
///
/// Encodes what ../shared/docs/foundation-process.md measured:
/// - spawns are serialised behind one lock, because concurrent `run()` calls leak one child's
///   termination socket into another;
/// - the signal mask is cleared around `run()` so children honour SIGTERM/SIGINT;
/// - the command runs as `/bin/sh -c` with `exec` where it is a simple command, so the process
///   Foundation tracks is the real program and the leader of its own process group;
/// - stdin is the read end of one watchdog pipe whose write end only swiftproc holds: a small
///   background loop in each child's group waits for EOF on it — which happens only when swiftproc
///   has died, even by SIGKILL — and then signals its whole group. The program itself gets /dev/null.
public final class Spawner: @unchecked Sendable {
    private let lock = NSLock()
    /// The watchdog pipe; never written, never closed while swiftproc lives.
    private let watchdogRead: Int32
    private let watchdogWrite: Int32

    public init() throws(SpawnError) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw .outOfFileDescriptors }
        watchdogRead = fds[0]
        watchdogWrite = fds[1]
        Platform.setCloseOnExec(watchdogRead)
        Platform.setCloseOnExec(watchdogWrite)
    }

    /// Starts `request`. `onExit` is called once, on an arbitrary thread, after Foundation reaped the
    /// child; treat it as a notification and hop to the owner of state.
    public func spawn(_ request: SpawnRequest,
                      onExit: @escaping @Sendable (_ pid: pid_t, _ exit: Platform.Exit) -> Void) throws(SpawnError) -> SpawnedChild {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: request.directory.path, isDirectory: &isDirectory),
              isDirectory.boolValue else {
            throw .directoryMissing(request.directory.path)
        }

        lock.lock()
        defer { lock.unlock() }

        // The child's output: a pty (line-buffered programs) or a pipe.
        let readFD: Int32
        let writeFD: Int32
        if request.usePTY, let pty = Platform.openRawPTY() {
            (readFD, writeFD) = (pty.master, pty.slave)
        } else {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { throw .outOfFileDescriptors }
            (readFD, writeFD) = (fds[0], fds[1])
            Platform.setCloseOnExec(readFD)
            Platform.setCloseOnExec(writeFD)
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", Self.wrapperScript(for: request)]
        process.environment = request.environment
        process.currentDirectoryURL = request.directory
        process.standardInput = FileHandle(fileDescriptor: watchdogRead, closeOnDealloc: false)
        let output = FileHandle(fileDescriptor: writeFD, closeOnDealloc: false)
        process.standardOutput = output
        process.standardError = output
        process.terminationHandler = { p in
            let exit: Platform.Exit = p.terminationReason == .uncaughtSignal
                ? .signaled(p.terminationStatus) : .exited(p.terminationStatus)
            p.terminationHandler = nil
            onExit(p.processIdentifier, exit)
        }
        do {
            try Platform.runWithCleanSignalMask(process)
        } catch {
            close(readFD)
            close(writeFD)
            let code = Self.posixCode(of: error)
            if code == EMFILE || code == ENFILE { throw .outOfFileDescriptors }
            throw .launchFailed(Self.describe(code: code, error: error, arguments: process.arguments ?? []))
        }
        // swift-corelibs-foundation never frees a launched Process (about 1.3 KB each), and with
        // it whatever it holds: the environment and the script made it 5–10 KB per spawn, so a
        // crash-looping worker grew the supervisor without bound. Nothing reads them after launch.
        process.environment = nil
        process.arguments = nil
        process.standardInput = nil
        process.standardOutput = nil
        process.standardError = nil
        // Only the child may hold the write side, or EOF never comes.
        close(writeFD)
        return SpawnedChild(process: process, pid: process.processIdentifier, outputFD: readFD)
    }

    /// The errno behind a Foundation launch error (Foundation wraps it as NSCocoaErrorDomain 256
    /// with the POSIX error underneath), or 0.
    static func posixCode(of error: any Error) -> Int32 {
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return Int32(truncatingIfNeeded: ns.code) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return Int32(truncatingIfNeeded: underlying.code)
        }
        return 0
    }

    /// Why a launch failed, naming the cause instead of "NSCocoaErrorDomain error 256".
    static func describe(code: Int32, error: any Error, arguments: [String]) -> String {
        switch code {
        case 0:
            return "\(error)"
        case E2BIG:
            let size = Platform.execSize(arguments: arguments, environment: [:])
            let longest = arguments.map(\.utf8.count).max() ?? 0
            var why = "the environment and command are too large to exec (\(size) bytes; the limit is \(Platform.execArgumentLimit)"
            if longest >= Platform.execStringLimit {
                why += ", and one variable or argument is \(longest) bytes where \(Platform.execStringLimit) is the most"
            }
            return why + "): " + Platform.errorText(code)
        case EAGAIN:
            return "the system refused a new process (the per-user process limit, `ulimit -u`, or memory): " + Platform.errorText(code)
        default:
            return Platform.errorText(code)
        }
    }

    /// The `sh -c` script: move the watchdog pipe to fd 3, start the watchdog loop (ignoring the
    /// signals swiftproc uses for a normal stop, so it outlives the program and is cleaned up with
    /// the group), then run the command with stdin = the pty (``SpawnRequest/inputFromTerminal``)
    /// or /dev/null.
    ///
    /// The loop is started from a subshell, `( … & )`, so it is not a job of the shell that runs
    /// the command: `wait`, `$!` and `%1` in the command never see it. It stays in the process
    /// group, and `$$` in it is still the command's pid. One line, so a shell error reads
    /// `sh: 1: …` whatever the wrapper looks like.
    static func wrapperScript(for request: SpawnRequest) -> String {
        let signal = Platform.signalName(request.killSignal).replacingOccurrences(of: "SIG", with: "")
        // Bounded whatever the plan says (a day), so the conversion can never trap.
        let ticks = max(1, Int((min(max(request.killTimeout, 0), 86_400) * 10).rounded(.up)))
        // After the kill signal, wait (in 0.1 s steps, up to kill_timeout) only while the group's
        // leader — `$$`, which the command became — is alive, then SIGKILL whatever is left.
        // SIGSTOP (or SIGKILL) as the kill signal would stop the watchdog itself: go straight to KILL.
        let graceful = request.killSignal != SIGSTOP && request.killSignal != SIGKILL
        let watchdog = "trap '' INT TERM HUP QUIT USR1 USR2; while read -r _ <&3; do :; done; "
            + (graceful ? "kill -s \(signal) 0; n=0; while [ $n -lt \(ticks) ] && kill -0 $$ 2>/dev/null; do sleep 0.1; n=$((n+1)); done; " : "")
            + "kill -s KILL 0"
        let command = ShellCommand.execPrefixed(request.command)
        // When the shell stays the group's leader (a list or pipeline), it must outlive its
        // children's graceful stop: dash waits for its foreground child on SIGINT but dies at once
        // on SIGTERM and the rest, and its exit makes swiftproc SIGKILL the group. A trap makes it
        // wait for the running command first (children still get the default action).
        var trap = ""
        if command == request.command, graceful, request.killSignal != SIGINT {
            trap = "trap 'exit \(128 + request.killSignal)' \(signal); "
        }
        // stdin: the pty (the slave is open for reading and writing) or /dev/null.
        let input = request.usePTY && request.inputFromTerminal ? "<&1" : "</dev/null"
        return "exec 3<&0 \(input); ( { \(watchdog); } & ); exec 3<&-; " + trap + command
    }
}

/// How a command line is handed to `sh -c`.
public enum ShellCommand {
    /// `exec`-prefixes a simple command so the shell replaces itself with the program: the pid
    /// Foundation tracks is then the program's own, and its exit status and signals are the
    /// program's. Commands with shell control syntax outside quotes (`a && b`, `x | y`, `a; b`,
    /// `a &`, subshells, compound commands) run as they are, still in their own process group.
    /// Leading `NAME=value` assignments stay in front (`RAILS_ENV=dev exec rails s`).
    public static func execPrefixed(_ command: String) -> String {
        let trimmed = command.trimmingCharacters(in: .whitespaces)
        guard isSimple(trimmed) else { return command }
        var words = trimmed[...]
        var prefix = ""
        while let word = words.split(maxSplits: 1, omittingEmptySubsequences: true, whereSeparator: isBlank).first,
              isAssignment(word) {
            // A quoted value may hold spaces; splitting on them here would break it, so run as is.
            if word.contains(where: { "'\"\\".contains($0) }) { return command }
            prefix += word + " "
            words = words[word.endIndex...].drop(while: isBlank)
        }
        if words.hasPrefix("exec ") || words == "exec" { return trimmed }
        return prefix + "exec " + words
    }

    /// True when `command` has no shell control syntax outside quotes: no `;`, `&`, `|`,
    /// parentheses, backquotes or newlines, and does not start with a reserved word.
    static func isSimple(_ command: String) -> Bool {
        if command.isEmpty { return false }
        var inSingle = false, inDouble = false, escaped = false
        var previous: Unicode.Scalar = " "
        for c in command.unicodeScalars {
            defer { previous = c }
            if escaped { escaped = false; continue }
            if inSingle { if c == "'" { inSingle = false }; continue }
            if c == "\\" { escaped = true; continue }
            if inDouble { if c == "\"" { inDouble = false }; continue }
            switch c {
            case "'": inSingle = true
            case "\"": inDouble = true
            // `2>&1` and `<&3` are redirections, not a background `&`.
            case "&" where previous == ">" || previous == "<": break
            case ";", "&", "|", "(", ")", "`", "\n", "\r": return false
            default: break
            }
        }
        if inSingle || inDouble || escaped { return false }
        let first = command.split(whereSeparator: isBlank).first.map(String.init) ?? ""
        // Reserved words and builtins that only exist inside the shell (`exit 3`, `cd x`) cannot be exec'd.
        let shellOnly: Set<String> = ["if", "then", "else", "elif", "fi", "do", "done", "case", "esac",
                                      "while", "until", "for", "!", "in", "{", "}", "function",
                                      "exit", "return", "cd", "export", "set", "unset", ".", "source", "eval",
                                      "trap", "shift", "readonly", "break", "continue", ":", "wait", "alias",
                                      "ulimit", "umask", "times", "read", "local", "type", "command", "hash"]
        return !shellOnly.contains(first)
    }

    private static func isBlank(_ c: Character) -> Bool { c == " " || c == "\t" }

    private static func isAssignment(_ word: Substring) -> Bool {
        guard let eq = word.firstIndex(of: "="), eq != word.startIndex else { return false }
        let name = word[..<eq]
        guard let head = name.first, head == "_" || head.isLetter else { return false }
        return name.allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber }
    }
}
