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
    /// Its record with the watchdog: hand it to ``Spawner/groupEnded(_:)`` once the child has
    /// exited and its group was dealt with.
    public let watched: GroupWatchdog.Group
}

/// Starts children with Foundation.Process, one at a time.
///
/// Encodes what ../shared/docs/foundation-process.md measured:
/// - spawns are serialised behind one lock, because concurrent `run()` calls leak one child's
///   termination socket into another;
/// - the signal mask is cleared around `run()` so children honour SIGTERM/SIGINT;
/// - the command runs as `/bin/sh -c` with `exec` where it is a simple command, so the process
///   Foundation tracks is the real program and the leader of its own process group (Foundation
///   spawns with `POSIX_SPAWN_SETPGROUP`), with no companion process;
/// - every child's group is recorded with one ``GroupWatchdog`` (a single helper process for all
///   of them), which signals the groups if swiftproc dies, even by SIGKILL. No child is started
///   unless a helper runs.
public final class Spawner: @unchecked Sendable {
    /// Serialises spawns, the helper's included (the watchdog takes it too, hence recursive).
    private let lock = NSRecursiveLock()
    public let watchdog: GroupWatchdog

    public init() throws(SpawnError) {
        watchdog = GroupWatchdog(lock: lock)
    }

    deinit {
        watchdog.close(waitingUpTo: 0)
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
        // Nothing runs unguarded: no helper, no child.
        try watchdog.start()

        // The child's output: a pty (line-buffered programs) or a pipe.
        let readFD: Int32
        let writeFD: Int32
        var isPTY = false
        if request.usePTY, let pty = Platform.openRawPTY() {
            (readFD, writeFD) = (pty.master, pty.slave)
            isPTY = true
        } else {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { throw .outOfFileDescriptors }
            (readFD, writeFD) = (fds[0], fds[1])
            Platform.setCloseOnExec(readFD)
            Platform.setCloseOnExec(writeFD)
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", Self.script(for: request)]
        process.environment = request.environment
        process.currentDirectoryURL = request.directory
        let output = FileHandle(fileDescriptor: writeFD, closeOnDealloc: false)
        // stdin: the pty (the slave is open for reading and writing; see
        // ``SpawnRequest/inputFromTerminal``) or /dev/null.
        process.standardInput = isPTY && request.inputFromTerminal ? output : FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        // The record is made below, still under the lock: a handler that runs sooner waits for it.
        let (watchdog, lock) = (self.watchdog, self.lock)
        let record = Locked<GroupWatchdog.Group?>(nil)
        process.terminationHandler = { p in
            let exit: Platform.Exit = p.terminationReason == .uncaughtSignal
                ? .signaled(p.terminationStatus) : .exited(p.terminationStatus)
            p.terminationHandler = nil
            // Reaped: the group is over (its owner normally said so already).
            lock.lock()
            let group = record.get()
            lock.unlock()
            if let group { watchdog.forget(group) }
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
        let pid = process.processIdentifier
        let group = watchdog.watch(pgid: pid, signal: request.killSignal, timeout: request.killTimeout)
        record.set(group)
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
        return SpawnedChild(process: process, pid: pid, outputFD: readFD, watched: group)
    }

    /// The child of `group` has exited and its group was dealt with (SIGKILLed): the watchdog
    /// forgets it, so a recycled pgid is never signalled.
    public func groupEnded(_ group: GroupWatchdog.Group) {
        watchdog.forget(group)
    }

    /// Ends the watchdog's helper after a normal shutdown, once every group was stopped.
    public func stopWatchdog() {
        watchdog.close(waitingUpTo: 1)
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

    /// The `sh -c` script: the command, `exec`-prefixed where it is a simple command (see
    /// ``ShellCommand/execPrefixed(_:)``), so the shell becomes the program.
    ///
    /// When the shell stays the group's leader (a list or pipeline), it must outlive its
    /// children's graceful stop: dash waits for its foreground child on SIGINT but dies at once
    /// on SIGTERM and the rest, and its exit makes swiftproc SIGKILL the group. A trap makes it
    /// wait for the running command first (children still get the default action).
    static func script(for request: SpawnRequest) -> String {
        let command = ShellCommand.execPrefixed(request.command)
        let graceful = request.killSignal != SIGSTOP && request.killSignal != SIGKILL
        guard command == request.command, graceful, request.killSignal != SIGINT else { return command }
        let signal = GroupWatchdog.signalWord(request.killSignal)
        return "trap 'exit \(128 + request.killSignal)' \(signal); " + command
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
