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
/// half-close relayed both ways and any error on either side closing both. The backend is chosen
/// by the ``BackendPool`` before a single byte is read from the client, so a connect that fails
/// (an instance that just died) is retried on another instance and the client never notices.
/// When no instance is available the client waits up to `waitForBackend` seconds for one (any
/// change in the pool wakes it), `onNoBackend` firing once per waiting episode so the supervisor
/// can start one; if none comes it gets a `503 Service Unavailable` (with `httpErrors`) or a
/// plain close.
///
/// **Threading: a few event loops, not threads per connection.** The listener and every
/// connection are handlers on the process's ``ProxyLoop``s (one per core, at most four), with
/// nonblocking sockets, `splice(2)` on Linux and explicit timeouts (``ProxyTimeouts``). So an
/// idle connection costs two descriptors and no thread, a silent backend or a slowloris client
/// holds nothing but its descriptors until its timeout, and the number of connections open at
/// once is bounded by ``ProxyAdmission`` — from the open-file limit, with a reserve — so clients
/// can never starve the supervisor of descriptors: at the limit, new clients wait in the listen
/// backlog. ``ProxyConnection`` has the per-connection state machine.
public final class TCPProxy: @unchecked Sendable {
    private let requestedPort: Int
    private let pool: BackendPool
    private let waitForBackend: Double
    private let onNoBackend: @Sendable () -> Void
    private let timeouts: ProxyTimeouts
    private let admission: ProxyAdmission
    /// False: relay by copying even where `splice` is available (tests cover both paths on Linux).
    /// Set before ``start()``.
    var spliceAllowed = true
    /// `SWIFTPROC_PROXY_NO_SPLICE` set: always relay by copying (to rule `splice` out when
    /// troubleshooting, and to compare the two).
    private static let spliceDisabled = ProcessInfo.processInfo.environment["SWIFTPROC_PROXY_NO_SPLICE"] != nil

    private let state = NSCondition()
    // Guarded by `state`.
    private var httpErrors: Bool
    private var port = 0
    private var started = false
    private var stopped = false
    private var accepting = false
    private var connections: [UInt64: ProxyConnection] = [:]
    private var nextConnectionID: UInt64 = 1
    /// Clients waiting for a backend; `onNoBackend` fires when it goes from 0 to 1.
    private var waiters: [UInt64: ProxyConnection] = [:]

    /// The listening socket and the loop that accepts on it.
    private var listener: ProxyListener?

    /// - Parameters:
    ///   - port: the port to listen on (on 127.0.0.1); 0 for an ephemeral one (see ``boundPort``).
    ///   - waitForBackend: how long a client waits for an available instance before giving up.
    ///   - onNoBackend: called (on a proxy loop) when a client starts waiting and no other client
    ///     was already waiting.
    ///   - httpErrors: answer a client that waited in vain with an HTTP 503 (else just close).
    ///   - connectTimeout: how long a connect to one instance may take before the next is tried
    ///     (overrides `timeouts.connect`).
    ///   - timeouts: idle and silent-backend timeouts.
    ///   - admission: the connection limit shared with the supervisor's other proxies.
    public init(port: Int, pool: BackendPool, waitForBackend: Double = 30,
                onNoBackend: @escaping @Sendable () -> Void = {}, httpErrors: Bool = true,
                connectTimeout: Double? = nil, timeouts: ProxyTimeouts = ProxyTimeouts(),
                admission: ProxyAdmission = .shared) {
        self.requestedPort = port
        self.pool = pool
        self.waitForBackend = waitForBackend
        self.onNoBackend = onNoBackend
        self.httpErrors = httpErrors
        var timeouts = timeouts
        if let connectTimeout { timeouts.connect = connectTimeout }
        self.timeouts = timeouts
        self.admission = admission
    }

