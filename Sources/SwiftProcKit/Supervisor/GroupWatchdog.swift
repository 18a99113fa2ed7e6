import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Stops swiftproc's process groups when swiftproc dies — even by SIGKILL, when no code of ours
/// runs any more — with one small helper process for the whole supervisor.
///
/// The helper is a POSIX `sh` script (``script``) started once with Foundation.Process. Its stdin
/// is one end of a socket pair whose other end only swiftproc holds (close-on-exec, so no child
/// inherits it): when swiftproc is gone, however it died, the helper reads EOF. Meanwhile
/// swiftproc tells it, one line per event, which groups exist:
///
///     add PGID SIGNAL TICKS     a group was started (its leader's pid is its pgid)
///     del PGID                  the group has ended and was dealt with: never signal that pgid
///
/// On EOF the helper sends each recorded group its kill signal, then checks every 0.1 s: a group
/// whose leader has gone, or whose `TICKS` (kill_timeout × 10) have passed, gets SIGKILL. SIGKILL
/// or SIGSTOP as the kill signal means SIGKILL at once. When nothing is left it exits. It ignores
/// INT TERM HUP QUIT USR1 USR2 PIPE, so a Ctrl-C on the terminal or a stray signal never takes
/// the guarantee away; if it dies anyway (SIGKILL), swiftproc starts a new one and sends it every
/// live record again. On a normal shutdown swiftproc stops the groups itself, `del`s them, then
/// closes its end (``close(waitingUpTo:)``): the helper finds nothing to do and exits.
///
/// Writes never block swiftproc: the socket is non-blocking and a line that does not fit waits in
/// memory for the next write or a retry. A `del` is what keeps a recycled pgid safe: the kernel
/// reuses a number only after the whole group is gone and its leader reaped, and swiftproc `del`s
/// a group as soon as its leader has exited and the rest was SIGKILLed.
///
/// Thread-safe: every method takes `lock`, which the ``Spawner`` shares, so the helper is started
/// under the same lock as every child (concurrent `Process.run()` calls leak descriptors into
/// each other's children).
public final class GroupWatchdog: @unchecked Sendable {
    /// One recorded process group: its pgid and which `watch` call recorded it, so a late `forget`
    /// of an earlier group with the same (recycled) number does not remove a newer record.
    public struct Group: Sendable, Hashable {
        public let pgid: pid_t
        let serial: UInt64
    }

    struct Record: Equatable {
        var signal: Int32
        var timeout: Double
        var serial: UInt64
    }

    private let lock: NSRecursiveLock
    private var records: [pid_t: Record] = [:]
    private var nextSerial: UInt64 = 0
    private var helper: Process?
    private var helperStartedAt = 0.0
    /// swiftproc's end of the socket pair (-1 without a helper).
    private var channel: Int32 = -1
    /// Bytes not yet taken by the socket.
    private var pending: [UInt8] = []
    private var flushScheduled = false
    private var restartScheduled = false
    private var helpersStarted = 0

    public init(lock: NSRecursiveLock = NSRecursiveLock()) {
        self.lock = lock
    }

    deinit {
        if channel >= 0 { Sockets.close(channel) }
    }

    // MARK: - Protocol

    /// `add PGID SIGNAL TICKS\n`: SIGNAL is a name without `SIG` (a number for one without a name),
    /// TICKS is `timeout` in 0.1 s steps, at least one, at most a day's worth.
    static func addLine(pgid: pid_t, signal: Int32, timeout: Double) -> String {
        "add \(pgid) \(signalWord(signal)) \(ticks(timeout))\n"
    }

    /// `del PGID\n`.
    static func delLine(pgid: pid_t) -> String {
        "del \(pgid)\n"
    }

    static func signalWord(_ signal: Int32) -> String {
        let name = Platform.signalName(signal)
        return name.hasPrefix("SIG") ? String(name.dropFirst(3)) : String(signal)
    }

    static func ticks(_ timeout: Double) -> Int {
        // Bounded whatever the plan says (a day), so the conversion can never trap.
        let seconds = timeout.isNaN ? 0 : min(max(timeout, 0), 86_400)
        return max(1, Int((seconds * 10).rounded(.up)))
    }

