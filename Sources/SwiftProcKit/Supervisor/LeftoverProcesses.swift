import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The record of live process groups in `.swiftproc/children`, so that a `start` after a crashed
/// (e.g. SIGKILLed) supervisor can stop what its watchdog did not (see ``GroupWatchdog``).
///
/// The first line names the owner, `owner PID STARTTIME TOKEN`; each further line is
/// `PGID STARTTIME`. Every child of a supervisor carries `SWIFTPROC_OWNER=TOKEN` (a random
/// token per supervisor run) in its environment. A recorded group is killed only if its leader
/// still has that exact start time **and** its environment (`/proc/PID/environ`, readable only
/// for our own processes) holds the owner's token — so neither a recycled pid nor a tampered
/// record naming someone else's process group ever kills anything that is not ours. Where /proc
/// does not exist (macOS) nothing is killed; the watchdog is the only line there.
/// The file is read and written only inside a checked `.swiftproc` (see ``StateDirectory``),
/// never through a symlink.
enum LeftoverProcesses {
    /// The environment variable that marks a process as started by one supervisor run.
    static let markerVariable = "SWIFTPROC_OWNER"

    /// A fresh token for one supervisor run.
    static func makeToken() -> String {
        (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max)) }.joined()
    }

    /// Records `pids` as this supervisor's live groups.
    static func record(_ pids: [pid_t], token: String, in file: URL) {
        let me = getpid()
        var text = "owner \(me) \(Platform.startTime(of: me) ?? 0) \(token)\n"
        for pid in pids {
            guard let start = Platform.startTime(of: pid) else { continue }
            text += "\(pid) \(start)\n"
        }
        let directory = file.deletingLastPathComponent().path
        guard (try? StateDirectory.prepare(path: directory)) != nil else { return }
        // Written beside and renamed over: a reader never sees half a record, and a symlink
        // planted at `children` is replaced, never followed.
        let temporary = StateDirectory(trustedPath: directory)
        let name = ".children.\(me)"
        guard let fd = try? temporary.open(name, flags: O_WRONLY | O_CREAT | O_TRUNC) else { return }
        let ok = Platform.writeAll(fd, Array(text.utf8))
        close(fd)
        if !ok || rename(temporary.file(name), file.path) != 0 { unlink(temporary.file(name)) }
    }

    /// Kills every recorded group that provably belongs to the recording run; returns how many.
    /// Nothing is killed while the recording supervisor itself is alive.
    static func killAll(recordedIn file: URL) -> Int {
        guard let text = read(file) else { return 0 }
        var killed = 0
        var token: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.first == "owner" {
                guard parts.count == 4 else { break }
                if let pid = pid_t(parts[1]), let start = UInt64(parts[2]), pid != getpid(),
                   Platform.startTime(of: pid) == start {
                    return 0  // its supervisor is alive: these are not leftovers
                }
                token = String(parts[3])
                continue
            }
            guard let token, parts.count == 2, let pid = pid_t(parts[0]), let start = UInt64(parts[1]), pid > 1,
                  pid != getpid(), Platform.startTime(of: pid) == start,
                  Platform.environment(of: pid, contains: "\(markerVariable)=\(token)") == true else { continue }
            if Platform.signalGroup(pid, SIGKILL) { killed += 1 }
        }
        forget(file)
        return killed
    }

    /// The record's text, if `file` is a regular file in a trusted `.swiftproc` (at most 1 MiB).
    private static func read(_ file: URL) -> String? {
        guard (try? StateDirectory.check(path: file.deletingLastPathComponent().path)) != nil,
              let fd = try? StateDirectory.openNoFollow(file.path, flags: O_RDONLY) else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < 1 << 20 {
            let n = Glibc_read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Removes the record (after a clean shutdown). `unlink` never follows a symlink.
    static func forget(_ file: URL) {
        guard (try? StateDirectory.check(path: file.deletingLastPathComponent().path)) != nil else { return }
        unlink(file.path)
    }
}

@inline(__always) private func Glibc_read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
