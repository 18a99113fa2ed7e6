import Foundation
import Testing
@testable import SwiftProcKit

/// The pool's choices, without sockets.
@Suite struct ProxyBackendPoolTests {
    private func take(_ pool: BackendPool, _ count: Int) -> [BackendLease] {
        (0..<count).compactMap { _ in pool.acquire().lease }
    }

    @Test func roundRobinAmongEqualsAndFewestConnectionsFirst() {
        let pool = BackendPool(concurrency: nil)
        pool.add(id: "app.1", port: 1001)
        pool.add(id: "app.2", port: 1002)
        pool.add(id: "app.3", port: 1003)
        let first = take(pool, 6)
        #expect(first.map(\.id) == ["app.1", "app.2", "app.3", "app.1", "app.2", "app.3"])
        #expect(first.map(\.port) == [1001, 1002, 1003, 1001, 1002, 1003])
        // app.2 loses both its connections: it has the fewest, so it takes the next two.
        pool.release(first[1])
        pool.release(first[4])
        #expect(pool.openConnections("app.2") == 0)
        #expect(take(pool, 2).map(\.id) == ["app.2", "app.2"])
        #expect(take(pool, 3).map(\.id).sorted() == ["app.1", "app.2", "app.3"])
    }

    @Test func unhealthyAndDrainingBackendsAreOutOfRotation() async {
        let pool = BackendPool(concurrency: nil)
        pool.add(id: "a", port: 1)
        pool.add(id: "b", port: 2)
        pool.setHealthy("a", false)
        #expect(!pool.isAvailable("a"))
        pool.setHealthy("b", false)
        #expect(pool.unavailableReason() == "no instance of the app is in rotation (failing health checks or draining)")
        pool.setHealthy("b", true)
        #expect(take(pool, 3).map(\.id) == ["b", "b", "b"])
        pool.setHealthy("a", true)
        #expect(pool.acquire().lease?.id == "a")
        await pool.drain("b", timeout: 0) // returns at once (it closes nothing: no connection attached)
        #expect(!pool.isAvailable("b"))
        #expect(take(pool, 2).map(\.id) == ["a", "a"])
        // Adding it again (a restart) puts it back in rotation.
        pool.add(id: "b", port: 3)
        #expect(pool.isAvailable("b"))
        #expect(pool.acquire(excluding: ["a"]).lease?.port == 3)
    }

    @Test func hardLimitMakesABackendUnavailableAndSoftLimitIsPreferred() {
        let pool = BackendPool(concurrency: ProxyConcurrency(softLimit: 1, hardLimit: 2))
        pool.add(id: "a", port: 1)
        pool.add(id: "b", port: 2)
        let leases = take(pool, 4)
        #expect(leases.map(\.id) == ["a", "b", "a", "b"])
        #expect(pool.acquire().lease == nil)
        #expect(!pool.isAvailable("a") && !pool.isAvailable("b"))
        #expect(pool.unavailableReason() == "every instance of the app is at its connection limit (hard_limit 2)")
        pool.release(leases[0])
        #expect(pool.acquire().lease?.id == "a")
    }

    @Test func removeForgetsABackendAndLateReleasesAreHarmless() {
        let pool = BackendPool(concurrency: nil)
        pool.add(id: "a", port: 1)
        pool.add(id: "b", port: 2)
        #expect(pool.backendIDs == ["a", "b"])
        let lease = pool.acquire().lease
        #expect(lease?.id == "a")
        pool.remove("a")
        #expect(pool.backendIDs == ["b"])
        #expect(pool.openConnections("a") == 0)
        #expect(pool.idleSeconds("a") == nil)
        if let lease { pool.release(lease) }
        #expect(take(pool, 2).map(\.id) == ["b", "b"])
        pool.remove("b")
        #expect(pool.acquire().lease == nil)
        #expect(pool.unavailableReason() == "no instance of the app is running")
    }

    @Test func idleSecondsCountsFromTheLastOpenOrClose() async {
        let pool = BackendPool(concurrency: nil)
        pool.add(id: "a", port: 1)
        let lease = pool.acquire().lease!
        #expect(pool.idleSeconds("a") == 0) // a connection is open: not idle
        pool.release(lease)
        #expect(await eventually { (pool.idleSeconds("a") ?? 0) >= 0.05 })
        let idle = pool.idleSeconds("a") ?? -1
        #expect(idle >= 0.05 && idle < 5)
        _ = pool.acquire()
        #expect(pool.idleSeconds("a") == 0)
    }

    @Test func observersHearOfEveryChangeAWaitingClientCaresAbout() {
        let pool = BackendPool(concurrency: ProxyConcurrency(softLimit: nil, hardLimit: 1))
        let heard = LockedValue(0)
        pool.observeChanges { heard.set(heard.value + 1) }
        let start = pool.currentGeneration
        pool.add(id: "a", port: 1)
        #expect(heard.value == 1)
        let lease = pool.acquire().lease
        #expect(lease != nil)
        #expect(pool.acquire().lease == nil, "at hard_limit")
        pool.release(lease!)              // a slot frees up
        pool.setHealthy("a", false)       // out of rotation
        pool.update(concurrency: nil)     // new limits
        pool.remove("a")
        #expect(heard.value == 5)
        #expect(pool.currentGeneration == start &+ 5)
    }

    @Test func concurrencyFromConfig() {
        let limits = ProxyConcurrency(Concurrency(type: "requests", softLimit: 5, hardLimit: 7))
        #expect(limits == ProxyConcurrency(softLimit: 5, hardLimit: 7))
    }

    @Test func everyBackendOverSoftLimitAsksForAnotherInstance() {
        let asked = LockedValue(0)
        let pool = BackendPool(concurrency: ProxyConcurrency(softLimit: 1, hardLimit: nil), onSaturated: { asked.set(asked.value + 1) })
        pool.add(id: "a", port: 1)
        pool.add(id: "b", port: 2)
        let first = pool.acquire().lease, second = pool.acquire().lease
        #expect(first != nil && second != nil && first?.id != second?.id)
        #expect(asked.value == 0, "each took one connection, within soft_limit")
        #expect(pool.acquire().lease != nil, "no hard limit: still placed")
        #expect(asked.value == 1, "both were at soft_limit")
        _ = pool.acquire()
        #expect(asked.value == 1, "at most once a second")
    }
}
