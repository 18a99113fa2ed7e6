import Foundation

/// `[http_service.concurrency]` / `[services.concurrency]` as the proxy applies it.
///
/// Locally the proxy counts open **connections** whatever the `type` (Fly's `requests` type
/// counts in-flight HTTP requests, which needs an HTTP-aware proxy; a byte-transparent one
/// cannot see them). `nil` limits mean no limit.
public struct ProxyConcurrency: Sendable, Equatable {
    /// Above it an instance is used only when every other one is above it too.
    public var softLimit: Int?
    /// At it an instance takes no new connection; clients wait for a free slot.
    public var hardLimit: Int?

    public init(softLimit: Int? = nil, hardLimit: Int? = nil) {
        self.softLimit = softLimit
        self.hardLimit = hardLimit
    }

    /// From fly.toml's concurrency table.
    public init(_ concurrency: Concurrency) {
        self.init(softLimit: concurrency.softLimit, hardLimit: concurrency.hardLimit)
    }
}

/// A proxied connection the pool can close (a drain that timed out).
protocol PoolConnection: AnyObject, Sendable {
    /// Closes both ends (wakes the relay threads; they release the lease).
    func abort()
}

/// A connection slot taken on one backend: counted in its open connections until released.
struct BackendLease: Sendable, Equatable {
    let id: String
    let port: Int
    let token: UInt64
}

/// The instances behind one proxy, and which of them takes the next connection.
///
/// A backend is *available* when it is added, healthy, not draining, and under `hard_limit`
/// open connections. The next connection goes to the available backend with the **fewest open
/// connections**, round-robin among equals (so an instance under `soft_limit` is always
/// preferred to one above it). Counts include connections still connecting.
///
/// Thread-safe; every call takes one lock for a few microseconds. Changes that can make a
/// backend available (add, healthy again, a connection closing) wake clients waiting in the
/// proxy for one.
public final class BackendPool: @unchecked Sendable {
    private final class Backend {
        let id: String
        var port: Int
        var healthy = true
        var draining = false
        /// Set when a drain timed out: connections that attach now are closed at once.
        var closing = false
        var open = 0
        var connections: [UInt64: any PoolConnection] = [:]
        var lastActivity: Double
        var drainWaiters: [DrainWaiter] = []

        init(id: String, port: Int, now: Double) {
            self.id = id
            self.port = port
            self.lastActivity = now
        }
    }

    /// Guarded by `condition`; a deploy may change it (``update(concurrency:)``).
    private var concurrency: ProxyConcurrency?
    private let condition = NSCondition()
    /// Insertion order, for round-robin.
    private var order: [Backend] = []
    private var byID: [String: Backend] = [:]
    /// Every lease still held, with the backend it counts against (which may have been removed).
    private var leases: [UInt64: Backend] = [:]
    private var nextToken: UInt64 = 1
    private var cursor = 0
    /// Bumped on every change a waiting client may care about (and ``observeChanges(_:)`` told).
    private var generation: UInt64 = 0

    /// Called, outside the lock, when a connection had to go to a backend at or over
    /// `soft_limit` because every available one is: the supervisor starts a stopped instance,
    /// as Fly's proxy does. At most once a second.
    private let onSaturated: (@Sendable () -> Void)?
    private var lastSaturated = -Double.infinity

    /// New limits (a deploy changed `[concurrency]`); waiting clients look again.
    public func update(concurrency: ProxyConcurrency?) {
        condition.lock()
        self.concurrency = concurrency
        changed()
        condition.unlock()
    }

    public init(concurrency: ProxyConcurrency? = nil, onSaturated: (@Sendable () -> Void)? = nil) {
        self.concurrency = concurrency
        self.onSaturated = onSaturated
    }

    /// Adds an instance listening on 127.0.0.1:`port`, in rotation at once (healthy until told
    /// otherwise). Adding an id that is already there (the instance restarted) updates its port
    /// and puts it back in rotation: healthy, no longer draining; its live connections still count.
    public func add(id: String, port: Int) {
        condition.lock()
        defer { condition.unlock() }
        let now = ProxyClock.now
        if let backend = byID[id] {
            backend.port = port
            backend.healthy = true
            backend.draining = false
            backend.closing = false
            backend.lastActivity = now
        } else {
            let backend = Backend(id: id, port: port, now: now)
            order.append(backend)
            byID[id] = backend
        }
        changed()
    }

