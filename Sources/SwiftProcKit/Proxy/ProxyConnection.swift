import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The proxy's timeouts. Generous by default: a laptop's app may think for a while, and a
/// WebSocket may stay quiet for minutes.
public struct ProxyTimeouts: Sendable, Equatable {
    /// A connect to one instance; then the next one is tried.
    public var connect: Double
    /// No byte either way for this long closes the connection (a forgotten keep-alive, a
    /// client that connected and never spoke).
    public var idle: Double
    /// The client sent bytes and the instance has not sent one since for this long: the
    /// instance accepted but is not answering (hung, or a slow client's request never completes).
    public var silentBackend: Double

    public init(connect: Double = 5, idle: Double = 900, silentBackend: Double = 300) {
        self.connect = connect
        self.idle = idle
        self.silentBackend = silentBackend
    }
}

/// One client connection and, once connected, its backend connection: a state machine run by
/// one ``ProxyLoop`` (every method but ``abort()`` runs on that loop's thread).
///
/// Phases: *choosing* a backend → *connecting* (nonblocking; a refusal or the connect timeout
/// tries the next instance) or *waiting* (no instance available: woken by any change in the
/// pool, and every 50 ms while the only instances refused) → *relaying* both directions →
/// closed; or *refusing* (a 503 or a plain close after the wait) → closed.
///
/// Relaying moves at most ``ProxyLoop/chunkSize`` at a time per direction, with `splice` where
/// the loop can (else through the loop's scratch buffer), and keeps only what the destination
/// could not take yet — then it stops reading that direction's source until it has: TCP's own
/// back-pressure, and at most one chunk buffered per direction. End of file is passed on as a
/// half-close (`shutdown(SHUT_WR)`), and any error on either side closes both.
final class ProxyConnection: LoopHandler, PoolConnection, @unchecked Sendable {
    let id: UInt64
    let loop: ProxyLoop
    private let proxy: TCPProxy
    private let pool: BackendPool
    private let timeouts: ProxyTimeouts
    private let useSplice: Bool
    let client: Int32
    private var backend: Int32 = -1
    private var lease: BackendLease?

    private enum Phase { case choosing, connecting, waiting, relaying, refusing, closed }
    private var phase = Phase.choosing
    /// When the current connect or refusal ends.
    private var phaseDeadline = Double.infinity
    /// When a waiting client gives up.
    private let waitDeadline: Double
    /// Instances whose connect failed during this wait (retried 50 ms after the first failure).
    private var failedBackends = Set<String>()
    private var failedSince = 0.0
    private var isWaiting = false
    private var refusedBytes = 0

    /// A direction's state: bytes its destination has not taken yet, and its end.
    private struct Flow {
        var pending: [UInt8] = []
        var pendingOffset = 0
        /// The source reached end of file (passed on once `pending` is written).
        var sourceEnded = false
        /// Half-closed towards the destination: nothing more will move this way.
        var done = false
        var hasPending: Bool { pendingOffset < pending.count }
        var canRead: Bool { !sourceEnded && !hasPending }
    }
    private var up = Flow()   // client → backend
    private var down = Flow() // backend → client
    private var lastActivity: Double
    /// Since when the client's bytes have gone unanswered (nil: answered, or none sent).
    private var unansweredSince: Double?

    init(id: UInt64, client: Int32, loop: ProxyLoop, proxy: TCPProxy, pool: BackendPool,
         timeouts: ProxyTimeouts, waitForBackend: Double, useSplice: Bool) {
        self.id = id
        self.client = client
        self.loop = loop
        self.proxy = proxy
        self.pool = pool
        self.timeouts = timeouts
        self.useSplice = useSplice
        let now = ProxyClock.now
        lastActivity = now
        waitDeadline = now + waitForBackend
    }

    // MARK: - From other threads

    /// Closes both sides (a drain that timed out, the proxy stopping).
    func abort() {
        loop.execute { [self] in close() }
    }

    /// The pool changed: a waiting client looks again.
    func poolChanged() {
        loop.execute { [self] in
            if phase == .waiting { chooseBackend() }
        }
    }

    // MARK: - Choosing and connecting

    /// Starts the connection (on its loop).
    func begin() {
        chooseBackend()
    }

    private func chooseBackend() {
        if proxy.isStopped { return close() }
        let (lease, generation) = pool.acquire(excluding: failedBackends)
        guard let lease else { return waitForBackend(generation) }
        self.lease = lease
        do {
            let started = try TCPSocket.startConnect(port: lease.port)
            backend = started.fd
            if started.status == 0 {
                connected()
            } else {
                phase = .connecting
                phaseDeadline = ProxyClock.now + timeouts.connect
                loop.watch(backend, by: self, read: false, write: true)
                loop.wake(self, at: phaseDeadline)
            }
        } catch {
            connectFailed()
        }
    }

