import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The record of live process groups in `.swiftproc/children`, so that a `start` after a crashed
/// (e.g. SIGKILLed) supervisor can stop what the watchdogs did not.
///
/// Each line is `PGID STARTTIME`; a group is killed only if its leader still has that exact start
/// time, so a recycled pid is never hit. Where start times are unknown (no /proc) nothing is killed.
enum LeftoverProcesses {
    /// Records `pids` as this supervisor's live groups. The first line names the owner
    /// (`owner PID STARTTIME`), so another supervisor using the same directory (with another
    /// `--socket`) never mistakes a live supervisor's children for leftovers.
    static func record(_ pids: [pid_t], in file: URL) {
        let me = getpid()
        var text = Platform.startTime(of: me).map { "owner \(me) \($0)\n" } ?? ""
        for pid in pids {
            guard let start = Platform.startTime(of: pid) else { continue }
            text += "\(pid) \(start)\n"
        }
        try? FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? text.write(to: file, atomically: true, encoding: .utf8)
    }

    /// Kills every recorded group whose leader is still the same process; returns how many.
    /// Nothing is killed while the recording supervisor itself is alive.
    static func killAll(recordedIn file: URL) -> Int {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return 0 }
        var killed = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 3, parts[0] == "owner" {
                if let pid = pid_t(parts[1]), let start = UInt64(parts[2]), pid != getpid(),
                   Platform.startTime(of: pid) == start {
                    return 0  // its supervisor is alive: these are not leftovers
                }
                continue
            }
            guard parts.count == 2, let pid = pid_t(parts[0]), let start = UInt64(parts[1]), pid > 1,
                  Platform.startTime(of: pid) == start else { continue }
            if Platform.signalGroup(pid, SIGKILL) { killed += 1 }
        }
        forget(file)
        return killed
    }

    /// Removes the record (after a clean shutdown).
    static func forget(_ file: URL) {
        try? FileManager.default.removeItem(at: file)
    }
}