    /// Out of rotation while failing its checks (open connections are left alone).
    public func setHealthy(_ id: String, _ healthy: Bool) {
        condition.lock()
        defer { condition.unlock() }
        guard let backend = byID[id], backend.healthy != healthy else { return }
        backend.healthy = healthy
        changed()
    }

    /// Forgets `id`. Its open connections are not closed (the instance is going away; they end
    /// with it) and a `drain` waiting on it returns.
    public func remove(_ id: String) {
        condition.lock()
        guard let backend = byID.removeValue(forKey: id) else {
            condition.unlock()
            return
        }
        if let index = order.firstIndex(where: { $0 === backend }) {
            order.remove(at: index)
            if cursor > index { cursor -= 1 }
        }
        let waiters = backend.drainWaiters
        backend.drainWaiters = []
        changed()
        condition.unlock()
        for waiter in waiters { waiter.finish() }
    }

    /// Takes `id` out of rotation and returns once its open connections are all closed, or after
    /// `timeout` seconds (then it closes them, and waits up to a second more for them to end).
    /// Used before a scale-down, a restart and a rolling restart, as Fly drains machines.
    /// The backend stays out of rotation until it is added again (or removed).
    public func drain(_ id: String, timeout: Double) async {
        let waiter = DrainWaiter()
        guard registerDrain(id, waiter) else { return }
        await waiter.wait(timeout: timeout)
        let toClose = closeAfterDrain(id, waiter)
        guard !toClose.isEmpty else { return }
        for connection in toClose { connection.abort() }
        let closed = DrainWaiter()
        guard registerDrain(id, closed) else { return }
        await closed.wait(timeout: 1)
        forgetDrain(id, closed)
    }

    private func forgetDrain(_ id: String, _ waiter: DrainWaiter) {
        condition.lock()
        defer { condition.unlock() }
        unregisterDrain(id, waiter)
    }

