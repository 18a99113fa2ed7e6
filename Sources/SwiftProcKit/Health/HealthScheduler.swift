import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one thread that runs every ``HealthMonitor``'s probes.
///
/// Each probe is a small state machine on a nonblocking socket (connect → send the request →
/// read the status line), all driven by a single `poll` whose timeout is the nearest due probe
/// or probe deadline. So any number of monitors cost one thread, a blocked or slow instance never
/// delays another's check, and with nothing due the thread sleeps in `poll`. The thread starts
/// with the first registered check and ends when the last one is unregistered.
final class HealthScheduler: @unchecked Sendable {
    static let shared = HealthScheduler()

    private enum Phase {
        case connecting, sending, reading
    }

    private struct Probe {
        var fd: Int32
        var phase: Phase
        var sent = 0
        var response: [UInt8] = []
        var started: Double
        var deadline: Double
    }

    private final class Entry {
        let id: UInt64
        weak var monitor: HealthMonitor?
        let index: Int
        let spec: HealthCheckSpec
        let request: [UInt8]
        let graceEnd: Double
        var due: Double
        var probe: Probe?

        init(id: UInt64, monitor: HealthMonitor, index: Int, spec: HealthCheckSpec, now: Double) {
            self.id = id
            self.monitor = monitor
            self.index = index
            self.spec = spec
            self.request = spec.probesByConnectOnly ? [] : spec.request
            self.graceEnd = now + max(0, spec.gracePeriod)
            self.due = now
        }
    }

    private struct Outcome {
        let monitor: HealthMonitor
        let index: Int
        let passed: Bool
        let detail: String
        let inGrace: Bool
    }

    private let lock = NSLock()
    private var entries: [UInt64: Entry] = [:]
    private var nextID: UInt64 = 1
    /// Descriptors of probes whose check was unregistered, closed by the loop (never under a `poll`).
    private var retired: [Int32] = []
    private var running = false
    private var wake: (read: Int32, write: Int32) = (-1, -1)

    init() {}

    deinit {
        if wake.read >= 0 { TCPSocket.close(wake.read) }
        if wake.write >= 0 { TCPSocket.close(wake.write) }
    }

    /// Schedules `checks` of `monitor`, the first probes at once. Returns their ids.
    func register(_ monitor: HealthMonitor, checks: [HealthCheckSpec]) -> [UInt64] {
        guard !checks.isEmpty else { return [] }
        lock.lock()
        defer { lock.unlock() }
        if wake.read < 0, let pipe = try? Sockets.makePipe() {
            TCPSocket.setNonBlocking(pipe.read, true)
            TCPSocket.setNonBlocking(pipe.write, true)
            wake = pipe
        }
        let now = ProxyClock.now
        var ids: [UInt64] = []
        for (index, spec) in checks.enumerated() {
            let entry = Entry(id: nextID, monitor: monitor, index: index, spec: spec, now: now)
            nextID += 1
            entries[entry.id] = entry
            ids.append(entry.id)
        }
        if running {
            poke()
        } else {
            running = true
            let thread = Thread { [self] in run() }
            thread.stackSize = 256 * 1024
            thread.name = "swiftproc health checks"
            thread.start()
        }
        return ids
    }

    func unregister(_ ids: [UInt64]) {
        guard !ids.isEmpty else { return }
        lock.lock()
        defer { lock.unlock() }
        for id in ids {
            guard let entry = entries.removeValue(forKey: id) else { continue }
            if let probe = entry.probe { retired.append(probe.fd) }
        }
        poke()
    }

