import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the command line and environment decided.
struct DemoOptions: Sendable {
    var port: UInt16
    var quiet: Bool
    /// `$PS` (swiftproc's `app.2`), else `$FLY_MACHINE_ID`, else `swiftproc-demo`.
    var instance: String
    /// `/health` answers 500 while this file (or `<file>.<instance>`) exists; nil: always healthy.
    var unhealthyFile: String?
    /// How long SIGINT/SIGTERM waits for in-flight requests before exiting anyway.
    var drainSeconds: Double
    /// A keep-alive connection with no request for this long is closed.
    var idleSeconds: Int
}

/// The server: an accept loop on the calling thread, one thread per connection.
final class DemoServer: @unchecked Sendable {
    // @unchecked: mutable state (`inFlight`, `stopping`, `connections`) is guarded by `state`.
    let options: DemoOptions
    private let listener: Int32
    let port: UInt16
    private let state = NSCondition()
    private var inFlight = 0
    private var stopping = false
    private var connections = 0
    /// Self-pipe that wakes the accept loop's `poll` for shutdown.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// 64 KiB of body for `/bytes/N`, shared read-only by every connection.
    private let chunk: [UInt8]

    static let chunkSize = 64 * 1024
    static let maxSlowMilliseconds = 10 * 60 * 1000

    init(options: DemoOptions) throws(NetError) {
        self.options = options
        (listener, port) = try Net.listen(port: options.port)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw NetError("pipe") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        (wakeRead, wakeWrite) = (fds[0], fds[1])
        let pattern = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_\n".utf8)
        chunk = (0..<Self.chunkSize).map { pattern[$0 % pattern.count] }
    }

    // MARK: - Accepting

    /// Accepts connections until ``stop()``; then waits (up to `drainSeconds`) for in-flight requests.
    func run() {
        Log.line("listening on http://127.0.0.1:\(port) as \(options.instance)")
        var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        while true {
            let r = poll(&fds, nfds_t(fds.count), -1)
            if r < 0 {
                if errno == EINTR { continue }
                Log.error("swiftproc-demo: poll: \(String(cString: strerror(errno)))")
                break
            }
            if fds[1].revents != 0 { break }
            guard fds[0].revents != 0 else { continue }
            guard let (fd, peer) = Net.accept(listener) else {
                // EMFILE and the like: back off instead of spinning on a listener that stays readable.
                if errno != EINTR && errno != EAGAIN && errno != ECONNABORTED { usleep(10_000) }
                continue
            }
            state.lock()
            connections += 1
            state.unlock()
            let thread = Thread { [self] in
                serve(fd, peer: peer)
                state.lock()
                connections -= 1
                state.unlock()
            }
            thread.stackSize = 512 * 1024
            thread.start()
        }
        close(listener)
        drain()
    }

