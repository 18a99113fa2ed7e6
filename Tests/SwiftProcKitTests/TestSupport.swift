import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Polls `condition` until it holds or `timeout` seconds pass. Never a bare sleep: the wait ends
/// as soon as the condition is met. The default deadline is generous because CPU-heavy tests
/// running in parallel can hold both cooperative threads (and so this poll) for seconds.
func eventually(timeout: Double = 20, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return try await condition()
}

/// A `SupervisorLog` for tests: drains each child's fd on its own thread and keeps everything.
final class CapturingLog: SupervisorLog, @unchecked Sendable {
    private let lock = NSLock()
    private var _system: [String] = []
    private var _output: [String: [UInt8]] = [:]

    func attach(fd: Int32, source: String, group: String, colorIndex: Int, isPTY: Bool,
                onClose: @escaping @Sendable () -> Void) {
        let t = Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buf, buf.count)
                if n > 0 {
                    lock.lock(); _output[source, default: []] += buf[0..<n]; lock.unlock()
                } else if n < 0 && errno == EINTR {
                    continue
                } else { break }
            }
            close(fd)
            onClose()
        }
        t.start()
    }

    func system(_ message: String) { lock.lock(); _system.append(message); lock.unlock() }
    func register(name: String) {}

    var systemLines: [String] { lock.lock(); defer { lock.unlock() }; return _system }
    func output(_ source: String) -> String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: _output[source] ?? [], as: UTF8.self)
    }
}

/// Pids of live (not zombie) processes whose process group is `pgid`.
func liveMembers(ofGroup pgid: pid_t) -> [pid_t] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    var out: [pid_t] = []
    for e in entries {
        guard let pid = pid_t(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let f = stat[stat.index(after: close)...].split(separator: " ")
        if f.count > 2, f[0] != "Z", pid_t(f[2]) == pgid { out.append(pid) }
    }
    return out
}

func isAlive(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
}

func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("swiftproc-test-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func testPlan(_ groups: [SupervisorPlan.Group], killTimeout: Double = 2, stopWhenAnyExits: Bool = false) -> SupervisorPlan {
    SupervisorPlan(appName: "testapp", directory: temporaryDirectory(), groups: groups,
                   environment: ProcessInfo.processInfo.environment, killSignal: SIGINT, killTimeout: killTimeout,
                   stopWhenAnyExits: stopWhenAnyExits,
                   backoff: .init(initial: 0.05, maximum: 0.2, resetAfter: 10))
}
