import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `ControlService` with canned answers that records what it was asked.
final class FakeControlService: ControlService, @unchecked Sendable {
    static let pid: Int32 = 4242
    private let lock = NSLock()
    private var _requests: [ControlRequest] = []
    private var _subscribers: [any LogSubscriber] = []
    private var _unsubscribed = 0
    var backlog: [LogRecord] = []

    var requests: [ControlRequest] { lock.withLock { _requests } }
    var subscribers: [any LogSubscriber] { lock.withLock { _subscribers } }
    var unsubscribedCount: Int { lock.withLock { _unsubscribed } }

    static let snapshot = StatusSnapshot(
        app: "demo", pid: pid,
        groups: [GroupStatus(name: "app", command: "./server", desired: 1, failed: false),
                 GroupStatus(name: "worker", command: "./worker", desired: 1, failed: false)],
        instances: [InstanceStatus(group: "app", index: 1, name: "app.1", machineID: "3d8d9e1c5e6f28", pid: 100,
                                   state: "running", detail: nil, restarts: 0, port: 8080, checksTotal: 1,
                                   checksPassing: 1, lastUpdated: 1_700_000_000)])

    func reply(to request: ControlRequest) async -> ControlReply {
        lock.withLock { _requests.append(request) }
        switch request.command {
        case .ping: return ControlReply(message: "pong")
        case .status: return ControlReply(status: Self.snapshot)
        case .scale:
            if request.arguments.contains(where: { $0.hasPrefix("wrker") }) {
                return .failure("unknown process group \"wrker\"; known: app, worker")
            }
            return ControlReply(message: "app: 1 → 1\nworker: 1 → 3")
        case .restart: return ControlReply(message: "restarting \(request.arguments.joined(separator: ", "))")
        case .stop: return ControlReply(message: "stopping")
        case .logs: return .failure("logs went to reply(to:)")
        case .deploy: return ControlReply(message: "app: unchanged")
        case .attach: return .failure("attach is served on its own connection")
        }
    }

    func logs(names: [String], lines: Int, subscriber: (any LogSubscriber)?) async throws(ControlServiceError) -> [LogRecord] {
        if let bad = names.first(where: { $0 != "app" && $0 != "worker" && $0 != "app.1" }) {
            throw ControlServiceError("unknown process \"\(bad)\"; known: app, worker")
        }
        return lock.withLock {
            if let subscriber { _subscribers.append(subscriber) }
            return Array(backlog.suffix(lines))
        }
    }

    func unsubscribe(_ subscriber: any LogSubscriber) async {
        lock.withLock {
            _subscribers.removeAll { $0 === subscriber }
            _unsubscribed += 1
        }
    }

    /// What the log path does: hands a record to every subscriber, synchronously.
    func push(_ record: LogRecord) {
        for subscriber in subscribers { subscriber.receive(record) }
    }
}

func record(_ text: String, source: String = "app.1", time: Double = 1_700_000_000) -> LogRecord {
    LogRecord(time: time, source: source, group: "app", colorIndex: 0, text: Array(text.utf8))
}

/// A fresh, short directory (socket paths are limited to ~104 bytes).
func makeTemporaryDirectory() -> String {
    var template = Array("/tmp/spc-XXXXXX".utf8CString)
    let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(result != nil, "mkdtemp failed")
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func removeDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// Runs blocking work (socket calls, waits) on a thread of its own.
///
/// Test functions run on Swift's cooperative pool, which is as wide as the machine has cores
/// (2 here) and which the server needs to run the (async) service. A test that blocked a pool
/// thread in a socket call would starve the very service it waits for; so every blocking call
/// in these tests goes through here, and the tests `await` it.
func blocking<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result: Result<T, E> = await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: Result { () throws(E) -> T in try body() }) }.start()
    }
    return try result.get()
}

/// Waits for `semaphore` without blocking a pool thread; false on timeout.
func wait(for semaphore: DispatchSemaphore, timeout: Double = 20) async -> Bool {
    await blocking { semaphore.wait(timeout: .now() + timeout) == .success }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func waitUntil(timeout: Double = 20, _ condition: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 2_000_000)
    }
    return condition()
}

/// A started server on a fresh directory, for one test.
final class ServerFixture: @unchecked Sendable {
    let directory: String
    let path: String
    let service = FakeControlService()
    let server: ControlServer

    private init(options: ControlServer.Options) {
        directory = makeTemporaryDirectory()
        path = ControlSocket.path(appDirectory: directory, environment: [:])
        server = ControlServer(path: path, service: service, options: options)
    }

    static func start(_ options: ControlServer.Options = ControlServer.Options()) async throws -> ServerFixture {
        let fixture = ServerFixture(options: options)
        try await blocking { () throws(ControlServerError) in try fixture.server.start() }
        return fixture
    }

    var client: ControlClient { ControlClient(path: path, timeout: 20) }

    /// The supervisor still answers promptly-enough (within the client's timeout).
    func pingWorks() async -> Bool {
        let client = self.client
        return await blocking { (try? client.send(ControlRequest(command: .ping)))?.message == "pong" }
    }

    func send(_ request: ControlRequest) async throws(ControlClientError) -> ControlReply {
        let client = self.client
        return try await blocking { () throws(ControlClientError) in try client.send(request) }
    }

    deinit {
        server.stop()
        removeDirectory(directory)
    }
}

/// A hand-driven client connection, for sending what a well-behaved client would not.
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    private var reader: LineReader

    static func open(_ path: String) async throws -> RawConnection {
        try await blocking { () throws(SocketError) in try RawConnection(path: path) }
    }

    init(path: String) throws(SocketError) {
        fd = try Sockets.makeStreamSocket()
        let result = Sockets.connect(fd, path: path)
        guard result == 0 else {
            Sockets.close(fd)
            throw SocketError("connect", result)
        }
        reader = LineReader(fd: fd)
    }

    @discardableResult
    func write(_ bytes: [UInt8]) -> Int32 { Sockets.sendAll(fd, bytes) }
    @discardableResult
    func write(_ text: String) -> Int32 { write(Array(text.utf8)) }

    /// Blocking: call through ``blocking(_:)``.
    func readLineNow(timeout: Double = 20) -> LineReader.Outcome {
        reader.next(limit: 64 * 1024 * 1024, deadline: deadline(after: timeout))
    }

    func readLine(timeout: Double = 20) async -> LineReader.Outcome {
        await blocking { self.readLineNow(timeout: timeout) }
    }

    func readReply(timeout: Double = 20) async -> ControlReply? {
        guard case .line(let bytes) = await readLine(timeout: timeout) else { return nil }
        return try? JSONDecoder().decode(ControlReply.self, from: Data(bytes))
    }

    func readLogLine() async -> ControlLogLine? {
        guard case .line(let bytes) = await readLine() else { return nil }
        return try? JSONDecoder().decode(ControlLogLine.self, from: Data(bytes))
    }

    /// True when the server closed the connection (EOF or reset) within `timeout`.
    func closedByServer(timeout: Double = 20) async -> Bool {
        await blocking {
            while true {
                switch self.readLineNow(timeout: timeout) {
                case .endOfFile, .failed: return true
                case .timedOut: return false
                case .line, .tooLong: continue
                }
            }
        }
    }

    private var closed = false
    func close() {
        if !closed { Sockets.close(fd) }
        closed = true
    }
    deinit { close() }
}
