import Foundation

/// Runs one instance's health checks (against 127.0.0.1) until stopped.
///
/// `onChange` is called once at a check's first reported result and then only when it flips
/// between passing and failing (not at every interval; a changed detail alone, `HTTP 500` →
/// `HTTP 503`, updates ``results`` silently). Before the check's grace period has elapsed
/// (counted from ``start()``) a failure is not reported: the check stays *pending* (Fly's
/// warming-up state), and when the grace period ends without a pass it is probed again at once,
/// so a failure is then reported without waiting a whole interval. A pass is reported at any time.
///
/// Probing starts at ``start()`` and then every `interval`. All monitors share one scheduler
/// thread that drives nonblocking probes with `poll` (see ``HealthScheduler``), so 200 monitors
/// cost one thread, and nothing at all while no probe is due. `onChange` runs on a serial queue
/// of the monitor's, in order, never on that thread.
public final class HealthMonitor: @unchecked Sendable {
    public let instance: String
    public let checks: [HealthCheckSpec]
    private let onChange: @Sendable (HealthResult) -> Void
    private let queue: DispatchQueue
    private let scheduler: HealthScheduler
    private let lock = NSLock()
    private var states: [HealthResult]
    private var entries: [UInt64] = []
    private var started = false
    private var stopped = false
    private static let queueKey = DispatchSpecificKey<ObjectIdentifier>()

    public convenience init(instance: String, checks: [HealthCheckSpec],
                            onChange: @escaping @Sendable (HealthResult) -> Void) {
        self.init(instance: instance, checks: checks, scheduler: .shared, onChange: onChange)
    }

    /// With a scheduler of its own (tests).
    init(instance: String, checks: [HealthCheckSpec], scheduler: HealthScheduler,
         onChange: @escaping @Sendable (HealthResult) -> Void) {
        self.scheduler = scheduler
        self.instance = instance
        self.checks = checks
        self.onChange = onChange
        self.queue = DispatchQueue(label: "swiftproc.health.\(instance)")
        queue.setSpecific(key: Self.queueKey, value: ObjectIdentifier(queue))
        self.states = checks.map {
            HealthResult(instance: instance, name: $0.name, status: .pending, detail: "not checked yet")
        }
    }

    /// Starts probing (once; a stopped monitor stays stopped). The scheduler holds the monitor
    /// weakly: one released without ``stop()`` is dropped at its next due probe.
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard !started, !stopped else { return }
        started = true
        entries = scheduler.register(self, checks: checks)
    }

    /// Stops probing; no `onChange` call starts after this returns (and, unless called from
    /// `onChange` itself, none is still running).
    public func stop() {
        lock.lock()
        stopped = true
        let entries = self.entries
        self.entries = []
        lock.unlock()
        scheduler.unregister(entries)
        // Let a delivery already running finish (queued ones see `stopped` and do nothing).
        if DispatchQueue.getSpecific(key: Self.queueKey) != ObjectIdentifier(queue) {
            queue.sync {}
        }
    }

    /// The current state of every check, in the order given.
    public var results: [HealthResult] {
        lock.lock()
        defer { lock.unlock() }
        return states
    }

    /// Whether every check is passing (true with no checks).
    public var allPassing: Bool {
        results.allSatisfy(\.passing)
    }

    /// A probe's outcome, from the scheduler thread. `inGrace`: the check's grace period has not
    /// elapsed yet.
    func record(check index: Int, passed: Bool, detail: String, inGrace: Bool) {
        lock.lock()
        guard !stopped, states.indices.contains(index) else {
            lock.unlock()
            return
        }
        let previous = states[index].status
        let status: HealthResult.Status
        if passed {
            status = .passing
        } else if inGrace {
            status = previous // a failure within the grace period is not reported
        } else {
            status = .failing
        }
        states[index].status = status
        states[index].detail = status == .pending && !passed ? "in grace period: \(detail)" : detail
        let result = states[index]
        lock.unlock()
        guard status != previous else { return }
        queue.async { [self] in
            lock.lock()
            let live = !stopped
            lock.unlock()
            if live { onChange(result) }
        }
    }
}
