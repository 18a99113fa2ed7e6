import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the proxy could not start.
public struct ProxyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var port: Int
    public var description: String

    static func portInUse(_ port: Int) -> ProxyError {
        ProxyError(port: port, description: "port \(port) is in use (is another server running?)")
    }
}

/// A TCP proxy on 127.0.0.1:`port` that hands each connection to one instance of the app, as
/// Fly's proxy spreads connections over an app's machines.
///
/// Byte-transparent (HTTP/1.1 keep-alive, WebSockets and streaming pass through untouched), with
/// half-close relayed both ways (`shutdown(SHUT_WR)` on one side after end-of-file on the other)
/// and any error on either side closing both. The backend is chosen by the ``BackendPool``
/// before a single byte is read from the client, so a connect that fails (an instance that just
/// died) is retried on another instance and the client never notices. When no instance is
/// available the client waits up to `waitForBackend` seconds for one (``BackendPool`` wakes it),
/// `onNoBackend` firing once per waiting episode so the supervisor can start one; if none comes
/// it gets a `503 Service Unavailable` (with `httpErrors`) or a plain close.
///
/// **Threading: a thread per connection direction, with blocking I/O.** The accept loop hands
/// each connection to a new thread that picks and connects a backend and then relays client →
/// backend; a second thread relays backend → client. Each direction is a `recv` into its own
/// 64 KiB buffer (allocated once per connection) and a `send` of what arrived: two syscalls per
/// chunk, the kernel waking exactly the thread that has work, no event-loop bookkeeping for
/// partial writes, and back-pressure for free (a slow reader blocks the `send`, which stops the
/// `recv`). For the few hundred connections a laptop sees that is as fast as a poll loop and far
/// simpler; the price is two threads (256 KiB stack reserve each, only touched pages are real) and
/// 128 KiB of buffers per open connection, which would call for an event loop at tens of
/// thousands of connections. `TCP_NODELAY` is set on both sides so small writes are not delayed.
/// On Linux a direction relays with `splice(2)` through a pipe instead of the buffer (the bytes
/// never enter the process), as long as the open connections stay within a share of the
/// descriptor limit (a pipe costs two descriptors); see ``SpliceRelay``.
public final class TCPProxy: @unchecked Sendable {
    private let requestedPort: Int
    private let pool: BackendPool
    private let waitForBackend: Double
    private let onNoBackend: @Sendable () -> Void
    /// Guarded by `state`; a deploy may change it (``update(httpErrors:)``).
    private var httpErrors: Bool
    private let connectTimeout: Double
    /// False: relay by copying even where `splice` is available (tests cover both paths on Linux).
    /// Set before ``start()``.
    var spliceAllowed = true

    static let bufferSize = 64 * 1024
    /// `SWIFTPROC_PROXY_NO_SPLICE` set: always relay by copying (to rule `splice` out when
    /// troubleshooting, and to compare the two).
    private static let spliceDisabled = ProcessInfo.processInfo.environment["SWIFTPROC_PROXY_NO_SPLICE"] != nil
    static let threadStackSize = 256 * 1024

    private let state = NSCondition()
    private var listener: Int32 = -1
    private var wake: (read: Int32, write: Int32) = (-1, -1)
    private var port = 0
    private var started = false
    private var stopped = false
    private var acceptLoopRunning = false
    private var connections: [UInt64: ProxyConnection] = [:]
    private var nextConnectionID: UInt64 = 1
    /// Clients waiting for a backend; `onNoBackend` fires when it goes from 0 to 1.
    private var waiting = 0

    /// - Parameters:
    ///   - port: the port to listen on (on 127.0.0.1); 0 for an ephemeral one (see ``boundPort``).
    ///   - waitForBackend: how long a client waits for an available instance before giving up.
    ///   - onNoBackend: called (on the waiting client's thread) when a client starts waiting and
    ///     no other client was already waiting.
    ///   - httpErrors: answer a client that waited in vain with an HTTP 503 (else just close).
    ///   - connectTimeout: how long a connect to one instance may take before the next is tried.
    public init(port: Int, pool: BackendPool, waitForBackend: Double = 30,
                onNoBackend: @escaping @Sendable () -> Void = {}, httpErrors: Bool = true,
                connectTimeout: Double = 5) {
        self.requestedPort = port
        self.pool = pool
        self.waitForBackend = waitForBackend
        self.onNoBackend = onNoBackend
        self.httpErrors = httpErrors
        self.connectTimeout = connectTimeout
    }