    deinit {
        // Dropped without ``stop()``: the listener must not outlive it on its loop.
        if let listener { listener.loop.execute { listener.close() } }
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
        let loop = ProxyLoop.next()
        guard loop.isUsable else {
            throw ProxyError(port: requestedPort, description: "cannot start the proxy: no event loop (out of file descriptors?)")
        }
        let fd: Int32
        do {
            fd = try TCPSocket.listen(port: requestedPort)
        } catch {
            if error.code == EADDRINUSE { throw ProxyError.portInUse(requestedPort) }
            throw ProxyError(port: requestedPort,
                             description: "cannot listen on 127.0.0.1:\(requestedPort): \(error.description)")
        }
        TCPSocket.setNonBlocking(fd, true)
        port = TCPSocket.localPort(fd)
        started = true
        accepting = true
        let listener = ProxyListener(fd: fd, loop: loop, proxy: self)
        self.listener = listener
        pool.observeChanges { [weak self] in self?.poolChanged() }
        loop.execute { listener.resume() }
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

    var answersHTTP: Bool {
        state.lock()
        defer { state.unlock() }
        return httpErrors
    }

    var isStopped: Bool {
        state.lock()
        defer { state.unlock() }
        return stopped
    }

    /// Stops accepting new clients (the listening socket closes, so a new client is refused at
    /// once) but keeps relaying the open connections — Fly's drain at shutdown: the instances get
    /// their kill signal and finish what they were answering. ``stop()`` closes what is left.
    public func stopAccepting() {
        state.lock()
        let listener = accepting ? self.listener : nil
        accepting = false
        state.unlock()
        guard let listener else { return }
        admission.forget(self)
        if listener.loop.isCurrent {
            listener.close()
        } else {
            listener.loop.execute { listener.close() }
            listener.waitUntilClosed()
        }
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

    /// Stops listening, closes every connection, and returns once they are closed (at most a
    /// couple of seconds: nothing on a loop blocks).
    public func stop() {
        state.lock()
        guard started, !stopped else {
            state.unlock()
            return
        }
        stopped = true
        let open = Array(connections.values)
        state.unlock()
        stopAccepting()
        for connection in open { connection.abort() }
        let deadline = Date().addingTimeInterval(2)
        state.lock()
        while !connections.isEmpty {
            if !state.wait(until: deadline) { break }
        }
        state.unlock()
    }

    // MARK: - For the listener and connections

    /// Takes a slot for a connection about to be accepted; false at the limit (the listener is
    /// then resumed when one frees up).
    func admit() -> Bool {
        admission.admit(pausing: self)
    }

    func unadmit() {
        admission.release()
    }

    /// A slot freed up after the listener paused at the limit.
    func resumeAccepting() {
        state.lock()
        let listener = accepting ? self.listener : nil
        state.unlock()
        guard let listener else { return }
        listener.loop.execute { listener.resume() }
    }

    /// Registers an accepted client and starts it on a loop; false when the proxy stopped.
    func accepted(_ fd: Int32) -> Bool {
        TCPSocket.setNoDelay(fd)
        let loop = ProxyLoop.next()
        state.lock()
        guard !stopped else {
            state.unlock()
            return false
        }
        let connection = ProxyConnection(id: nextConnectionID, client: fd, loop: loop, proxy: self, pool: pool,
                                         timeouts: timeouts, waitForBackend: waitForBackend,
                                         useSplice: spliceAllowed && !Self.spliceDisabled)
        nextConnectionID += 1
        connections[connection.id] = connection
        state.unlock()
        if loop.isCurrent {
            connection.begin()
        } else {
            loop.execute { connection.begin() }
        }
        return true
    }

    func connectionClosed(_ connection: ProxyConnection) {
        state.lock()
        let removed = connections.removeValue(forKey: connection.id) != nil
        state.broadcast()
        state.unlock()
        if removed { admission.release() }
    }

    func beginWaiting(_ connection: ProxyConnection) {
        state.lock()
        waiters[connection.id] = connection
        let first = waiters.count == 1
        state.unlock()
        if first { onNoBackend() }
    }

    func endWaiting(_ connection: ProxyConnection) {
        state.lock()
        waiters[connection.id] = nil
        state.unlock()
    }

    /// Called with the pool's lock held: only schedules work on the waiters' loops.
    private func poolChanged() {
        state.lock()
        let waiting = waiters.isEmpty ? [] : Array(waiters.values)
        state.unlock()
        for connection in waiting { connection.poolChanged() }
    }
}

/// A proxy's listening socket, accepting on one loop while the admission allows.
final class ProxyListener: LoopHandler, @unchecked Sendable {
    let loop: ProxyLoop
    private let fd: Int32
    /// Weak: a proxy dropped without ``TCPProxy/stop()`` closes its listener from `deinit`.
    private weak var proxy: TCPProxy?
    // Loop thread only.
    private var closed = false
    private var retryAt = Double.infinity
    // For ``waitUntilClosed()``.
    private let done = NSCondition()
    private var isClosed = false

    init(fd: Int32, loop: ProxyLoop, proxy: TCPProxy) {
        self.fd = fd
        self.loop = loop
        self.proxy = proxy
    }

    /// Watches for clients again (on the loop).
    func resume() {
        guard !closed else { return }
        loop.watch(fd, by: self, read: true, write: false)
    }

    func handle(_ event: PollEvent) {
        guard !closed else { return }
        guard let proxy else { return close() }
        while true {
            guard proxy.admit() else {
                // At the connection limit: leave clients in the backlog until one closes.
                loop.watch(fd, by: self, read: false, write: false)
                return
            }
            switch TCPSocket.accept(fd, nonBlocking: true) {
            case .success(let client):
                if !proxy.accepted(client) {
                    TCPSocket.close(client)
                    proxy.unadmit()
                    return
                }
            case .failure(let error):
                proxy.unadmit()
                if error.code == EMFILE || error.code == ENFILE || error.code == ENOBUFS || error.code == ENOMEM {
                    // Out of descriptors all the same (something else holds them): retry shortly
                    // instead of spinning on a backlog that cannot be taken.
                    loop.watch(fd, by: self, read: false, write: false)
                    retryAt = ProxyClock.now + 0.1
                    loop.wake(self, at: retryAt)
                }
                return
            }
        }
    }

    func deadlineReached(now: Double) -> Double {
        guard !closed, retryAt != .infinity else { return .infinity }
        if now < retryAt { return retryAt }
        retryAt = .infinity
        resume()
        return .infinity
    }

    /// Closes the listening socket (on the loop), so new clients are refused at once.
    func close() {
        if !closed {
            closed = true
            loop.cancelDeadlines(self)
            loop.forget(fd)
            TCPSocket.close(fd)
        }
        done.lock()
        isClosed = true
        done.broadcast()
        done.unlock()
    }

    func waitUntilClosed() {
        done.lock()
        defer { done.unlock() }
        let deadline = Date().addingTimeInterval(5)
        while !isClosed {
            if !done.wait(until: deadline) { break }
        }
    }
}
