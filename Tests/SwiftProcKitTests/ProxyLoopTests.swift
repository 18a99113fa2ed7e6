import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The event-driven proxy's bounds: timeouts and the connection limit (issue 15).
@Suite struct ProxyLoopTests {
    @Test(arguments: [true, false]) func aClientThatNeverSpeaksIsClosedAfterTheIdleTimeout(splice: Bool) async throws {
        let server = try LoopbackServer.http(id: "app.1")
        let fixture = try ProxyFixture(servers: [server], splice: splice,
                                       timeouts: ProxyTimeouts(idle: 0.3, silentBackend: 60))
        defer { fixture.stop() }
        let client = try fixture.client()
        #expect(await eventually { server.openConnections == 1 })
        let started = ProxyClock.now
        // End of file from the proxy (not the client's 10 s receive timeout).
        let chunk = try await runOnThrowingThread { try client.receiveChunk() }
        #expect(chunk == nil)
        #expect(ProxyClock.now - started < 5)
        #expect(await eventually { server.openConnections == 0 && fixture.proxy.activeConnections == 0 })
    }

    @Test func aBackendThatNeverAnswersIsCutAfterTheSilentBackendTimeout() async throws {
        let server = try LoopbackServer.http(id: "app.1")
        let fixture = try ProxyFixture(servers: [server], timeouts: ProxyTimeouts(idle: 60, silentBackend: 0.3))
        defer { fixture.stop() }
        // Answered requests keep the connection; one the backend sits on ends it.
        let client = try fixture.client()
        #expect(try client.request("/id").status == 200)
        #expect(try client.request("/id").status == 200)
        #expect(client.send("GET /hang HTTP/1.1\r\nHost: x\r\n\r\n"))
        let started = ProxyClock.now
        let chunk = try await runOnThrowingThread { try client.receiveChunk() }
        #expect(chunk == nil)
        #expect(ProxyClock.now - started < 3, "cut at its deadline, not by some later wake-up")
        #expect(await eventually { fixture.proxy.activeConnections == 0 })
    }

    @Test func atTheConnectionLimitNewClientsWaitInTheBacklogUntilOneCloses() async throws {
        let server = try LoopbackServer.http(id: "app.1")
        let admission = ProxyAdmission(limit: 2)
        let fixture = try ProxyFixture(servers: [server], admission: admission)
        defer { fixture.stop() }
        let first = try fixture.client()
        let second = try fixture.client()
        #expect(try first.request("/id").status == 200)
        #expect(try second.request("/id").status == 200)
        // The third connects (the kernel completes it in the backlog) but is not taken in.
        let third = try fixture.client()
        #expect(third.send("GET /id HTTP/1.1\r\nHost: x\r\n\r\n"))
        let answer = Task { try await runOnThrowingThread { try third.readResponse() } }
        #expect(await eventually { admission.openConnections == 2 })
        #expect(fixture.proxy.activeConnections == 2)
        #expect(server.accepted == 2)
        first.close()
        #expect(try await answer.value.status == 200)
        #expect(server.accepted == 3)
        #expect(admission.openConnections == 2)
    }

    @Test func theDescriptorBudgetKeepsAReserveAndSplitsTheRest() {
        #expect(DescriptorBudget(openFiles: 256).instances == 24)
        #expect(DescriptorBudget(openFiles: 256).proxyConnections == 48)
        #expect(DescriptorBudget(openFiles: 1024).proxyConnections == 240)
        // Even a tiny limit leaves something to run.
        #expect(DescriptorBudget(openFiles: 16).instances == 1)
        #expect(DescriptorBudget(openFiles: 16).proxyConnections == 8)
    }
}
