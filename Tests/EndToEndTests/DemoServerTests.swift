import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `swiftproc-demo` binary `swift test` built next to the test bundle.
let demoBinary = builtBinary("swiftproc-demo")

/// A running `swiftproc-demo` on a free port, output captured.
final class DemoProcess: @unchecked Sendable {
    let process = Process()
    let stdout: OutputCollector
    let stderr: OutputCollector
    let directory: URL
    private(set) var port: UInt16 = 0

    init(_ arguments: [String] = [], environment: [String: String] = ["PS": "app.2"], in directory: URL? = nil) async throws {
        self.directory = try directory ?? makeApp([:])
        process.executableURL = URL(fileURLWithPath: demoBinary)
        process.arguments = ["--port", "0"] + arguments
        process.currentDirectoryURL = self.directory
        var env = ProcessInfo.processInfo.environment
        for key in ["PS", "PORT", "FLY_MACHINE_ID", "DEMO_UNHEALTHY_FILE"] { env.removeValue(forKey: key) }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        (stdout, stderr) = try runCapturingOutput(process)
        let collector = stdout
        _ = await eventually { collector.text.contains("listening on http://127.0.0.1:") }
        port = Self.port(in: stdout.text) ?? 0
        if port == 0 { Issue.record("no port in: \(stdout.text) \(stderr.text)") }
    }

    /// The port of the first `listening on http://127.0.0.1:PORT` line.
    static func port(in text: String) -> UInt16? {
        guard let range = text.range(of: "listening on http://127.0.0.1:") else { return nil }
        return UInt16(text[range.upperBound...].prefix { $0.isNumber })
    }

    var pid: pid_t { process.processIdentifier }