    deinit {
        if listener >= 0 { TCPSocket.close(listener) }
        if wake.read >= 0 { TCPSocket.close(wake.read) }
        if wake.write >= 0 { TCPSocket.close(wake.write) }
    }

    /// Binds 127.0.0.1:`port` and starts accepting (once: a stopped proxy is not restarted).
    /// Throws ``ProxyError`` when the port is taken.
    public func start() throws {
        state.lock()
        defer { state.unlock() }
        guard !started else { return }
        #if canImport(Darwin)
        // Darwin lets an SO_REUSEADDR bind to 127.0.0.1:port succeed beside another program's
        // *:port listener (and then takes its local traffic): look for a listener first.
        if requestedPort != 0, case .connected(let probe) = TCPSocket.connect(port: requestedPort, timeout: 0.5) {
            TCPSocket.close(probe)
            throw ProxyError.portInUse(requestedPort)
        }
        #endif
        let fd: Int32
        do {
            fd = try TCPSocket.listen(port: requestedPort)
        } catch {
            if error.code == EADDRINUSE { throw ProxyError.portInUse(requestedPort) }
            throw ProxyError(port: requestedPort,
                             description: "cannot listen on 127.0.0.1:\(requestedPort): \(error.description)")
        }
        let pipe: (read: Int32, write: Int32)
        do {
            pipe = try Sockets.makePipe()
        } catch {
            TCPSocket.close(fd)
            throw ProxyError(port: requestedPort, description: "cannot start the proxy: \(error.description)")
        }
        TCPSocket.setNonBlocking(fd, true)
        TCPSocket.setNonBlocking(pipe.read, true)
        listener = fd
        wake = pipe
        port = TCPSocket.localPort(fd)
        started = true
        acceptLoopRunning = true
        startThread(name: "proxy:\(port)") { [self] in acceptLoop() }
    }

    /// The port listened on (the ephemeral one when created with port 0); 0 before ``start()``.
    public var boundPort: Int {
        state.lock()
        defer { state.unlock() }
        return port
    }

    /// Connections open through the proxy (including clients waiting for a backend).
    public var activeConnections: Int {
        state.lock()
        defer { state.unlock() }
        return connections.count
    }

    /// Whether a client that waited in vain gets an HTTP 503 (a deploy changed the service).
    public func update(httpErrors: Bool) {
        state.lock()
        self.httpErrors = httpErrors
        state.unlock()
    }

