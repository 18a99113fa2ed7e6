import Foundation

/// Whom a route's callbacks reach: the supervisor and the route itself, both weak, set when
/// the supervisor adopts the route. By identity, so a deploy that renames a service (two
/// services merged on one port) or replaces it keeps them working.
final class RouteOwner: @unchecked Sendable {
    private let lock = NSLock()
    private weak var owner: Supervisor?
    private weak var owned: Supervisor.Route?

    func adopt(by supervisor: Supervisor, route: Supervisor.Route) {
        lock.lock(); owner = supervisor; owned = route; lock.unlock()
    }

    var target: (Supervisor, Supervisor.Route)? {
        lock.lock(); defer { lock.unlock() }
        guard let owner, let owned else { return nil }
        return (owner, owned)
    }
}

/// Fly's edge on a laptop: the proxies in front of services, health checks, auto stop/start.
extension Supervisor {
    /// A service's proxy and pool. The pool is fed by instance lifecycle: added when started,
    /// marked unhealthy by failing service checks, drained before a stop, removed at exit.
    final class Route: @unchecked Sendable {
        /// Replaced by a deploy that keeps the proxy (same port); read on the actor only.
        var service: SupervisorPlan.Service
        let pool: BackendPool
        /// Set once, by ``Supervisor/openProxies()``, before any instance starts.
        var proxy: TCPProxy?
        /// Who the pool's saturation callback reaches.
        var owner: RouteOwner?

        init(service: SupervisorPlan.Service, pool: BackendPool) {
            self.service = service
            self.pool = pool
        }
    }

    /// A route for `service`. Its pool tells the supervisor when every instance is over
    /// `soft_limit` (through `owner`, once ``adopt(_:)`` ran).
    static func makeRoute(_ service: SupervisorPlan.Service) -> Route {
        let owner = RouteOwner()
        let route = Route(service: service, pool: BackendPool(concurrency: service.concurrency, onSaturated: {
            guard let (supervisor, route) = owner.target else { return }
            Task { await supervisor.routeSaturated(route) }
        }))
        route.owner = owner
        return route
    }

    /// Makes `route`'s callbacks reach this supervisor.
    func adopt(_ route: Route) {
        route.owner?.adopt(by: self, route: route)
    }

    /// A proxy for `route` on its service's port, started; its waiting clients reach this supervisor.
    func startProxy(for route: Route, port: Int) throws -> TCPProxy {
        let owner = route.owner
        let proxy = TCPProxy(port: port, pool: route.pool, waitForBackend: plan.proxyWait,
                             onNoBackend: {
                                 guard let (supervisor, route) = owner?.target else { return }
                                 Task { await supervisor.connectionWaiting(route) }
                             },
                             httpErrors: route.service.isHTTP, admission: proxyAdmission)
        try proxy.start()
        return proxy
    }

    func routes(serving group: String) -> [Route] {
        routes.filter { $0.service.groups.contains(group) }
    }

    /// Opens every service's proxy on 127.0.0.1. Call before ``start()``, so a port in use is
    /// reported before anything is spawned. Returns one line per proxy for the user.
    public func openProxies() throws -> [String] {
        var lines: [String] = []
        for route in routes {
            adopt(route)
            guard let port = route.service.listenPort else { continue }
            do {
                route.proxy = try startProxy(for: route, port: port)
            } catch {
                routes.forEach { $0.proxy?.stop() }
                throw error
            }
            lines.append("\(route.service.name): proxy on 127.0.0.1:\(route.proxy!.boundPort) → \(route.service.groups.joined(separator: ", "))")
        }
        return lines
    }

    /// A client waits at a proxy with no instance to take it: start a stopped one, whatever
    /// stopped it (idle, or an exit the restart policy left alone), as Fly's proxy does.
    func connectionWaiting(_ route: Route) {
        guard phase == .running, routes.contains(where: { $0 === route }), route.service.autoStart else { return }
        let candidates = instances.filter { route.service.groups.contains($0.group) && $0.wanted }
        if candidates.contains(where: { $0.state == .running || $0.state == .starting }) { return }
        startStoppedInstance(of: route, because: "a connection is waiting at \(route.service.name)")
    }

    /// Every running instance behind the route is at its `soft_limit`: start a stopped one.
    func routeSaturated(_ route: Route) {
        guard phase == .running, routes.contains(where: { $0 === route }), route.service.autoStart else { return }
        startStoppedInstance(of: route, because: "every running instance of \(route.service.name) is over its soft_limit")
    }