    private func connectFailed() {
        if backend >= 0 {
            loop.forget(backend)
            TCPSocket.close(backend)
            backend = -1
        }
        if let lease {
            pool.release(lease)
            if failedBackends.isEmpty { failedSince = ProxyClock.now }
            failedBackends.insert(lease.id)
            self.lease = nil
        }
        chooseBackend()
    }

    private func waitForBackend(_ generation: UInt64) {
        let now = ProxyClock.now
        if now >= waitDeadline {
            return refuse(reason: failedBackends.isEmpty ? pool.unavailableReason()
                                                         : "no instance of the app is accepting connections")
        }
        phase = .waiting
        if !isWaiting {
            isWaiting = true
            proxy.beginWaiting(self)
        }
        // Instances that refused may come back on the same port (a restart): try them again
        // every 50 ms, and at once when something else changes.
        var deadline = waitDeadline
        if !failedBackends.isEmpty {
            if now >= failedSince + 0.05 {
                failedBackends.removeAll()
                return chooseBackend()
            }
            deadline = min(deadline, failedSince + 0.05)
        }
        phaseDeadline = deadline
        loop.wake(self, at: deadline)
        // A change between `acquire` and registering as a waiter would be missed: look again.
        if pool.currentGeneration != generation { chooseBackend() }
    }

    private func stopWaiting() {
        guard isWaiting else { return }
        isWaiting = false
        proxy.endWaiting(self)
    }

    private func connected() {
        stopWaiting()
        TCPSocket.setNoDelay(backend)
        guard let lease, pool.attach(lease, self) else { return close() }
        phase = .relaying
        phaseDeadline = .infinity
        lastActivity = ProxyClock.now
        updateInterest()
        loop.wake(self, at: relayDeadline())
    }

    // MARK: - Events

    func handle(_ event: PollEvent) {
        switch phase {
        case .connecting:
            guard event.fd == backend, event.writable || event.failed else { return }
            if TCPSocket.pendingError(backend) == 0 {
                connected()
            } else {
                connectFailed()
            }
        case .relaying:
            // A side's readability feeds its own direction; its writability drains the other one.
            let isClient = event.fd == client
            guard isClient || event.fd == backend else { return }
            if event.readable || event.failed, !pump(upstream: isClient) { return close() }
            if event.writable || event.failed, !pump(upstream: !isClient) { return close() }
            if up.done && down.done { return close() }
            updateInterest()
        case .refusing:
            guard event.fd == client else { return }
            discardRefusedInput()
        case .choosing, .waiting, .closed:
            return
        }
    }

    func deadlineReached(now: Double) -> Double {
        switch phase {
        case .connecting:
            if now >= phaseDeadline { connectFailed() }
        case .waiting:
            if now >= phaseDeadline { chooseBackend() }
        case .refusing:
            if now >= phaseDeadline { close() }
        case .relaying:
            if now >= relayDeadline() { close() }
        case .choosing, .closed:
            return .infinity
        }
        switch phase {
        case .connecting, .waiting, .refusing: return phaseDeadline
        case .relaying: return relayDeadline()
        case .choosing, .closed: return .infinity
        }
    }

    /// When the relay times out: idle either way, or the client's bytes unanswered.
    private func relayDeadline() -> Double {
        var deadline = lastActivity + timeouts.idle
        if let since = unansweredSince { deadline = min(deadline, since + timeouts.silentBackend) }
        return deadline
    }

    // MARK: - Relaying

    /// Watches each side for what its two directions can do next.
    private func updateInterest() {
        loop.watch(client, by: self, read: !up.done && up.canRead, write: down.hasPending)
        loop.watch(backend, by: self, read: !down.done && down.canRead, write: up.hasPending)
    }

    /// Moves what it can from `source` to `destination`: first what is pending, then up to
    /// 256 KiB more (then other connections get their turn; level-triggered readiness brings
    /// it back).
    /// Returns false when the connection must close (an error on either side).
    private func pump(upstream: Bool) -> Bool {
        var flow = upstream ? up : down
        defer { if upstream { up = flow } else { down = flow } }
        let (source, destination) = upstream ? (client, backend) : (backend, client)
        guard !flow.done else { return true }
        if flow.hasPending {
            guard flushPending(&flow, to: destination) else { return false }
            if flow.hasPending { return true }
        }
        var budget = 4
        while flow.canRead && budget > 0 {
            budget -= 1
            switch move(from: source, to: destination, into: &flow) {
            case .moved(let count):
                noteActivity(count, upstream: upstream)
            case .wouldBlock:
                budget = 0
            case .endOfFile:
                flow.sourceEnded = true
            case .failed:
                return false
            }
        }
        if flow.sourceEnded && !flow.hasPending {
            TCPSocket.shutdownWrite(destination)
            flow.done = true
        }
        return true
    }

    private func noteActivity(_ count: Int, upstream: Bool) {
        guard count > 0 else { return }
        lastActivity = ProxyClock.now
        if upstream {
            if unansweredSince == nil {
                unansweredSince = lastActivity
                // The relay's deadline just moved earlier: make sure the loop wakes for it.
                loop.wake(self, at: lastActivity + timeouts.silentBackend)
            }
        } else {
            unansweredSince = nil
        }
    }

