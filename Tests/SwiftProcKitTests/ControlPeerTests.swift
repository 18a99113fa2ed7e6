import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Another user must not control this swiftproc: the file modes keep them out, and even when
/// the modes are opened up, the peer-credential check refuses them.
///
/// Runs a tiny Python client as uid/gid 65534 (`nobody`) through util-linux `setpriv`, so it
/// needs root (as in CI) and Linux.
let canSwitchUser = getuid() == 0
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")

@Suite(.enabled(if: canSwitchUser, "needs root, /usr/bin/setpriv and /usr/bin/python3"))
struct ControlPeerTests {
    static let script = """
    import errno, socket, sys
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    try:
        s.connect(sys.argv[1])
    except OSError as e:
        print("CONNECT-ERROR " + errno.errorcode.get(e.errno, str(e.errno)))
        sys.exit(0)
    s.sendall(b'{"version":1,"command":"status","arguments":[]}\\n')
    data = b""
    while not data.endswith(b"\\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    print("REPLY " + data.decode().strip())
    """

    /// Runs the client as `nobody` against `path`; returns its one line of output.
    private func connectAsNobody(_ path: String) async throws -> String {
        try await blocking { () throws in try Self.runAsNobody(path) }
    }

    private static func runAsNobody(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups",
                             "/usr/bin/python3", "-c", Self.script, path]
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": "/"]
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return "client exited with \(process.terminationStatus)" }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func anotherUserIsRefusedEvenWhenTheModesLetThemConnect() async throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        #expect(chmod(directory, 0o755) == 0)
        let path = directory + "/control.sock"
        let service = FakeControlService()
        let server = ControlServer(path: path, service: service)
        try server.start()
        defer { server.stop() }
        #expect(chmod(path, 0o666) == 0)

        let output = try await connectAsNobody(path)
        #expect(output.hasPrefix("REPLY "))
        let reply = try JSONDecoder().decode(ControlReply.self, from: Data(output.dropFirst(6).utf8))
        #expect(!reply.ok)
        #expect(reply.error == "permission denied: this swiftproc runs as uid \(geteuid()); uid 65534 may not control it")
        #expect(reply.status == nil)
        #expect(service.requests.isEmpty)
        // The owner still gets through.
        let client = ControlClient(path: path, timeout: 20)
        let status = try await blocking { () throws(ControlClientError) in try client.send(ControlRequest(command: .status)) }
        #expect(status.status?.pid == FakeControlService.pid)
    }

    @Test func theDefaultModesAloneKeepAnotherUserOut() async throws {
        let directory = makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        #expect(chmod(directory, 0o755) == 0) // an app directory others may read
        let path = ControlSocket.path(appDirectory: directory, environment: [:])
        let service = FakeControlService()
        let server = ControlServer(path: path, service: service)
        try server.start()
        defer { server.stop() }

        // .swiftproc/ is 0700.
        #expect(try await connectAsNobody(path) == "CONNECT-ERROR EACCES")
        // Even with the directory opened, the socket itself is 0600.
        #expect(chmod(directory + "/.swiftproc", 0o755) == 0)
        #expect(try await connectAsNobody(path) == "CONNECT-ERROR EACCES")
        #expect(service.requests.isEmpty)
    }
}