    /// Starts the first stopped instance behind `route`; false when there is none.
    @discardableResult
    private func startStoppedInstance(of route: Route, because reason: String) -> Bool {
        let stopped = instances.filter { inst in
            guard route.service.groups.contains(inst.group), inst.wanted, !inst.replacing else { return false }
            switch inst.state {
            case .stoppedIdle, .exited, .failed: return true
            default: return false
            }
        }
        guard let inst = stopped.first(where: { $0.state == .stoppedIdle }) ?? stopped.first else { return false }
        inst.consecutiveFailures = 0
        log.system("\(inst.name) starting: \(reason)")
        launch(inst)
        return true
    }

    /// Whether clients wait at `route`'s proxy: it has connections open but no instance to take them.
    func clientsAreWaiting(_ route: Route) -> Bool {
        route.service.autoStart && (route.proxy?.activeConnections ?? 0) > 0
            && !route.pool.backendIDs.contains(where: route.pool.isAvailable)
    }

    /// Auto-stop: instances of an `auto_stop_machines` service with no connection for the idle
    /// timeout are stopped, down to `min_machines_running`, highest index first.
    private func stopIdleInstances() {
        guard phase == .running else { return }
        for route in routes where route.service.autoStop {
            let running = instances.filter {
                route.service.groups.contains($0.group) && $0.wanted && !$0.replacing && $0.state == .running
                    && !$0.stoppingForIdle
            }.sorted { $0.index > $1.index }
            var left = running.count
            for inst in running where left > route.service.minRunning {
                guard route.pool.openConnections(inst.name) == 0,
                      let idle = route.pool.idleSeconds(inst.name), idle >= plan.idleTimeout else { continue }
                left -= 1
                inst.stoppingForIdle = true
                // Out of rotation first, so no connection is routed to it while it stops.
                for r in routes(serving: inst.group) { r.pool.remove(inst.name) }
                log.system("\(inst.name) has had no connections for \(formatSeconds(plan.idleTimeout.rounded())) — stopping it (auto_stop_machines)")
                let id = inst.id
                Task { await self.stop(id: id, drain: false) }
            }
        }
    }

    func startIdleWatch() {
        guard idleWatch == nil, routes.contains(where: { $0.service.autoStop }) else { return }
        let every = min(max(plan.idleTimeout / 4, 0.05), 30)
        idleWatch = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(every * 1e9))
                await self?.stopIdleInstances()
            }
        }
    }

    // MARK: - Health checks

    /// Starts the instance's checks, each on the instance's own port where it probes the service's.
    func startHealthChecks(_ inst: Instance) {
        let specs = plan.checks.filter { $0.groups.contains(inst.group) }.map { check -> HealthCheckSpec in
            var spec = check.spec
            if check.usesInstancePort { spec.port = inst.port }
            return spec
        }
        guard !specs.isEmpty else { return }
        let (id, generation) = (inst.id, inst.generation)
        let monitor = HealthMonitor(instance: inst.name, checks: specs) { [weak self] _ in
            Task { await self?.healthChanged(id: id, generation: generation) }
        }
        inst.monitor = monitor
        inst.checks = monitor.results
        monitor.start()
    }

    func stopHealthChecks(_ inst: Instance) {
        inst.monitor?.stop()
        inst.monitor = nil
        inst.checks = []
    }

    /// A check changed. The monitor's current results are the truth: notifications hop here
    /// through separate tasks and may arrive out of order.
    private func healthChanged(id: Int, generation: Int) {
        guard let inst = instance(id: id), inst.generation == generation, let monitor = inst.monitor else { return }
        let now = monitor.results
        for (before, after) in zip(inst.checks, now) where after.status != before.status {
            // Logged once per change of state, not every interval; a first result only when failing.
            if before.status != .pending || after.status == .failing {
                log.system("\(inst.name) check \(after.name) is \(after.status.rawValue) (\(after.detail))")
            }
        }
        inst.checks = now
        let gating = Set(plan.checks.filter { $0.gatesTraffic && $0.groups.contains(inst.group) }.map(\.spec.name))
        let healthy = !inst.checks.contains { gating.contains($0.name) && $0.status == .failing }
        for route in routes(serving: inst.group) where !inst.stoppingForIdle {
            route.pool.setHealthy(inst.name, healthy)
        }
    }
}