    func waitForExit(timeout: Double = 10) async -> Int32? {
        let ok = await eventually(timeout: timeout) { !process.isRunning }
        if !ok { kill(pid, SIGKILL); return nil }
        _ = await eventually(timeout: 5) { stdout.isClosed && stderr.isClosed }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A response as read off the wire.
struct DemoResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A raw TCP client: writes bytes as given, parses Content-Length responses.
final class RawHTTPClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16) throws {
        #if os(Linux)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var tv = timeval()
        tv.tv_sec = 10
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        #if canImport(Darwin)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            #if os(Linux)
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            #else
            let n = bytes[sent...].withUnsafeBytes { Darwin.send(fd, $0.baseAddress, $0.count, 0) }
            #endif
            if n <= 0 { return }
            sent += n
        }
    }

    /// Reads more bytes; false at EOF, error or timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n <= 0 { return false }
        buffer += chunk[0..<n]
        return true
    }

    /// Whether the server closed the connection (EOF, nothing more buffered).
    func isClosedByServer() -> Bool {
        buffer.isEmpty && !fill() && buffer.isEmpty
    }

    /// Reads one response (`HEAD`: no body).
    func response(head: Bool = false) -> DemoResponse? {
        var end: Int?
        while end == nil {
            if let i = find([13, 10, 13, 10]) { end = i; break }
            if !fill() { return nil }
        }
        let headText = String(decoding: buffer[0..<end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = head ? 0 : Int(headers["content-length"] ?? "") ?? -1
        guard length >= 0 else { return nil }
        while buffer.count < length { if !fill() { return nil } }
        let body = Array(buffer[0..<length])
        buffer.removeFirst(length)
        return DemoResponse(status: status, headers: headers, body: body)
    }

    private func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        for i in 0...(buffer.count - needle.count) where buffer[i] == needle[0] && Array(buffer[i..<i + needle.count]) == needle {
            return i
        }
        return nil
    }

    /// One request on a new connection.
    static func get(_ path: String, port: UInt16, method: String = "GET") throws -> DemoResponse? {
        let c = try RawHTTPClient(port: port)
        c.send("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return c.response(head: method == "HEAD")
    }
}

/// `swiftproc-demo` driven over raw sockets: every route, keep-alive, shutdown, and under `swiftproc start`.
@Suite(.serialized) struct DemoServerTests {
    @Test func rootHealthBytesAndNotFound() async throws {
        let demo = try await DemoProcess()
        #expect(demo.stdout.text.contains("listening on http://127.0.0.1:\(demo.port) as app.2"))

        let root = try #require(try RawHTTPClient.get("/", port: demo.port))
        #expect(root.status == 200)
        #expect(root.text == "hello from app.2 (pid \(demo.pid))\n")
        #expect(root.headers["content-length"] == String(root.body.count))
        #expect(root.headers["x-instance"] == "app.2")

        #expect(try RawHTTPClient.get("/health", port: demo.port)?.text == "ok\n")
        let unhealthy = demo.directory.appendingPathComponent("unhealthy")
        try "".write(to: unhealthy, atomically: true, encoding: .utf8)
        let sick = try #require(try RawHTTPClient.get("/health", port: demo.port))
        #expect(sick.status == 500)
        #expect(sick.text == "unhealthy\n")
        try FileManager.default.removeItem(at: unhealthy)
        #expect(try RawHTTPClient.get("/health", port: demo.port)?.status == 200)
        // One instance's own file.
        let mine = demo.directory.appendingPathComponent("unhealthy.app.2")
        try "".write(to: mine, atomically: true, encoding: .utf8)
        #expect(try RawHTTPClient.get("/health", port: demo.port)?.status == 500)
        try FileManager.default.removeItem(at: mine)
        #expect(try RawHTTPClient.get("/health", port: demo.port)?.status == 200)

        for n in [0, 1, 65536, 65537, 1_000_003] {
            let r = try #require(try RawHTTPClient.get("/bytes/\(n)", port: demo.port))
            #expect(r.status == 200)
            #expect(r.body.count == n)
            #expect(r.headers["content-length"] == String(n))
        }
        let head = try #require(try RawHTTPClient.get("/bytes/123", port: demo.port, method: "HEAD"))
        #expect(head.status == 200 && head.headers["content-length"] == "123" && head.body.isEmpty)

        #expect(try RawHTTPClient.get("/nope", port: demo.port)?.status == 404)
        #expect(try RawHTTPClient.get("/bytes/abc", port: demo.port)?.status == 400)
        #expect(try RawHTTPClient.get("/", port: demo.port, method: "DELETE")?.status == 405)

        // One log line per request, each on its own line (written just after the response is sent).
        // 15 requests: wait for all their lines (each is logged by its own connection's thread).
        #expect(await eventually { demo.stdout.text.split(separator: "\n").count == 16 }, "\(demo.stdout.text)")
        let log = demo.stdout.text
        #expect(log.contains("\"GET /bytes/1000003 HTTP/1.1\" 200 1000003 "))
        #expect(log.contains("\"GET /nope HTTP/1.1\" 404 "))
        #expect(log.contains("\"DELETE / HTTP/1.1\" 405 "))
        demo.process.terminate()
        #expect(await demo.waitForExit() == 0)
    }

    @Test func keepAlivePipeliningAndConnectionClose() async throws {
        let demo = try await DemoProcess(["--quiet"])
        let c = try RawHTTPClient(port: demo.port)
        for _ in 0..<3 {
            c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = try #require(c.response())
            #expect(r.status == 200 && r.headers["connection"] == "keep-alive")
        }
        // Pipelined: three requests in one write, answered in order on the same connection.
        c.send("GET /bytes/5 HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nPOST /health HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcdGET / HTTP/1.1\r\n\r\n")
        #expect(c.response()?.body.count == 5)
        #expect(c.response()?.status == 404)
        #expect(c.response()?.status == 405)
        #expect(c.response()?.text.hasPrefix("hello from app.2") == true)
        // Connection: close is honoured.
        c.send("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        let last = try #require(c.response())
        #expect(last.headers["connection"] == "close")
        #expect(c.isClosedByServer())
        // HTTP/1.0 closes unless asked to keep alive.
        let old = try RawHTTPClient(port: demo.port)
        old.send("GET / HTTP/1.0\r\n\r\n")
        #expect(old.response()?.status == 200)
        #expect(old.isClosedByServer())
        // Garbage gets a 400 and a closed connection.
        let bad = try RawHTTPClient(port: demo.port)
        bad.send("NONSENSE\r\n\r\n")
        #expect(bad.response()?.status == 400)
        #expect(bad.isClosedByServer())
        #expect(!demo.stdout.text.contains("\"GET"), "--quiet logs no requests")
        demo.process.terminate()
        #expect(await demo.waitForExit() == 0)
    }

    @Test func slowAnswersLateAndSIGINTLetsItFinish() async throws {
        let demo = try await DemoProcess(["--quiet"])
        let start = Date()
        #expect(try RawHTTPClient.get("/slow/300", port: demo.port)?.text == "slept 300 ms\n")
        #expect(Date().timeIntervalSince(start) >= 0.3)

        // An in-flight /slow request survives SIGINT; the server then exits 0.
        let c = try RawHTTPClient(port: demo.port)
        c.send("GET /slow/800 HTTP/1.1\r\n\r\n")
        try await Task.sleep(nanoseconds: 200_000_000)
        kill(demo.pid, SIGINT)
        #expect(await eventually(timeout: 2) { demo.stdout.text.contains("shutting down") })
        let r = try #require(c.response())
        #expect(r.status == 200 && r.headers["connection"] == "close")
        #expect(await demo.waitForExit() == 0)
        #expect(Date().timeIntervalSince(start) < 5)
        // The listener is gone.
        #expect(throws: (any Error).self) { try RawHTTPClient(port: demo.port) }
    }

    @Test func crashRepliesThenExitsWithStatus1() async throws {
        let demo = try await DemoProcess()
        let r = try #require(try RawHTTPClient.get("/crash", port: demo.port))
        #expect(r.status == 200 && r.text.hasPrefix("crashing app.2"))
        #expect(await demo.waitForExit() == 1)
    }

    @Test func portFromEnvironmentAndBusyPortFails() async throws {
        let first = try await DemoProcess(environment: ["FLY_MACHINE_ID": "abc123"])
        #expect(first.stdout.text.contains("as abc123"), "FLY_MACHINE_ID names the instance without PS")
        // $PORT is used when --port is absent; a port in use is an error (exit 1).
        let busy = Process()
        busy.executableURL = URL(fileURLWithPath: demoBinary)
        busy.environment = ["PORT": String(first.port)]
        let errPipe = Pipe()
        busy.standardError = errPipe
        busy.standardOutput = FileHandle.nullDevice
        try busy.run()
        busy.waitUntilExit()
        #expect(busy.terminationStatus == 1)
        let message = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(message.contains("127.0.0.1:\(first.port)"), "\(message)")
        kill(first.pid, SIGTERM)
        #expect(await first.waitForExit() == 0)
    }

    @Test func underSwiftprocEachInstanceAnswersAndACrashIsRestarted() async throws {
        let app = try makeApp(["Procfile": "web: \(demoBinary) --port 0\n"])
        let sp = try SwiftProc(["start", "-m", "web=2", "--no-color", "--no-timestamps"], in: app)
        #expect(await eventually { sp.stdout.text.components(separatedBy: "listening on").count == 3 }, "\(sp.stdout.text)")
        func ports() -> [String: UInt16] {
            var out: [String: UInt16] = [:]
            for line in sp.stdout.text.split(separator: "\n") where line.contains("listening on") {
                let name = String(line.split(separator: " ")[0])
                out[name] = DemoProcess.port(in: String(line))
            }
            return out
        }
        let before = ports()
        for name in ["web.1", "web.2"] {
            let port = try #require(before[name])
            let r = try #require(try RawHTTPClient.get("/", port: port))
            #expect(r.text.hasPrefix("hello from \(name) (pid "))
        }
        _ = try RawHTTPClient.get("/crash", port: try #require(before["web.2"]))
        #expect(await eventually { sp.stdout.text.contains("web.2 exited with status 1 — restarting") })
        #expect(await eventually { sp.stdout.text.components(separatedBy: "listening on").count == 4 })
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0, "\(sp.stdout.text)")
        #expect(sp.stdout.text.split(separator: "\n").contains { $0.hasPrefix("web.1 ") && $0.hasSuffix("| shutting down") })
        try? FileManager.default.removeItem(at: app)
    }
}
