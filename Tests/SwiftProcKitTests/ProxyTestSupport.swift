import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs blocking `body` on its own thread and awaits its result, so blocking socket calls in
/// tests never hold one of the (few) cooperative threads.
func runOnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// A small blocking-socket server on 127.0.0.1 for proxy and health tests. Each connection is
/// served on its own thread by `handler`; `stop()` closes the listener and every connection and
/// waits for all threads to finish.
final class LoopbackServer: @unchecked Sendable {
    let id: String
    private(set) var port = 0
    private let handler: @Sendable (LoopbackServer, Int32) -> Void
    private let state = NSCondition()
    private var listener: Int32 = -1
    private var open: Set<Int32> = []
    private var threads = 0
    private var stopped = false
    private var _accepted = 0

    init(id: String, handler: @escaping @Sendable (LoopbackServer, Int32) -> Void) throws {
        self.id = id
        self.handler = handler
        listener = try TCPSocket.listen(port: 0)
        port = TCPSocket.localPort(listener)
        threads = 1
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// An HTTP/1.1 keep-alive server: `GET /id` answers with the server's id, `/big` with
    /// ``bigBody``, `/partial` promises 1,000,000 bytes, sends 1,000 and closes, `/hang` never
    /// answers, `/status/NNN` answers NNN. Anything else: 404.
    static func http(id: String) throws -> LoopbackServer {
        try LoopbackServer(id: id) { server, fd in server.serveHTTP(fd) }
    }

    /// Reads until end of file, then answers `got N bytes from <id>` and closes.
    static func readToEnd(id: String) throws -> LoopbackServer {
        try LoopbackServer(id: id) { server, fd in
            var total = 0
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                total += n
            }
            _ = TCPSocket.sendAll(fd, Array("got \(total) bytes from \(server.id)".utf8))
        }
    }

    static let bigBody: [UInt8] = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }

    var accepted: Int {
        state.lock()
        defer { state.unlock() }
        return _accepted
    }

    var openConnections: Int {
        state.lock()
        defer { state.unlock() }
        return open.count
    }

    /// Closes the listener only: later connects are refused; open connections go on.
    func closeListener() {
        state.lock()
        defer { state.unlock() }
        if listener >= 0 { TCPSocket.shutdownBoth(listener) }
    }

    /// Closes every open connection (as if the process died), keeps listening.
    func dropConnections() {
        state.lock()
        defer { state.unlock() }
        for fd in open { TCPSocket.shutdownBoth(fd) }
    }

    func stop() {
        state.lock()
        stopped = true
        if listener >= 0 { TCPSocket.shutdownBoth(listener) }
        for fd in open { TCPSocket.shutdownBoth(fd) }
        let deadline = Date().addingTimeInterval(5)
        while threads > 0, state.wait(until: deadline) {}
        state.unlock()
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                break
            }
            state.lock()
            if stopped {
                state.unlock()
                TCPSocket.close(client)
                break
            }
            open.insert(client)
            _accepted += 1
            threads += 1
            state.unlock()
            let thread = Thread { [self] in
                handler(self, client)
                state.lock()
                open.remove(client)
                TCPSocket.close(client)
                threads -= 1
                state.broadcast()
                state.unlock()
            }
            thread.start()
        }
        state.lock()
        TCPSocket.close(listener)
        listener = -1
        threads -= 1
        state.broadcast()
        state.unlock()
    }

    private func serveHTTP(_ fd: Int32) {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        let terminator: [UInt8] = Array("\r\n\r\n".utf8)
        while true {
            guard let end = pending.firstRange(of: terminator) else {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                pending += buffer[0..<n]
                continue
            }
            let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
            pending.removeSubrange(..<end.upperBound)
            let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
            switch path {
            case "/id":
                guard respond(fd, status: 200, body: Array(id.utf8)) else { return }
            case "/big":
                guard respond(fd, status: 200, body: Self.bigBody) else { return }
            case "/partial":
                let header = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
                _ = TCPSocket.sendAll(fd, Array(header.utf8) + [UInt8](repeating: 65, count: 1000))
                return
            case "/hang":
                while true {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { return }
                }
            default:
                if path.hasPrefix("/status/"), let code = Int(path.dropFirst(8)) {
                    guard respond(fd, status: code, body: Array("status \(code)".utf8)) else { return }
                } else {
                    guard respond(fd, status: 404, body: Array("not found".utf8)) else { return }
                }
            }
        }
    }

    private func respond(_ fd: Int32, status: Int, body: [UInt8]) -> Bool {
        let head = "HTTP/1.1 \(status) X\r\nContent-Length: \(body.count)\r\n\r\n"
        return TCPSocket.sendAll(fd, Array(head.utf8) + body)
    }
}