    /// Marks `id` draining; false when there is nothing to wait for.
    private func registerDrain(_ id: String, _ waiter: DrainWaiter) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let backend = byID[id] else { return false }
        if !backend.draining {
            backend.draining = true
            changed()
        }
        guard backend.open > 0 else { return false }
        backend.drainWaiters.append(waiter)
        return true
    }

    /// Call with the lock held.
    @discardableResult
    private func unregisterDrain(_ id: String, _ waiter: DrainWaiter) -> Backend? {
        guard let backend = byID[id] else { return nil }
        backend.drainWaiters.removeAll { $0 === waiter }
        return backend
    }

    /// After a drain's wait: the connections still open, which it must close.
    private func closeAfterDrain(_ id: String, _ waiter: DrainWaiter) -> [any PoolConnection] {
        condition.lock()
        defer { condition.unlock() }
        guard let backend = unregisterDrain(id, waiter), backend.draining, backend.open > 0 else { return [] }
        backend.closing = true
        return Array(backend.connections.values)
    }

    /// Open connections to `id` (0 for an unknown id).
    public func openConnections(_ id: String) -> Int {
        condition.lock()
        defer { condition.unlock() }
        return byID[id]?.open ?? 0
    }

    /// Seconds since `id` last had a connection open or close (or since it was added); 0 while
    /// it has connections open (a long-lived WebSocket is not idleness); nil for an unknown id.
    /// For auto-stop of idle instances.
    public func idleSeconds(_ id: String) -> Double? {
        condition.lock()
        defer { condition.unlock() }
        guard let backend = byID[id] else { return nil }
        if backend.open > 0 { return 0 }
        return max(0, ProxyClock.now - backend.lastActivity)
    }

    /// Every backend, in the order added.
    public var backendIDs: [String] {
        condition.lock()
        defer { condition.unlock() }
        return order.map(\.id)
    }

    /// Whether `id` would take a new connection now (for status and tests).
    public func isAvailable(_ id: String) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let backend = byID[id] else { return false }
        return available(backend)
    }

    // MARK: - For the proxy

    private func changed() {
        generation &+= 1
        condition.broadcast()
        for observer in observers { observer() }
    }

    /// Called, with the pool's lock held, on every change a waiting client may care about. An
    /// observer must not call back into the pool (the proxy only schedules work on its loops).
    private var observers: [@Sendable () -> Void] = []

    func observeChanges(_ observer: @escaping @Sendable () -> Void) {
        condition.lock()
        observers.append(observer)
        condition.unlock()
    }

    /// The generation now; a client that found no backend at an older one looks again.
    var currentGeneration: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return generation
    }

    private func available(_ backend: Backend) -> Bool {
        guard backend.healthy, !backend.draining else { return false }
        if let hard = concurrency?.hardLimit, hard > 0, backend.open >= hard { return false }
        return true
    }

    /// Takes a slot on the best available backend not in `excluded`, or nil; with the
    /// generation to compare with ``currentGeneration`` after registering as a waiter.
    func acquire(excluding excluded: Set<String> = []) -> (lease: BackendLease?, generation: UInt64) {
        var saturated = false
        defer { if saturated { onSaturated?() } }
        condition.lock()
        defer { condition.unlock() }
        let count = order.count
        var best = -1
        var bestOpen = Int.max
        if count > 0 {
            let start = cursor % count
            for step in 0..<count {
                let index = (start + step) % count
                let backend = order[index]
                guard backend.open < bestOpen, available(backend),
                      excluded.isEmpty || !excluded.contains(backend.id) else { continue }
                best = index
                bestOpen = backend.open
            }
        }
        guard best >= 0 else { return (nil, generation) }
        cursor = (best + 1) % count
        let backend = order[best]
        // The least loaded one is over soft_limit: so is every other.
        if let soft = concurrency?.softLimit, backend.open >= soft, onSaturated != nil, ProxyClock.now - lastSaturated >= 1 {
            lastSaturated = ProxyClock.now
            saturated = true
        }
        backend.open += 1
        backend.lastActivity = ProxyClock.now
        let token = nextToken
        nextToken += 1
        leases[token] = backend
        return (BackendLease(id: backend.id, port: backend.port, token: token), generation)
    }

    /// Registers the connection using `lease`, so a drain that times out can close it.
    /// Returns false when the backend is already being closed: the caller aborts it.
    func attach(_ lease: BackendLease, _ connection: any PoolConnection) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let backend = leases[lease.token] else { return false }
        if backend.closing { return false }
        backend.connections[lease.token] = connection
        return true
    }

    /// Gives back a slot.
    func release(_ lease: BackendLease) {
        condition.lock()
        guard let backend = leases.removeValue(forKey: lease.token) else {
            condition.unlock()
            return
        }
        backend.open -= 1
        backend.connections[lease.token] = nil
        backend.lastActivity = ProxyClock.now
        var waiters: [DrainWaiter] = []
        if backend.open == 0 {
            waiters = backend.drainWaiters
            backend.drainWaiters = []
        }
        changed()
        condition.unlock()
        for waiter in waiters { waiter.finish() }
    }

    /// Why no backend is available, for the 503's body.
    func unavailableReason() -> String {
        condition.lock()
        defer { condition.unlock() }
        if order.isEmpty { return "no instance of the app is running" }
        let inRotation = order.filter { $0.healthy && !$0.draining }
        if inRotation.isEmpty {
            return "no instance of the app is in rotation (failing health checks or draining)"
        }
        if let hard = concurrency?.hardLimit, hard > 0, inRotation.allSatisfy({ $0.open >= hard }) {
            return "every instance of the app is at its connection limit (hard_limit \(hard))"
        }
        return "no instance of the app is accepting connections"
    }
}

/// One `drain` call's wait: finished by the last connection closing, a removal, or the timeout.
final class DrainWaiter: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    private var finished = false

    func finish() {
        lock.lock()
        guard !finished else {
            lock.unlock()
            return
        }
        finished = true
        let continuation = self.continuation
        self.continuation = nil
        lock.unlock()
        continuation?.resume()
    }

    /// Returns when finished, or after `timeout` seconds.
    func wait(timeout: Double) async {
        let timer = Task { [self] in
            try? await Task.sleep(nanoseconds: UInt64(max(0, min(timeout, 1e9)) * 1e9))
            finish()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if finished {
                lock.unlock()
                continuation.resume()
            } else {
                self.continuation = continuation
                lock.unlock()
            }
        }
        timer.cancel()
    }
}