    /// Called from a signal handler's queue: stop accepting, let in-flight requests finish.
    func stop() {
        state.lock()
        let first = !stopping
        stopping = true
        state.unlock()
        guard first else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func drain() {
        state.lock()
        let deadline = Date().addingTimeInterval(options.drainSeconds)
        if inFlight > 0 {
            Log.line("waiting up to \(formatSeconds(options.drainSeconds)) for \(inFlight) in-flight request\(inFlight == 1 ? "" : "s")")
        }
        while inFlight > 0 && state.wait(until: deadline) {}
        let left = inFlight
        state.unlock()
        if left > 0 { Log.line("exiting with \(left) request\(left == 1 ? "" : "s") still in flight") }
    }

    private var isStopping: Bool {
        state.lock(); defer { state.unlock() }
        return stopping
    }

    // MARK: - One connection

    private func serve(_ fd: Int32, peer: String) {
        defer { close(fd) }
        Net.setReceiveTimeout(fd, seconds: options.idleSeconds)
        var buffer: [UInt8] = []
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
        defer { scratch.deallocate() }
        while true {
            // Read until a whole request head is buffered.
            var parsed = HTTPParser.parse(buffer)
            while case .incomplete = parsed {
                let n = Net.receive(fd, scratch)
                if n <= 0 { return }  // EOF, reset or idle timeout
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                parsed = HTTPParser.parse(buffer)
            }
            let request: Request
            switch parsed {
            case .incomplete:
                return
            case .invalid(let status, let reason):
                let response = Response(status: status, reason + "\n")
                _ = Net.sendAll(fd, response.head(keepAlive: false, instance: options.instance) + response.body)
                logRequest(peer: peer, line: "(unparsable request)", status: status, bytes: response.body.count, started: now())
                return
            case .request(let r, let consumed):
                request = r
                buffer.removeFirst(consumed)
            }
            let started = now()
            beginRequest()
            let keepOpen = handle(request, fd: fd, peer: peer, buffer: &buffer, scratch: scratch, started: started)
            endRequest()
            if !keepOpen { return }
        }
    }

    private func beginRequest() {
        state.lock()
        inFlight += 1
        state.unlock()
    }

    private func endRequest() {
        state.lock()
        inFlight -= 1
        if inFlight == 0 { state.broadcast() }
        state.unlock()
    }

    /// Answers one request; returns whether the connection stays open.
    private func handle(_ request: Request, fd: Int32, peer: String, buffer: inout [UInt8],
                        scratch: UnsafeMutableRawBufferPointer, started: UInt64) -> Bool {
        var keepAlive = request.keepAlive && !isStopping
        // A request body is read and discarded; chunked bodies are not supported.
        if request.headers["transfer-encoding"] != nil {
            let response = Response(status: 501, "chunked request bodies are not supported\n")
            send(response, request: request, fd: fd, peer: peer, keepAlive: false, started: started)
            return false
        }
        if let lengthText = request.headers["content-length"] {
            guard let length = Int(lengthText), length >= 0 else {
                send(Response(status: 400, "bad Content-Length\n"), request: request, fd: fd, peer: peer,
                     keepAlive: false, started: started)
                return false
            }
            var left = length
            let buffered = min(left, buffer.count)
            buffer.removeFirst(buffered)
            left -= buffered
            while left > 0 {
                let n = Net.receive(fd, UnsafeMutableRawBufferPointer(rebasing: scratch[0..<min(left, scratch.count)]))
                if n <= 0 { return false }
                left -= n
            }
        }

        let (path, _) = splitTarget(request.target)
        let isHead = request.method == "HEAD"
        guard request.method == "GET" || isHead else {
            var response = Response(status: 405, "method not allowed\n")
            response.extraHeaders = [("Allow", "GET, HEAD")]
            send(response, request: request, fd: fd, peer: peer, keepAlive: keepAlive, started: started)
            return keepAlive
        }

        switch path {
        case "/":
            let text = "hello from \(options.instance) (pid \(getpid()))\n"
            send(Response(status: 200, text), request: request, fd: fd, peer: peer, keepAlive: keepAlive, started: started)
        case "/health":
            let response = isUnhealthy() ? Response(status: 500, "unhealthy\n") : Response(status: 200, "ok\n")
            send(response, request: request, fd: fd, peer: peer, keepAlive: keepAlive, started: started)
        case "/crash":
            send(Response(status: 200, "crashing \(options.instance) (pid \(getpid()))\n"), request: request, fd: fd,
                 peer: peer, keepAlive: false, started: started)
            if !isHead {
                shutdown(fd, Int32(SHUT_RDWR))
                Log.line("crashing on request (exit status 1)")
                exit(1)
            }
            return false
        default:
            if let n = number(after: "/bytes/", in: path) {
                var response = Response(status: 200, "")
                response.contentType = "application/octet-stream"
                response.streamedLength = n
                keepAlive = streamBytes(response, count: n, request: request, fd: fd, peer: peer,
                                        keepAlive: keepAlive, started: started) && keepAlive
            } else if let ms = number(after: "/slow/", in: path) {
                let wait = min(ms, Self.maxSlowMilliseconds)
                sleepMilliseconds(wait)
                // The server may have begun shutting down meanwhile: tell the client not to reuse this connection.
                keepAlive = keepAlive && !isStopping
                send(Response(status: 200, "slept \(wait) ms\n"), request: request, fd: fd, peer: peer,
                     keepAlive: keepAlive, started: started)
            } else if path.hasPrefix("/bytes/") || path.hasPrefix("/slow/") {
                send(Response(status: 400, "expected a non-negative integer: /bytes/N, /slow/MS\n"), request: request,
                     fd: fd, peer: peer, keepAlive: keepAlive, started: started)
            } else {
                send(Response(status: 404, "not found: \(path)\n"), request: request, fd: fd, peer: peer,
                     keepAlive: keepAlive, started: started)
            }
        }
        return keepAlive
    }

    /// Sends head and body in one `send`, then logs the request.
    private func send(_ response: Response, request: Request, fd: Int32, peer: String, keepAlive: Bool, started: UInt64) {
        var bytes = response.head(keepAlive: keepAlive, instance: options.instance)
        if request.method != "HEAD" { bytes += response.body }
        let ok = Net.sendAll(fd, bytes)
        logRequest(peer: peer, line: request.line, status: response.status,
                   bytes: ok && request.method != "HEAD" ? response.body.count : 0, started: started)
    }

    /// `/bytes/N`: the head, then N bytes in 64 KiB `send`s. Returns false if the client went away.
    private func streamBytes(_ response: Response, count: Int, request: Request, fd: Int32, peer: String,
                             keepAlive: Bool, started: UInt64) -> Bool {
        var ok = Net.sendAll(fd, response.head(keepAlive: keepAlive, instance: options.instance))
        var sent = 0
        if request.method != "HEAD" {
            chunk.withUnsafeBytes { raw in
                while ok && sent < count {
                    let n = min(count - sent, raw.count)
                    ok = Net.sendAll(fd, UnsafeRawBufferPointer(rebasing: raw[0..<n]))
                    if ok { sent += n }
                }
            }
        }
        logRequest(peer: peer, line: request.line, status: response.status, bytes: sent, started: started)
        return ok
    }

    private func logRequest(peer: String, line: String, status: Int, bytes: Int, started: UInt64) {
        guard !options.quiet else { return }
        let micros = Double(now() - started) / 1000
        let took = micros < 1000 ? String(format: "%.0fµs", micros) : String(format: "%.1fms", micros / 1000)
        Log.line("\(peer) \"\(line)\" \(status) \(bytes) \(took)")
    }

    // MARK: - Helpers

    private func isUnhealthy() -> Bool {
        guard let file = options.unhealthyFile, !file.isEmpty else { return false }
        return access(file, F_OK) == 0 || access("\(file).\(options.instance)", F_OK) == 0
    }

    private func splitTarget(_ target: String) -> (path: String, query: String?) {
        guard let q = target.firstIndex(of: "?") else { return (target, nil) }
        return (String(target[..<q]), String(target[target.index(after: q)...]))
    }

    private func number(after prefix: String, in path: String) -> Int? {
        guard path.hasPrefix(prefix) else { return nil }
        let digits = path.dropFirst(prefix.count)
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    private func sleepMilliseconds(_ ms: Int) {
        var ts = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }

    private func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

func formatSeconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s))s" : String(format: "%.1fs", s)
}
