import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct ControlServerTests {
    // MARK: Round trips

    @Test func everyCommandRoundTrips() async throws {
        let fixture = try await ServerFixture.start()

        #expect(try await fixture.send(ControlRequest(command: .ping)).message == "pong")
        let status = try await fixture.send(ControlRequest(command: .status))
        #expect(status.ok)
        #expect(status.status == FakeControlService.snapshot)
        let scaled = try await fixture.send(ControlRequest(command: .scale, arguments: ["worker=3"]))
        #expect(scaled.ok)
        #expect(scaled.message == "app: 1 → 1\nworker: 1 → 3")
        let badScale = try await fixture.send(ControlRequest(command: .scale, arguments: ["wrker=3"]))
        #expect(!badScale.ok)
        #expect(badScale.error == "unknown process group \"wrker\"; known: app, worker")
        #expect(try await fixture.send(ControlRequest(command: .restart, arguments: ["app", "worker.2"])).message
            == "restarting app, worker.2")
        #expect(try await fixture.send(ControlRequest(command: .stop)).message == "stopping")

        let seen = fixture.service.requests
        #expect(seen.map(\.command) == [.ping, .status, .scale, .scale, .restart, .stop])
        #expect(seen[2].arguments == ["worker=3"])
        #expect(seen[4].arguments == ["app", "worker.2"])
    }

    @Test func logsWithoutFollowSendsTheBacklogOnly() async throws {
        let fixture = try await ServerFixture.start()
        fixture.service.backlog = (1...5).map { record("line \($0)") }
        let reply = try await fixture.send(ControlRequest(command: .logs, arguments: ["app"], lines: 3))
        #expect(reply.ok)
        #expect(reply.lines?.map(\.text) == ["line 3", "line 4", "line 5"])
        #expect(fixture.service.subscribers.isEmpty)

        let unknown = try await fixture.send(ControlRequest(command: .logs, arguments: ["nope"]))
        #expect(!unknown.ok)
        #expect(unknown.error == "unknown process \"nope\"; known: app, worker")
    }

    @Test func aHandWrittenMinimalRequestIsAccepted() async throws {
        let fixture = try await ServerFixture.start()
        let raw = try await RawConnection.open(fixture.path)
        raw.write("{\"version\":1,\"command\":\"ping\"}\r\n")
        #expect(await raw.readReply()?.message == "pong")
    }

    // MARK: Socket file, directory, stale and live sockets

    @Test func createsThePrivateDirectoryAndSocketAndRemovesItOnStop() async throws {
        let fixture = try await ServerFixture.start()
        var info = stat()
        #expect(stat(fixture.directory + "/.swiftproc", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o700)
        #expect(lstat(fixture.path, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o600)

        fixture.server.stop()
        #expect(!FileManager.default.fileExists(atPath: fixture.path))
        await #expect(throws: ControlClientError.notRunning(path: fixture.path)) {
            try await fixture.send(ControlRequest(command: .ping))
        }
        fixture.server.stop() // idempotent
    }

    @Test func stopLeavesAlone_aSocketThatIsNoLongerOurs() async throws {
        let fixture = try await ServerFixture.start()
        #expect(unlink(fixture.path) == 0)
        let other = try Sockets.makeStreamSocket()
        defer { Sockets.close(other) }
        try Sockets.bind(other, path: fixture.path, mode: 0o600)
        fixture.server.stop()
        #expect(Sockets.identity(of: fixture.path)?.isSocket == true)
    }

    @Test func aStaleSocketIsReplaced() async throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/.swiftproc/swiftproc.sock"
        #expect(mkdir(directory + "/.swiftproc", 0o700) == 0)
        // A socket file nobody listens on, as left by a supervisor that was killed.
        let dead = try Sockets.makeStreamSocket()
        try Sockets.bind(dead, path: path, mode: 0o600)
        Sockets.close(dead)
        #expect(throws: ControlClientError.staleSocket(path: path)) {
            try ControlClient(path: path).send(ControlRequest(command: .ping))
        }
        #expect(ControlClientError.staleSocket(path: path).description.hasPrefix("no swiftproc is running here (stale control socket at "))

        let server = ControlServer(path: path, service: FakeControlService())
        try server.start()
        defer { server.stop() }
        let client = ControlClient(path: path, timeout: 20)
        #expect(try await blocking { () throws(ControlClientError) in try client.send(ControlRequest(command: .ping)) }.message == "pong")
    }

    @Test func aSecondServerOnALiveSocketRefusesWithThePid() async throws {
        let fixture = try await ServerFixture.start()
        let second = ControlServer(path: fixture.path, service: FakeControlService())
        let error = await #expect(throws: ControlServerError.self) {
            try await blocking { () throws(ControlServerError) in try second.start() }
        }
        #expect(error == .alreadyRunning(path: fixture.path, pid: FakeControlService.pid))
        let text = error?.description ?? ""
        #expect(text.hasPrefix("swiftproc is already running in this directory (pid 4242, socket "))
        #expect(text.hasSuffix("); use `swiftproc stop` or another --socket"))
        #expect(!text.contains("\n"))
        // The first one is untouched.
        #expect(await fixture.pingWorks())
        second.stop()
        #expect(await fixture.pingWorks())
    }

    @Test func somethingElseAtTheSocketPathIsNeverRemoved() async throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = directory + "/not-a-socket"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
        let server = ControlServer(path: path, service: FakeControlService())
        #expect(throws: ControlServerError.notASocket(path: path)) { try server.start() }
        #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
    }

    @Test func tooLongAPathIsAClearError() async throws {
        let path = "/tmp/" + String(repeating: "x", count: 120) + "/swiftproc.sock"
        let server = ControlServer(path: path, service: FakeControlService())
        let error = #expect(throws: ControlServerError.self) { try server.start() }
        #expect(error == .pathTooLong(path: path, limit: ControlSocket.maxPathBytes))
        #expect(error?.description.hasPrefix("control socket path is too long (") == true)
        #expect(throws: ControlClientError.pathTooLong(path: path, limit: ControlSocket.maxPathBytes)) {
            try ControlClient(path: path).send(ControlRequest(command: .ping))
        }
    }

    // MARK: Client errors

    @Test func noSupervisorIsOneClearLine() async throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let path = ControlSocket.path(appDirectory: directory, environment: [:])
        let error = #expect(throws: ControlClientError.self) {
            try ControlClient(path: path).send(ControlRequest(command: .status))
        }
        #expect(error == .notRunning(path: path))
        #expect(error?.description == "no swiftproc is running here (no control socket at \(path))")
        #expect(ControlSocket.display(path, from: directory) == ".swiftproc/swiftproc.sock")
        #expect(ControlSocket.display(path, from: directory + "/") == ".swiftproc/swiftproc.sock")
        #expect(ControlSocket.display(path, from: "/elsewhere") == path)
    }

    // MARK: Misbehaving clients never hurt the others

    @Test func garbageGetsAnErrorAndTheNextClientIsServed() async throws {
        let fixture = try await ServerFixture.start()
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let raw = try await RawConnection.open(fixture.path)
        raw.write(garbage + [UInt8(ascii: "\n")])
        let reply = await raw.readReply()
        #expect(reply?.ok == false)
        #expect(reply?.error?.hasPrefix("malformed request") == true)
        #expect(await raw.closedByServer())
        #expect(await fixture.pingWorks())

        let noNewline = try await RawConnection.open(fixture.path)
        noNewline.write(garbage.filter { $0 != UInt8(ascii: "\n") })
        noNewline.close()
        #expect(await fixture.pingWorks())
    }

    @Test func unknownCommandAndWrongVersionAreExplained() async throws {
        let fixture = try await ServerFixture.start()
        let cases: [(String, String)] = [
            (#"{"version":1,"command":"frob","arguments":[]}"#,
             #"unknown command "frob"; known: ping, status, scale, restart, stop, logs, deploy, attach"#),
            (#"{"version":2,"command":"status","arguments":[]}"#,
             "protocol version 2 not supported (this swiftproc speaks 1)"),
            (#"{"version":1,"command":"scale","arguments":"worker=3"}"#,
             #"malformed request: "arguments" should be a list of strings"#),
            (#"{"command":"ping"}"#, #"malformed request: no "version""#),
            (#"[1,2,3]"#,
             #"malformed request: expected one JSON object per line, like {"version":1,"command":"status"}"#),
        ]
        for (line, message) in cases {
            let raw = try await RawConnection.open(fixture.path)
            raw.write(line + "\n")
            let reply = await raw.readReply()
            #expect(reply?.ok == false)
            #expect(reply?.error == message)
            #expect(await raw.closedByServer())
        }
        #expect(await fixture.pingWorks())
    }

    @Test func aHugeLineWithoutNewlineIsRefusedAsTooLarge() async throws {
        let fixture = try await ServerFixture.start()
        let raw = try await RawConnection.open(fixture.path)
        let megabyte = [UInt8](repeating: UInt8(ascii: "a"), count: 1024 * 1024)
        let fd = raw.fd
        let writerDone = DispatchSemaphore(value: 0)
        // The server stops reading at the limit, so write from another thread.
        Thread {
            Sockets.sendAll(fd, megabyte)
            writerDone.signal()
        }.start()
        let reply = await raw.readReply()
        #expect(reply?.ok == false)
        #expect(reply?.error == "request too large (the limit is \(ControlProtocol.maxRequestBytes) bytes)")
        #expect(await raw.closedByServer())
        #expect(await wait(for: writerDone))
        #expect(await fixture.pingWorks())
    }

    @Test func halfARequestThenCloseIsCleanedUp() async throws {
        let fixture = try await ServerFixture.start()
        let raw = try await RawConnection.open(fixture.path)
        raw.write(#"{"version":1,"comm"#)
        raw.close()
        #expect(await fixture.pingWorks())
        #expect(await waitUntil { fixture.server.connectionCount == 0 })
    }

    @Test func aSilentClientDoesNotBlockOthersAndIsClosedAfterTheTimeout() async throws {
        var options = ControlServer.Options()
        options.requestTimeout = 0.3
        let fixture = try await ServerFixture.start(options)
        let silent = try await RawConnection.open(fixture.path)
        let reply = await silent.readReply()
        #expect(reply?.ok == false)
        #expect(reply?.error == "no request within 0.3s; closing")
        #expect(await silent.closedByServer())
        #expect(await fixture.pingWorks())
    }

    @Test func whileAClientSaysNothingOthersAreServed() async throws {
        var options = ControlServer.Options()
        options.requestTimeout = 600
        let fixture = try await ServerFixture.start(options)
        let silent = (0..<5).compactMap { _ in try? RawConnection(path: fixture.path) }
        #expect(silent.count == 5)
        for _ in 0..<3 { #expect(await fixture.pingWorks()) }
        // Stopping the server ends connections still waiting for their request.
        fixture.server.stop()
        for connection in silent { #expect(await connection.closedByServer()) }
        #expect(await waitUntil { fixture.server.connectionCount == 0 })
    }

    @Test func aClientThatNeverReadsItsReplyDoesNotBlockOthers() async throws {
        var options = ControlServer.Options()
        options.replyTimeout = 600
        let fixture = try await ServerFixture.start(options)
        fixture.service.backlog = (0..<20_000).map { record("backlog line \($0) " + String(repeating: "x", count: 100)) }
        // Asks for a ~3 MB reply and never reads it.
        let greedy = try await RawConnection.open(fixture.path)
        greedy.write(#"{"version":1,"command":"logs","lines":20000}"# + "\n")
        for _ in 0..<3 { #expect(await fixture.pingWorks()) }
        greedy.close()
        #expect(await waitUntil { fixture.server.connectionCount == 0 })
    }

    @Test func tooManyBusyConnectionsAreToldSo() async throws {
        var options = ControlServer.Options()
        options.maxConnections = 2
        options.requestTimeout = 600
        let fixture = try await ServerFixture.start(options)
        // Two followers hold both slots (busy, not silent: they are never evicted).
        let first = try await RawConnection.open(fixture.path)
        let second = try await RawConnection.open(fixture.path)
        for c in [first, second] { _ = c.write(#"{"version":1,"command":"logs","follow":true,"lines":0}"# + "\n") }
        #expect(await waitUntil { fixture.service.subscribers.count == 2 })
        let third = try await RawConnection.open(fixture.path)
        #expect(await third.readReply()?.error == "too many control connections; try again")
        first.close()
        second.close()
        #expect(await waitUntil { fixture.server.connectionCount == 0 })
        #expect(await fixture.pingWorks())
    }

    /// Issue 13: 64 connections that send nothing made every `status` fail or wait 10 s.
    @Test func silentConnectionsNeverLockOutARealClient() async throws {
        var options = ControlServer.Options()
        options.maxConnections = 4
        options.requestTimeout = 600
        let fixture = try await ServerFixture.start(options)
        let silent = try await (0..<4).asyncMap { _ in try await RawConnection.open(fixture.path) }
        #expect(await waitUntil { fixture.server.connectionCount == 4 })
        let startedAt = Date()
        for _ in 0..<3 { #expect(await fixture.pingWorks()) }
        #expect(Date().timeIntervalSince(startedAt) < 5)
        // The oldest silent ones made room.
        #expect(await silent[0].closedByServer())
    }

    @Test func theDefaultRequestTimeoutIsAFewSeconds() {
        #expect(ControlServer.Options().requestTimeout <= 5)
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
