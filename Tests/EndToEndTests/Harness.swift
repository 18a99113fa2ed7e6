import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A product `swift test` built next to the test bundle (`.build/<config>/NAME`).
func builtBinary(_ name: String) -> String {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return ".build/debug/" + name
}

let swiftprocBinary = builtBinary("swiftproc")

/// Polls `condition` until it holds or `timeout` passes; the wait ends as soon as it holds.
func eventually(timeout: Double = 10, every interval: Double = 0.01, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
    }
    return try await condition()
}

/// A fresh app directory with the given files (name → contents).
func makeApp(_ files: [String: String]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftproc-e2e-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, text) in files {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }
    return dir
}

/// Accumulates what a child writes to one fd, on its own thread.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private var closed = false

    init(fd: Int32) {
        Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buf, buf.count)
                if n > 0 { lock.lock(); bytes += buf[0..<n]; lock.unlock(); continue }
                if n < 0 && errno == EINTR { continue }
                break
            }
            close(fd)
            lock.lock(); closed = true; lock.unlock()
        }.start()
    }

    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: bytes, as: UTF8.self) }
    var data: [UInt8] { lock.lock(); defer { lock.unlock() }; return bytes }
    var isClosed: Bool { lock.lock(); defer { lock.unlock() }; return closed }
}

/// Starts `process` (otherwise configured) with stdin /dev/null and stdout and stderr captured.
func runCapturingOutput(_ process: Process) throws -> (stdout: OutputCollector, stderr: OutputCollector) {
    process.standardInput = FileHandle.nullDevice
    var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
    guard pipe(&out) == 0, pipe(&err) == 0 else { throw POSIXError(.EMFILE) }
    process.standardOutput = FileHandle(fileDescriptor: out[1], closeOnDealloc: false)
    process.standardError = FileHandle(fileDescriptor: err[1], closeOnDealloc: false)
    try Platform.runWithCleanSignalMask(process)
    close(out[1])
    close(err[1])
    return (OutputCollector(fd: out[0]), OutputCollector(fd: err[0]))
}

/// A running `swiftproc` process with its stdout and stderr captured.
final class SwiftProc: @unchecked Sendable {
    let process = Process()
    let stdout: OutputCollector
    let stderr: OutputCollector
    let directory: URL

    init(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws {
        self.directory = directory
        process.executableURL = URL(fileURLWithPath: swiftprocBinary)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SWIFTPROC_SOCKET")
        env.removeValue(forKey: "PORT")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        (stdout, stderr) = try runCapturingOutput(process)
    }

    var pid: pid_t { process.processIdentifier }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// Waits for exit; nil if it did not exit in time (then it is killed).
    func waitForExit(timeout: Double = 20) async -> Int32? {
        let ok = await eventually(timeout: timeout) { !process.isRunning }
        if !ok { kill(pid, SIGKILL); return nil }
        _ = await eventually(timeout: 5) { stdout.isClosed && stderr.isClosed }
        return process.terminationStatus
    }

    func waitFor(_ text: String, timeout: Double = 10) async -> Bool {
        await eventually(timeout: timeout) { stdout.text.contains(text) }
    }

    deinit { if process.isRunning { kill(pid, SIGKILL) } }
}

/// Runs `swiftproc ARGS` to completion (a client command): status, stdout, stderr.
func runSwiftProc(_ arguments: [String], in directory: URL, timeout: Double = 30) async throws -> (status: Int32?, out: String, err: String) {
    let p = try SwiftProc(arguments, in: directory)
    let status = await p.waitForExit(timeout: timeout)
    return (status, p.stdout.text, p.stderr.text)
}

/// Live (non-zombie) processes, by pid → (ppid, pgid).
func processTable() -> [pid_t: (ppid: pid_t, pgid: pid_t)] {
    var table: [pid_t: (pid_t, pid_t)] = [:]
    for e in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = pid_t(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let f = stat[stat.index(after: close)...].split(separator: " ")
        guard f.count > 3, f[0] != "Z", let ppid = pid_t(f[1]), let pgid = pid_t(f[2]) else { continue }
        table[pid] = (ppid, pgid)
    }
    return table
}

/// Every live descendant of `root`.
func descendants(of root: pid_t) -> [pid_t] {
    let table = processTable()
    var out: [pid_t] = []
    var frontier = [root]
    while let p = frontier.popLast() {
        for (pid, info) in table where info.ppid == p { out.append(pid); frontier.append(pid) }
    }
    return out
}

/// Live members of any of the given process groups.
func liveMembers(ofGroups groups: Set<pid_t>) -> [pid_t] {
    processTable().filter { groups.contains($0.value.pgid) }.map(\.key)
}

/// Values of `key=value` words in lines of `text` that contain `marker`.
func values(_ key: String, in text: String, lines marker: String) -> [String] {
    text.split(separator: "\n").filter { $0.contains(marker) }.compactMap { line in
        line.split(separator: " ").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }
}

/// Every live process a supervisor started: its descendants and every member of its children's
/// process groups (a member whose parent died is re-parented away, yet stays in the group).
func everything(startedBy supervisor: pid_t) -> Set<pid_t> {
    let table = processTable()
    let children = Set(table.filter { $0.value.ppid == supervisor }.map(\.key))
    return Set(descendants(of: supervisor)).union(table.filter { children.contains($0.value.pgid) }.map(\.key))
}

/// `swiftproc status --json` of the app in `directory`.
func statusSnapshot(_ directory: URL) async throws -> StatusSnapshot {
    let r = try await runSwiftProc(["status", "--json"], in: directory)
    return try JSONDecoder().decode(StatusSnapshot.self, from: Data(r.out.utf8))
}

/// Instance name → pid of the app's live instances.
func instancePIDs(_ directory: URL) async throws -> [String: Int32] {
    Dictionary(uniqueKeysWithValues: try await statusSnapshot(directory).instances.compactMap { i in i.pid.map { (i.name, $0) } })
}