/// A blocking test client on one connection, every read bounded by `timeout`.
final class LoopbackClient: @unchecked Sendable {
    let fd: Int32
    private var pending: [UInt8] = []

    init(port: Int, timeout: Double = 10) throws {
        switch TCPSocket.connect(port: port, timeout: timeout) {
        case .connected(let fd):
            self.fd = fd
        case .failed(let code):
            throw SocketError("connect", code)
        case .timedOut:
            throw SocketError("connect", ETIMEDOUT)
        }
        var value = timeval(tv_sec: Int(timeout), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { TCPSocket.close(fd) }

    func close() { TCPSocket.shutdownBoth(fd) }

    func send(_ text: String) -> Bool { TCPSocket.sendAll(fd, Array(text.utf8)) }

    func send(_ bytes: [UInt8]) -> Bool { TCPSocket.sendAll(fd, bytes) }

    func shutdownWrite() { TCPSocket.shutdownWrite(fd) }

    /// The next chunk: bytes, or nil at end of file; throws on error or timeout.
    func receiveChunk() throws -> [UInt8]? {
        if !pending.isEmpty {
            defer { pending = [] }
            return pending
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { return Array(buffer[0..<n]) }
        if n == 0 { return nil }
        throw SocketError("recv", errno)
    }

    /// Everything until end of file.
    func receiveAll() throws -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try receiveChunk() { all += chunk }
        return all
    }

    /// One HTTP response with a Content-Length: (status, body). Throws on EOF before its end.
    func request(_ path: String, method: String = "GET") throws -> (status: Int, body: [UInt8]) {
        guard send("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n") else { throw SocketError("send", EPIPE) }
        return try readResponse()
    }

    func readResponse() throws -> (status: Int, body: [UInt8]) {
        let terminator: [UInt8] = Array("\r\n\r\n".utf8)
        var data = pending
        pending = []
        while data.firstRange(of: terminator) == nil {
            guard let chunk = try receiveChunk() else { throw SocketError("recv", ECONNRESET) }
            data += chunk
        }
        let end = data.firstRange(of: terminator)!
        let head = String(decoding: data[..<end.lowerBound], as: UTF8.self)
        var body = Array(data[end.upperBound...])
        let lines = head.components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var length = 0
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                length = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        while body.count < length {
            guard let chunk = try receiveChunk() else { throw SocketError("recv", ECONNRESET) }
            body += chunk
        }
        if body.count > length {
            pending = Array(body[length...])
            body = Array(body[..<length])
        }
        return (status, body)
    }

    /// `GET /id` on this connection: the id of the backend that answered.
    func backendID() throws -> String {
        let response = try request("/id")
        return String(decoding: response.body, as: UTF8.self)
    }
}

/// A port on 127.0.0.1 where connects are refused: bound (so no other test can take it while
/// this lives) but not listening.
final class RefusedPort: @unchecked Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        let socket = try TCPSocket.make()
        let bound = TCPSocket.withLoopbackAddress(port: 0) { bind(socket, $0, $1) }
        guard bound == 0 else {
            let error = SocketError("bind")
            TCPSocket.close(socket)
            throw error
        }
        fd = socket
        port = TCPSocket.localPort(socket)
    }

    deinit { TCPSocket.close(fd) }
}

/// A thread-safe counter for callbacks.
final class CallCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var _value = 0
    func increment() { lock.lock(); _value += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return _value }
}

/// ``runOnThread(_:)`` for a throwing body.
func runOnThrowingThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await runOnThread { Result { try body() } }.get()
}