    /// Stops accepting new clients (the listening socket closes, so a new client is refused at
    /// once) but keeps relaying the open connections — Fly's drain at shutdown: the instances get
    /// their kill signal and finish what they were answering. ``stop()`` closes what is left.
    public func stopAccepting() {
        state.lock()
        defer { state.unlock() }
        guard started, !stopped, wake.write >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    /// Waits until every connection has ended, or `timeout` seconds; true when none is left.
    public func waitForConnections(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        state.lock()
        defer { state.unlock() }
        while !connections.isEmpty {
            if !state.wait(until: deadline) { break }
        }
        return connections.isEmpty
    }

    /// Stops listening, closes every connection, and returns once its threads are done with them
    /// (at most a few seconds: a connect in progress is bounded by `connectTimeout`).
    public func stop() {
        state.lock()
        guard started, !stopped else {
            state.unlock()
            return
        }
        stopped = true
        let open = Array(connections.values)
        // Under the lock: the accept loop closes the wake pipe (and sets it to -1) under it too,
        // so this byte never lands in a descriptor number that was closed and reused meanwhile.
        // One byte into an empty pipe never blocks.
        if wake.write >= 0 {
            var byte: UInt8 = 1
            _ = write(wake.write, &byte, 1)
        }
        state.unlock()

        for connection in open { connection.abort() }
        pool.wakeWaiters()

        let deadline = Date().addingTimeInterval(connectTimeout + 2)
        state.lock()
        while acceptLoopRunning || !connections.isEmpty {
            if !state.wait(until: deadline) { break }
        }
        state.unlock()
    }

    // MARK: - Accepting

    private func startThread(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.stackSize = Self.threadStackSize
        thread.name = name
        thread.start()
    }

    private func acceptLoop() {
        var entries = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        var backoff: Int32 = -1
        loop: while true {
            let ready = poll(&entries, 2, backoff)
            if ready < 0 && errno != EINTR { break }
            if entries[1].revents != 0 { break }
            backoff = -1
            while true {
                switch TCPSocket.accept(listener) {
                case .success(let fd):
                    TCPSocket.setNoDelay(fd)
                    guard let connection = register(fd) else {
                        TCPSocket.close(fd)
                        break loop
                    }
                    startThread(name: "proxy:\(port)#\(connection.id)") { [self] in serve(connection) }
                case .failure(let error):
                    if error.code == EMFILE || error.code == ENFILE || error.code == ENOBUFS || error.code == ENOMEM {
                        backoff = 100 // out of descriptors: retry shortly instead of spinning
                    }
                    continue loop
                }
            }
        }
        state.lock()
        TCPSocket.close(listener)
        listener = -1
        TCPSocket.close(wake.read)
        TCPSocket.close(wake.write)
        wake = (-1, -1)
        acceptLoopRunning = false
        state.broadcast()
        state.unlock()
    }

    private func register(_ fd: Int32) -> ProxyConnection? {
        state.lock()
        defer { state.unlock() }
        guard !stopped else { return nil }
        let connection = ProxyConnection(id: nextConnectionID, client: fd)
        nextConnectionID += 1
        connections[connection.id] = connection
        return connection
    }

    private func unregister(_ connection: ProxyConnection) {
        state.lock()
        connections[connection.id] = nil
        state.broadcast()
        state.unlock()
    }

    private var isStopped: Bool {
        state.lock()
        defer { state.unlock() }
        return stopped
    }

    // MARK: - One connection

    private func serve(_ connection: ProxyConnection) {
        let obtained = obtainBackend(for: connection)
        guard case .connected(let lease, let backendFD) = obtained else {
            if !connection.isAborted {
                let refusedToo = obtained == .gaveUp(connectFailed: true)
                refuse(connection.client, reason: refusedToo ? "no instance of the app is accepting connections"
                                                             : pool.unavailableReason())
            }
            connection.closeAll()
            unregister(connection)
            return
        }
        connection.setBackend(backendFD)
        if !pool.attach(lease, connection) { connection.abort() }

        let finish: @Sendable () -> Void = { [self] in
            guard connection.finishDirection() else { return }
            connection.closeAll()
            pool.release(lease)
            unregister(connection)
        }
        let splice = mayUseSplice()
        startThread(name: "proxy:\(port)#\(connection.id)<") {
            Self.relay(from: backendFD, to: connection.client, connection, splice: splice)
            finish()
        }
        Self.relay(from: connection.client, to: backendFD, connection, splice: splice)
        finish()
    }

    /// Whether a new connection may relay with `splice` (Linux), within the descriptor budget.
    private func mayUseSplice() -> Bool {
        #if os(Linux)
        if Self.spliceDisabled || !spliceAllowed { return false }
        state.lock()
        defer { state.unlock() }
        return connections.count <= SpliceRelay.connectionBudget
        #else
        return false
        #endif
    }

    /// Relays `source` to `destination` until end of file (then half-closes `destination`) or
    /// an error on either side (then closes both sides of the connection): with `splice` when
    /// allowed and possible, else by copying.
    private static func relay(from source: Int32, to destination: Int32, _ connection: ProxyConnection, splice: Bool) {
        #if os(Linux)
        if splice, SpliceRelay.relay(from: source, to: destination, connection) != .unsupported { return }
        #endif
        copy(from: source, to: destination, connection)
    }

    /// ``relay(from:to:_:splice:)`` through a 64 KiB buffer.
    private static func copy(from source: Int32, to destination: Int32, _ connection: ProxyConnection) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = TCPSocket.receive(source, buffer, bufferSize)
            if count > 0 {
                if !TCPSocket.sendAll(destination, buffer, count) {
                    connection.abort()
                    return
                }
            } else if count == 0 {
                TCPSocket.shutdownWrite(destination)
                return
            } else {
                connection.abort()
                return
            }
        }
    }

    private enum Obtained: Equatable {
        case connected(BackendLease, Int32)
        /// No backend in time; `connectFailed`: the last attempts found instances that refused.
        case gaveUp(connectFailed: Bool)
    }

    /// Picks a backend and connects to it, trying the others when a connect fails, and waiting
    /// (up to `waitForBackend`) while none is available.
    private func obtainBackend(for connection: ProxyConnection) -> Obtained {
        let deadline = ProxyClock.now + waitForBackend
        var failed = Set<String>()
        var failedSince = 0.0
        var isWaiting = false
        defer { if isWaiting { endWaiting() } }
        while true {
            if connection.isAborted || isStopped { return .gaveUp(connectFailed: false) }
            let (lease, generation) = pool.acquire(excluding: failed)
            if let lease {
                switch TCPSocket.connect(port: lease.port, timeout: connectTimeout) {
                case .connected(let fd):
                    return .connected(lease, fd)
                case .failed, .timedOut:
                    pool.release(lease)
                    if failed.isEmpty { failedSince = ProxyClock.now }
                    failed.insert(lease.id)
                    continue
                }
            }
            if !isWaiting {
                isWaiting = true
                beginWaiting()
            }
            let now = ProxyClock.now
            if now >= deadline { return .gaveUp(connectFailed: !failed.isEmpty) }
            if failed.isEmpty {
                pool.waitForChange(after: generation, until: deadline)
            } else {
                // Instances that refused may come back on the same port (a restart): try them
                // again every 50 ms, and at once when something else changes.
                let retryAt = failedSince + 0.05
                if now >= retryAt || !pool.waitForChange(after: generation, until: min(deadline, retryAt)) {
                    failed.removeAll()
                }
            }
        }
    }

    private func beginWaiting() {
        state.lock()
        waiting += 1
        let first = waiting == 1
        state.unlock()
        if first { onNoBackend() }
    }

    private func endWaiting() {
        state.lock()
        waiting -= 1
        state.unlock()
    }

    /// Tells a client that waited in vain, then closes: a 503 with `httpErrors`, else just the
    /// close. The client's request is read and discarded for up to a second after that, so the
    /// close is a clean FIN (unread input would turn it into a reset, which could also destroy
    /// the answer before the client reads it).
    private func refuse(_ client: Int32, reason: String) {
        state.lock()
        let answerHTTP = httpErrors
        state.unlock()
        if answerHTTP {
            let body = reason + "\n"
            let response = "HTTP/1.1 503 Service Unavailable\r\n"
                + "Content-Type: text/plain; charset=utf-8\r\n"
                + "Content-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body
            guard TCPSocket.sendAll(client, Array(response.utf8)) else { return }
        }
        TCPSocket.shutdownWrite(client)
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var scratch = [UInt8](repeating: 0, count: 4096)
        let deadline = ProxyClock.now + 1
        var total = 0
        while ProxyClock.now < deadline, total < 1 << 20 {
            let count = scratch.withUnsafeMutableBytes { TCPSocket.receive(client, $0.baseAddress!, $0.count) }
            if count <= 0 { break }
            total += count
        }
    }
}