    private enum Move { case moved(Int), wouldBlock, endOfFile, failed }

    /// One chunk: read (or splice) from `source`, write (or splice) to `destination`, and keep
    /// in `flow.pending` whatever `destination` did not take.
    private func move(from source: Int32, to destination: Int32, into flow: inout Flow) -> Move {
        if useSplice, let pipe = loop.splicePipe, pipe.works {
            let count = pipe.splice(from: source, to: pipe.write, count: ProxyLoop.chunkSize)
            if count > 0 {
                var sent = 0
                while sent < count {
                    let moved = pipe.splice(from: pipe.read, to: destination, count: count - sent)
                    if moved > 0 {
                        sent += moved
                    } else if moved < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                        break
                    } else {
                        // The destination is gone: empty the shared pipe before giving up.
                        drain(pipe, count - sent)
                        return .failed
                    }
                }
                if sent < count, !keepPending(from: pipe, count - sent, in: &flow) { return .failed }
                return .moved(count)
            }
            if count == 0 { return .endOfFile }
            if errno == EAGAIN || errno == EWOULDBLOCK { return .wouldBlock }
            if errno == EINVAL || errno == ENOSYS {
                pipe.works = false // not on these descriptors: copy from now on
            } else {
                return .failed
            }
        }
        let count = TCPSocket.receive(source, loop.scratch, ProxyLoop.chunkSize)
        if count == 0 { return .endOfFile }
        if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK ? .wouldBlock : .failed }
        let sent = TCPSocket.sendSome(destination, loop.scratch, count)
        if sent < 0 { return .failed }
        if sent < count {
            flow.pending = Array(UnsafeRawBufferPointer(start: loop.scratch + sent, count: count - sent))
            flow.pendingOffset = 0
        }
        return .moved(count)
    }

    /// Reads `count` bytes left in the shared pipe into `flow.pending`.
    private func keepPending(from pipe: SplicePipe, _ count: Int, in flow: inout Flow) -> Bool {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { read(pipe.read, $0.baseAddress! + got, count - got) }
            if n > 0 {
                got += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        flow.pending = bytes
        flow.pendingOffset = 0
        return true
    }

    private func drain(_ pipe: SplicePipe, _ count: Int) {
        var left = count
        while left > 0 {
            let n = read(pipe.read, loop.scratch, min(left, ProxyLoop.chunkSize))
            if n > 0 { left -= n } else if n < 0 && errno == EINTR { continue } else { break }
        }
    }

    /// Writes what is pending; false when the destination is gone.
    private func flushPending(_ flow: inout Flow, to destination: Int32) -> Bool {
        let count = flow.pending.count - flow.pendingOffset
        let sent = flow.pending.withUnsafeBytes { TCPSocket.sendSome(destination, $0.baseAddress! + flow.pendingOffset, count) }
        if sent < 0 { return false }
        flow.pendingOffset += sent
        if !flow.hasPending {
            flow.pending = []
            flow.pendingOffset = 0
        }
        return true
    }

    // MARK: - Refusing

    /// Tells a client that waited in vain, then closes: a 503 for HTTP services, else just the
    /// close. Its request is read and discarded for up to a second after that, so the close is
    /// a clean FIN (unread input would turn it into a reset, which could also destroy the
    /// answer before the client reads it).
    private func refuse(reason: String) {
        stopWaiting()
        phase = .refusing
        if proxy.answersHTTP {
            let body = reason + "\n"
            let response = "HTTP/1.1 503 Service Unavailable\r\n"
                + "Content-Type: text/plain; charset=utf-8\r\n"
                + "Content-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body
            let bytes = Array(response.utf8)
            // A fresh socket's send buffer takes a few hundred bytes at once.
            _ = bytes.withUnsafeBytes { TCPSocket.sendSome(client, $0.baseAddress!, $0.count) }
        }
        TCPSocket.shutdownWrite(client)
        phaseDeadline = ProxyClock.now + 1
        loop.watch(client, by: self, read: true, write: false)
        loop.wake(self, at: phaseDeadline)
    }

    private func discardRefusedInput() {
        while true {
            let count = TCPSocket.receive(client, loop.scratch, ProxyLoop.chunkSize)
            if count > 0 {
                refusedBytes += count
                if refusedBytes >= 1 << 20 { return close() }
            } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                return
            } else {
                return close()
            }
        }
    }

    // MARK: - Closing

    /// Closes both sides and gives everything back (once).
    private func close() {
        guard phase != .closed else { return }
        phase = .closed
        stopWaiting()
        loop.cancelDeadlines(self)
        loop.forget(client)
        TCPSocket.close(client)
        if backend >= 0 {
            loop.forget(backend)
            TCPSocket.close(backend)
            backend = -1
        }
        if let lease {
            self.lease = nil
            pool.release(lease)
        }
        up.pending = []
        down.pending = []
        proxy.connectionClosed(self)
    }
}
