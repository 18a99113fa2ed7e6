import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Platform {
    /// Makes this process a child subreaper (Linux `prctl(PR_SET_CHILD_SUBREAPER)`): a descendant
    /// whose parent dies — a program that daemonized itself with `setsid` and a double fork — is
    /// re-parented to us instead of to init, so it can be found and stopped with the app.
    /// False where unsupported (macOS has no equivalent: such escapes are not caught there).
    @discardableResult
    public static func becomeChildSubreaper() -> Bool {
        #if os(Linux)
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") else { return false }
        let prctl = unsafeBitCast(symbol, to: Prctl.self)
        return prctl(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0) == 0
        #else
        return false
        #endif
    }

    /// A child of this process that Foundation did not start: an adopted orphan.
    public struct AdoptedProcess: Sendable, Equatable {
        public let pid: pid_t
        public let isZombie: Bool
        public let command: String
    }

    /// Children of this process that are not Foundation's: every process Foundation starts is
    /// the leader of its own group in our session, so a child that is not a group leader, or is
    /// in another session, was adopted (we are its subreaper). Never includes a process some
    /// `Process` will `waitpid` for. Empty where /proc does not exist.
    public static func adoptedChildren() -> [AdoptedProcess] {
        let me = getpid()
        let mySession = getsid(0)
        var out: [AdoptedProcess] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), pid != me,
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, let ppid = pid_t(fields[1]), ppid == me,
                  let pgid = pid_t(fields[2]), let session = pid_t(fields[3]) else { continue }
            guard pgid != pid || session != mySession else { continue }
            out.append(AdoptedProcess(pid: pid, isZombie: fields[0] == "Z",
                                      command: String(stat[stat.index(after: open)..<close])))
        }
        return out
    }

    /// Reaps `pid` if it has exited (`waitpid(pid, WNOHANG)`); only for ``adoptedChildren()``.
    @discardableResult
    public static func reap(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid
    }
}