    /// Checks scheduled (for tests).
    var scheduledCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.count
    }

    /// Whether the scheduler thread is running (for tests).
    var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// Call with the lock held.
    private func poke() {
        guard wake.write >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    // MARK: - The loop

    private func run() {
        var fds: [pollfd] = []
        var polled: [Entry] = []
        var outcomes: [Outcome] = []
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            lock.lock()
            for fd in retired { TCPSocket.close(fd) }
            retired.removeAll()
            if entries.isEmpty {
                running = false
                lock.unlock()
                return
            }
            let now = ProxyClock.now
            var wakeAt = Double.infinity
            fds.removeAll(keepingCapacity: true)
            polled.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0))
            for entry in entries.values {
                if entry.monitor == nil {
                    entries[entry.id] = nil
                    if let probe = entry.probe { TCPSocket.close(probe.fd) }
                    continue
                }
                if entry.probe == nil, now >= entry.due {
                    if let outcome = startProbe(entry, now: now) { outcomes.append(outcome) }
                }
                if let probe = entry.probe, now >= probe.deadline {
                    let detail = "timed out after \(formatCheckDuration(entry.spec.timeout))"
                    if let outcome = finish(entry, passed: false, detail: detail, now: now) { outcomes.append(outcome) }
                }
                if let probe = entry.probe {
                    let events = probe.phase == .reading ? POLLIN : POLLOUT
                    fds.append(pollfd(fd: probe.fd, events: Int16(events), revents: 0))
                    polled.append(entry)
                    wakeAt = min(wakeAt, probe.deadline)
                } else {
                    wakeAt = min(wakeAt, entry.due)
                }
            }
            lock.unlock()

            deliver(&outcomes)

            let timeout: Int32
            if wakeAt == .infinity {
                timeout = -1
            } else {
                // Round up, so a probe is not started (or timed out) a millisecond early.
                timeout = Int32(min(max(0, (wakeAt - ProxyClock.now) * 1000).rounded(.up), 3_600_000))
            }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            guard ready > 0 else { continue }

            lock.lock()
            if fds[0].revents != 0 {
                while read(wake.read, &scratch, scratch.count) > 0 {}
            }
            let now2 = ProxyClock.now
            for (offset, entry) in polled.enumerated() {
                let revents = fds[offset + 1].revents
                guard revents != 0, entries[entry.id] === entry, let probe = entry.probe,
                      probe.fd == fds[offset + 1].fd else { continue }
                if let outcome = advance(entry, now: now2) { outcomes.append(outcome) }
            }
            lock.unlock()

            deliver(&outcomes)
        }
    }

    private func deliver(_ outcomes: inout [Outcome]) {
        for outcome in outcomes {
            outcome.monitor.record(check: outcome.index, passed: outcome.passed, detail: outcome.detail,
                                   inGrace: outcome.inGrace)
        }
        outcomes.removeAll(keepingCapacity: true)
    }

    /// Starts a probe; an outcome when it ended at once (refused).
    private func startProbe(_ entry: Entry, now: Double) -> Outcome? {
        do {
            let (fd, status) = try TCPSocket.startConnect(port: entry.spec.port)
            entry.probe = Probe(fd: fd, phase: .connecting, started: now,
                                deadline: now + max(0.001, entry.spec.timeout))
            if status == 0 { return advance(entry, now: now) }
            return nil
        } catch {
            entry.probe = Probe(fd: -1, phase: .connecting, started: now, deadline: now)
            return finish(entry, passed: false, detail: TCPSocket.describe(error.code), now: now)
        }
    }

    /// Moves a probe on after `poll` said its socket is ready.
    private func advance(_ entry: Entry, now: Double) -> Outcome? {
        guard var probe = entry.probe else { return nil }
        defer { if entry.probe != nil { entry.probe = probe } }
        if probe.phase == .connecting {
            let code = TCPSocket.pendingError(probe.fd)
            if code != 0 { return finish(entry, passed: false, detail: TCPSocket.describe(code), now: now) }
            if entry.spec.probesByConnectOnly {
                let detail = entry.spec.kind == .http ? "connected (an https check is a TCP connect locally)" : "connected"
                return finish(entry, passed: true, detail: detail, now: now)
            }
            probe.phase = .sending
        }
        if probe.phase == .sending {
            while probe.sent < entry.request.count {
                let sent = entry.request.withUnsafeBytes { raw in
                    send(probe.fd, raw.baseAddress! + probe.sent, raw.count - probe.sent, Sockets.sendFlags)
                }
                if sent > 0 {
                    probe.sent += sent
                } else if sent < 0 && errno == EINTR {
                    continue
                } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return nil
                } else {
                    let detail = sent < 0 ? TCPSocket.describe(errno) : "connection closed"
                    return finish(entry, passed: false, detail: detail, now: now)
                }
            }
            probe.phase = .reading
            return nil // wait for POLLIN
        }
        // Reading the status line.
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(probe.fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                probe.response += buffer[0..<count]
                if let line = Self.statusLine(probe.response) {
                    guard let code = Self.statusCode(line) else {
                        return finish(entry, passed: false, detail: "not an HTTP response", now: now)
                    }
                    return finish(entry, passed: (200..<300).contains(code), detail: "HTTP \(code)", now: now)
                }
                if probe.response.count > 8192 {
                    return finish(entry, passed: false, detail: "not an HTTP response", now: now)
                }
            } else if count == 0 {
                return finish(entry, passed: false, detail: "connection closed before a response", now: now)
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                return nil
            } else {
                return finish(entry, passed: false, detail: TCPSocket.describe(errno), now: now)
            }
        }
    }

    /// Ends the probe and schedules the next one: `interval` after this one started or, after a
    /// failure within the grace period, no later than the grace period's end.
    private func finish(_ entry: Entry, passed: Bool, detail: String, now: Double) -> Outcome? {
        guard let probe = entry.probe else { return nil }
        if probe.fd >= 0 { TCPSocket.close(probe.fd) }
        entry.probe = nil
        let inGrace = now < entry.graceEnd
        var due = max(now, probe.started + max(0.01, entry.spec.interval))
        if !passed, inGrace { due = min(due, entry.graceEnd) }
        entry.due = due
        guard let monitor = entry.monitor else { return nil }
        return Outcome(monitor: monitor, index: entry.index, passed: passed, detail: detail, inGrace: inGrace)
    }

    /// The first line of a response, once it has arrived.
    static func statusLine(_ bytes: [UInt8]) -> String? {
        guard let end = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var line = bytes[..<end]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        return String(decoding: line, as: UTF8.self)
    }

    /// `HTTP/1.1 200 OK` → 200.
    static func statusCode(_ line: String) -> Int? {
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), parts[1].count == 3,
              let code = Int(parts[1]) else { return nil }
        return code
    }
}