    /// The helper, run as `sh -c 'eval "$SWIFTPROC_WATCHDOG"' swiftproc-watchdog` (so `ps` shows
    /// one short line). Only builtins until EOF: no process per line. Records live in variables
    /// `gPGID="SIGNAL TICKS"`; `L` lists the pgids (rebuilt when mostly stale). Malformed lines are
    /// skipped: only digits and capitals ever reach `eval`. The leader counts as gone once it is a
    /// zombie (`/proc` where there is one), as its zombie may linger unreaped for a moment.
    static let script = #"""
        trap '' INT TERM HUP QUIT USR1 USR2 PIPE
        L= n=0 d=0
        while read -r o p s t; do
          case $p in ''|0*|*[!0-9]*) continue;; esac
          if [ "$o" = add ]; then
            case $s in ''|*[!A-Z0-9]*) continue;; esac
            case $t in ''|*[!0-9]*) continue;; esac
            eval "x=\${g$p-}"
            if [ -z "$x" ]; then case " $L " in *" $p "*) d=$((d-1));; *) L="$L $p";; esac; n=$((n+1)); fi
            eval "g$p='$s $t'"
          elif [ "$o" = del ]; then
            eval "x=\${g$p-}"
            [ -n "$x" ] || continue
            unset "g$p"; n=$((n-1)); d=$((d+1))
            if [ $d -gt 64 ] && [ $d -gt $n ]; then
              M=; for q in $L; do eval "x=\${g$q-}"; [ -z "$x" ] || M="$M $q"; done; L=$M d=0
            fi
          fi
        done
        a() {
          kill -0 "$1" 2>/dev/null || return 1
          [ -r "/proc/$1/stat" ] || return 0
          read -r z < "/proc/$1/stat" || return 1
          case ${z##*") "} in Z*|X*) return 1;; esac
        }
        K=
        for p in $L; do
          eval "x=\${g$p-}"; [ -n "$x" ] || continue
          set -- $x
          case $1 in KILL|STOP) kill -s KILL -- "-$p" 2>/dev/null;; *) kill -s "$1" -- "-$p" 2>/dev/null && K="$K $p";; esac
        done
        i=0
        while [ -n "$K" ]; do
          R=
          for p in $K; do
            eval "set -- \$g$p"
            if [ $i -lt "$2" ] && a "$p"; then R="$R $p"; else kill -s KILL -- "-$p" 2>/dev/null; fi
          done
          K=$R
          [ -n "$K" ] || break
          sleep 0.1; i=$((i+1))
        done
        """#

    /// The helper's argv[0], to recognise it in `ps` (and in tests).
    public static let helperName = "swiftproc-watchdog"

    // MARK: - Use

    /// Makes sure a helper runs (starting one if needed). Call before starting a child, so no child
    /// ever runs without one.
    public func start() throws(SpawnError) {
        lock.lock()
        defer { lock.unlock() }
        if helper == nil { try launchHelper() }
    }

    /// Records process group `pgid`: if swiftproc dies, the group gets `signal`, then SIGKILL after
    /// `timeout` seconds. Starts a helper if none runs (failures are retried; see ``start()``).
    @discardableResult
    public func watch(pgid: pid_t, signal: Int32, timeout: Double) -> Group {
        lock.lock()
        defer { lock.unlock() }
        nextSerial += 1
        records[pgid] = Record(signal: signal, timeout: timeout, serial: nextSerial)
        if helper == nil {
            do { try launchHelper() } catch { scheduleRestart(after: 1) }  // it sends every record
        } else {
            write(Self.addLine(pgid: pgid, signal: signal, timeout: timeout))
        }
        return Group(pgid: pgid, serial: nextSerial)
    }

    /// The group has ended and was dealt with (its leader exited, the rest was SIGKILLed): its
    /// number may be reused, so the helper must never signal it. No-op if `group` is no longer
    /// the record for its pgid.
    public func forget(_ group: Group) {
        lock.lock()
        defer { lock.unlock() }
        guard records[group.pgid]?.serial == group.serial else { return }
        records[group.pgid] = nil
        if helper != nil { write(Self.delLine(pgid: group.pgid)) }
    }

    /// Ends the helper: closes swiftproc's end, so it signals whatever is still recorded (nothing,
    /// after a normal shutdown) and exits; waits up to `seconds` for it to be gone. A later
    /// ``watch(pgid:signal:timeout:)`` starts a new one.
    public func close(waitingUpTo seconds: Double = 1) {
        lock.lock()
        // A `del` still waiting for room must reach the helper before EOF does.
        flush()
        let ending = helper
        helper = nil
        records.removeAll()
        pending.removeAll()
        if channel >= 0 { Sockets.close(channel) }
        channel = -1
        lock.unlock()
        guard let ending, seconds > 0 else { return }
        let pid = ending.processIdentifier
        let deadline = Platform.monotonicSeconds() + seconds
        while Platform.monotonicSeconds() < deadline {
            // Exited (a zombie until Foundation reaps it), or already reaped.
            if Platform.peekExit(pid) != nil || kill(pid, 0) != 0 { return }
            usleep(2_000)
        }
    }

    /// The running helper's pid, if any.
    public var helperPID: pid_t? {
        lock.lock()
        defer { lock.unlock() }
        return helper?.processIdentifier
    }

    /// The pgids recorded now, sorted.
    public var watchedGroups: [pid_t] {
        lock.lock()
        defer { lock.unlock() }
        return records.keys.sorted()
    }

    /// Seconds since the running helper was started, if one runs.
    public var helperStartedSecondsAgo: Double? {
        lock.lock()
        defer { lock.unlock() }
        return helper == nil ? nil : Platform.monotonicSeconds() - helperStartedAt
    }

    /// How many helpers were started so far (1 + restarts).
    public var helperLaunches: Int {
        lock.lock()
        defer { lock.unlock() }
        return helpersStarted
    }

    // MARK: - The helper process (lock held)

    private func launchHelper() throws(SpawnError) {
        guard let (mine, theirs) = Platform.makeSocketPair() else { throw .outOfFileDescriptors }
        Platform.setNonBlocking(mine)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "eval \"$SWIFTPROC_WATCHDOG\"", Self.helperName]
        process.environment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C", "SWIFTPROC_WATCHDOG": Self.script]
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        process.standardInput = FileHandle(fileDescriptor: theirs, closeOnDealloc: false)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.terminationHandler = { [weak self] ended in
            ended.terminationHandler = nil
            self?.helperEnded(ended)
        }
        do {
            try Platform.runWithCleanSignalMask(process)
        } catch {
            Sockets.close(mine)
            Sockets.close(theirs)
            let code = Spawner.posixCode(of: error)
            if code == EMFILE || code == ENFILE { throw .outOfFileDescriptors }
            throw .launchFailed("the watchdog: " + Spawner.describe(code: code, error: error, arguments: []))
        }
        // Only the helper may hold its end, or EOF never comes when it should go.
        Sockets.close(theirs)
        process.arguments = nil
        process.environment = nil
        process.standardInput = nil
        process.standardOutput = nil
        process.standardError = nil
        if channel >= 0 { Sockets.close(channel) }
        channel = mine
        helper = process
        helperStartedAt = Platform.monotonicSeconds()
        helpersStarted += 1
        pending.removeAll()
        for (pgid, record) in records.sorted(by: { $0.value.serial < $1.value.serial }) {
            pending += Array(Self.addLine(pgid: pgid, signal: record.signal, timeout: record.timeout).utf8)
        }
        flush()
    }

    /// Foundation reaped a helper. If it is the current one, it died while swiftproc lives on
    /// (someone killed it): start another at once — or after a second, should helpers keep dying
    /// young — and send it every record.
    private func helperEnded(_ ended: Process) {
        lock.lock()
        defer { lock.unlock() }
        // Foundation keeps a launched Process until `waitUntilExit()` (see Supervisor.release).
        Task.detached { Supervisor.release(ended) }
        guard let current = helper, current === ended else { return }
        helper = nil
        if channel >= 0 { Sockets.close(channel) }
        channel = -1
        pending.removeAll()
        if Platform.monotonicSeconds() - helperStartedAt < 1 {
            scheduleRestart(after: 1)
        } else {
            do { try launchHelper() } catch { scheduleRestart(after: 1) }
        }
    }

    private func scheduleRestart(after seconds: Double) {
        guard !restartScheduled else { return }
        restartScheduled = true
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [weak self] in
            guard let self else { return }
            self.lock.lock()
            defer { self.lock.unlock() }
            self.restartScheduled = false
            // Nothing to guard (and `close` may have ended it all): start lazily with the next record.
            guard self.helper == nil, !self.records.isEmpty else { return }
            do { try self.launchHelper() } catch { self.scheduleRestart(after: 1) }
        }
    }

    private func write(_ line: String) {
        pending += Array(line.utf8)
        flush()
    }

    /// Sends what is pending without ever blocking; a full socket (the helper stopped?) is retried
    /// shortly. A closed one means the helper is gone: its restart sends every record anyway.
    private func flush() {
        while !pending.isEmpty && channel >= 0 {
            switch Platform.sendSome(channel, pending) {
            case .sent(let n):
                pending.removeFirst(n)
            case .wouldBlock:
                guard !flushScheduled else { return }
                flushScheduled = true
                DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { [weak self] in
                    guard let self else { return }
                    self.lock.lock()
                    defer { self.lock.unlock() }
                    self.flushScheduled = false
                    self.flush()
                }
                return
            case .closed:
                pending.removeAll()
                return
            }
        }
    }
}