/// One client connection and (once connected) its backend connection.
///
/// Both descriptors stay open until both relay directions are done, so ``abort()`` (which only
/// shuts them down, waking the threads blocked on them) never races a close and a reuse of the
/// number.
final class ProxyConnection: PoolConnection, @unchecked Sendable {
    let id: UInt64
    let client: Int32
    private let lock = NSLock()
    private var backend: Int32 = -1
    private var aborted = false
    private var closed = false
    private var directionsLeft = 2

    init(id: UInt64, client: Int32) {
        self.id = id
        self.client = client
    }

    var isAborted: Bool {
        lock.lock()
        defer { lock.unlock() }
        return aborted
    }

    func setBackend(_ fd: Int32) {
        lock.lock()
        defer { lock.unlock() }
        backend = fd
        if aborted { TCPSocket.shutdownBoth(fd) }
    }

    func abort() {
        lock.lock()
        defer { lock.unlock() }
        aborted = true
        guard !closed else { return }
        TCPSocket.shutdownBoth(client)
        if backend >= 0 { TCPSocket.shutdownBoth(backend) }
    }

    /// True for the second (last) direction to finish.
    func finishDirection() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        directionsLeft -= 1
        return directionsLeft == 0
    }

    func closeAll() {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        TCPSocket.close(client)
        if backend >= 0 { TCPSocket.close(backend) }
    }
}
