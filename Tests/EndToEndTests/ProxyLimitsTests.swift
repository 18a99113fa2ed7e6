import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The proxy under a hostile neighbour: many idle connections must cost no threads, and more
/// clients than descriptors must never starve the supervisor (issue 15).
@Suite(.serialized) struct ProxyLimitsTests {
    private func appFiles(proxyPort: Int) -> [String: String] {
        ["fly.toml": """
            app = "crowded"
            kill_timeout = 2
            [processes]
              app = "'\(demoBinary)' --quiet"
            [http_service]
              internal_port = \(proxyPort)
              processes = ["app"]
            """]
    }

    /// Open descriptors of `pid` (-1 when unreadable).
    private func openDescriptors(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    private func threads(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").count) ?? -1
    }

    /// `count` TCP connections to 127.0.0.1:`port` that send nothing (the connect completes in
    /// the kernel even while the proxy leaves clients in its backlog).
    private func openIdleConnections(_ count: Int, port: Int) -> [Int32] {
        (0..<count).compactMap { _ in
            if case .connected(let fd) = TCPSocket.connect(port: port, timeout: 5) { return fd }
            return nil
        }
    }

    @Test func fourHundredClientsAgainstAnOpenFileLimitOf256LeaveTheSupervisorWorking() async throws {
        let proxyPort = freePorts()
        let basePort = freePorts(2)
        let dir = try makeApp(appFiles(proxyPort: proxyPort))
        // `ulimit -n 256` sets the hard limit too, so swiftproc cannot raise it.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -n 256 && exec \"$0\" start --no-color -m app=2 -p \(basePort)", swiftprocBinary]
        process.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SWIFTPROC_SOCKET")
        env.removeValue(forKey: "PORT")
        process.environment = env
        let (stdout, stderr) = try runCapturingOutput(process)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let pid = process.processIdentifier
        #expect(await eventually(timeout: 20) { stdout.text.contains("proxy on 127.0.0.1:\(proxyPort)") }, "\(stdout.text)\(stderr.text)")
        for port in [basePort, basePort + 1] {
            #expect(await eventually { await blocking { httpGet(port: port, path: "/health")?.status == 200 } })
        }

        let clients = await blocking { self.openIdleConnections(400, port: proxyPort) }
        defer { clients.forEach { close($0) } }
        #expect(clients.count == 400)
        let admitted = DescriptorBudget(openFiles: 256).proxyConnections
        // The proxy takes clients up to its limit (each with a backend connection), no more.
        #expect(await eventually(timeout: 60) { openDescriptors(pid) >= 2 * admitted }, "\(openDescriptors(pid)) descriptors")
        #expect(openDescriptors(pid) < 256)

        // The control socket still answers, and a crashed instance is restarted.
        let before = try await instancePIDs(dir)
        let victim = try #require(before["app.1"])
        kill(victim, SIGKILL)
        #expect(await eventually(timeout: 20) {
            let now = (try? await instancePIDs(dir)) ?? [:]
            return now["app.1"] != nil && now["app.1"] != victim
        }, "app.1 was not restarted:\n\(stdout.text)\(stderr.text)")
        let status = try await runSwiftProc(["status"], in: dir, timeout: 10)
        #expect(status.status == 0, "\(status.err)")
        #expect(process.isRunning)

        // Once the crowd leaves, the proxy answers again and its descriptors are given back.
        clients.forEach { close($0) }
        #expect(await eventually(timeout: 20) { await blocking { httpGet(port: proxyPort, path: "/health")?.status == 200 } })
        #expect(await eventually(timeout: 60) { openDescriptors(pid) < 2 * admitted }, "\(openDescriptors(pid)) descriptors")
        #expect(!stdout.text.contains("out of file descriptors"), "\(stdout.text)")

        kill(pid, SIGINT)
        #expect(await eventually(timeout: 20) { !process.isRunning })
        #expect(process.terminationStatus == 0, "\(stdout.text)\(stderr.text)")
    }

    @Test func idleConnectionsCostDescriptorsNotThreads() async throws {
        let proxyPort = freePorts()
        let basePort = freePorts(1)
        let dir = try makeApp(appFiles(proxyPort: proxyPort))
        let sp = try SwiftProc(["start", "--no-color", "-m", "app=1", "-p", "\(basePort)"], in: dir)
        #expect(await sp.waitFor("proxy on 127.0.0.1:\(proxyPort)"), "\(sp.stdout.text)\(sp.stderr.text)")
        #expect(await eventually { await blocking { httpGet(port: proxyPort, path: "/health")?.status == 200 } })
        let baseThreads = threads(sp.pid)
        let baseDescriptors = openDescriptors(sp.pid)

        let clients = await blocking { self.openIdleConnections(300, port: proxyPort) }
        #expect(clients.count == 300)
        // Every client accepted and given a backend connection (600 more; a little slack, as
        // the baseline may have included a health check's or control client's socket)...
        #expect(await eventually(timeout: 60) { openDescriptors(sp.pid) >= baseDescriptors + 590 },
                "\(openDescriptors(sp.pid)) descriptors, \(baseDescriptors) before")
        // ...without a thread of its own (a thread or two may come and go in Dispatch's pool).
        #expect(threads(sp.pid) <= baseThreads + 3, "\(threads(sp.pid)) threads, \(baseThreads) before")

        clients.forEach { close($0) }
        #expect(await eventually(timeout: 60) { openDescriptors(sp.pid) <= baseDescriptors + 2 },
                "\(openDescriptors(sp.pid)) descriptors, \(baseDescriptors) before")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }
}
