import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 13: a hostile neighbour, overflowing numbers, closed pipes.
@Suite(.serialized) struct HardeningTests {
    /// Runs `swiftproc ARGS` with stdout and stderr on a pipe nobody reads (`… 2>&1 | true`).
    private func runIntoClosedPipe(_ arguments: [String], in directory: URL) async throws -> Process {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: swiftprocBinary)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.nullDevice
        let output = FileHandle(fileDescriptor: fds[1], closeOnDealloc: false)
        process.standardOutput = output
        process.standardError = output
        try Platform.runWithCleanSignalMask(process)
        close(fds[1])
        #expect(await eventually(timeout: 20) { !process.isRunning })
        return process
    }

    @Test func aClosedStdoutOrStderrNeverKillsTheCLI() async throws {
        let app = try makeApp(["Procfile": "web: echo up; exec sleep 1000\n"])
        // An error message (unknown command; no supervisor running) into a closed pipe.
        for (words, expected) in [(["frobnicate"], Int32(2)), (["status"], Int32(1)), (["--help"], Int32(0))] {
            let p = try await runIntoClosedPipe(words, in: app)
            #expect(p.terminationReason == .exit, "\(words): killed by signal \(p.terminationStatus)")
            #expect(p.terminationStatus == expected, "\(words)")
        }
        // `status | head` against a running app.
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("| up"))
        for words in [["status"], ["logs", "--no-follow"], ["scale"]] {
            let p = try await runIntoClosedPipe(words, in: app)
            #expect(p.terminationReason == .exit, "\(words): killed by signal \(p.terminationStatus)")
        }
        #expect(sp.process.isRunning)
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func aSupervisorWhoseStdoutIsClosedKeepsServing() async throws {
        let app = try makeApp(["Procfile": "web: while :; do echo tick; sleep 0.05; done\n"])
        // `swiftproc start | head -0`: nobody reads its stdout from the first line on.
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        let sp = Process()
        sp.executableURL = URL(fileURLWithPath: swiftprocBinary)
        sp.arguments = ["start", "--no-color"]
        sp.currentDirectoryURL = app
        sp.standardInput = FileHandle.nullDevice
        sp.standardOutput = FileHandle(fileDescriptor: fds[1], closeOnDealloc: false)
        sp.standardError = FileHandle(fileDescriptor: fds[1], closeOnDealloc: false)
        try Platform.runWithCleanSignalMask(sp)
        close(fds[1])
        defer { if sp.isRunning { kill(sp.processIdentifier, SIGKILL) } }
        #expect(await eventually {
            let r = try? await runSwiftProc(["status", "--json"], in: app)
            return r?.status == 0 && r?.out.contains("\"running\"") == true
        })
        let logs = try await runSwiftProc(["logs", "--no-follow", "-n", "3"], in: app)
        #expect(logs.out.contains("tick"), "\(logs.err)")
        #expect(sp.isRunning)
        #expect(try await runSwiftProc(["stop"], in: app).status == 0)
        #expect(await eventually(timeout: 20) { !sp.isRunning })
        #expect(sp.terminationReason == .exit)
        #expect(sp.terminationStatus == 0)
    }

    @Test func hugeScaleCountsAreRefusedAndNeverCrashTheSupervisor() async throws {
        let app = try makeApp(["Procfile": "web: echo up; exec sleep 1000\nworker: exec sleep 1000\n"])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("| up"))
        for words in [["web=9223372036854775807"], ["web=+9223372036854775807"], ["web=+9223372036854775807"],
                      ["web=+4611686018427387904", "web=+4611686018427387904"], ["all=9223372036854775807"],
                      ["web=-9223372036854775807"], ["9223372036854775807"]] {
            let r = try await runSwiftProc(["scale"] + words, in: app)
            #expect(sp.process.isRunning, "\(words) killed the supervisor")
            // The same limit start -m and check apply: at most 100 per group.
            #expect(r.status == 1, "\(words): \(r.out)")
            #expect(r.err.contains("at most 100 instances per group"), "\(words): \(r.err)")
        }
        #expect(sp.process.isRunning)
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func tooManyLogLinesIsAUsageErrorNotAGiantAllocation() async throws {
        let app = try makeApp(["Procfile": "web: exec sleep 1000\n"])
        let r = try await runSwiftProc(["start", "--log-lines", "9223372036854775807"], in: app)
        #expect(r.status == 2, "\(r.out) \(r.err)")
        #expect(r.err.contains("--log-lines needs a number from 1 to"), "\(r.err)")
    }

    @Test func aSecondStartInTheSameDirectoryFailsAtOnceNamingTheFirst() async throws {
        let app = try makeApp(["Procfile": "web: echo up pid=$$; exec sleep 1000\n"])
        let first = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await first.waitFor("up pid="))
        // Even with a socket of its own, a second supervisor may not share the directory.
        let socket = app.appendingPathComponent("other.sock").path
        let startedAt = Date()
        let second = try await runSwiftProc(["start", "--no-color", "--socket", socket], in: app)
        #expect(second.status == 1)
        #expect(second.err.contains("already running in this directory (pid \(first.pid))"), "\(second.err)")
        #expect(Date().timeIntervalSince(startedAt) < 5)
        #expect(!second.out.contains("started"), "\(second.out)")
        #expect(!FileManager.default.fileExists(atPath: socket))
        let daemon = try await runSwiftProc(["start", "-d"], in: app)
        #expect(daemon.status == 1)
        #expect(daemon.err.contains("already running in this directory (pid \(first.pid))"), "\(daemon.err)")
        #expect(first.process.isRunning)
        #expect(!first.stdout.text.contains("exited"), "\(first.stdout.text)")
        first.signal(SIGINT)
        #expect(await first.waitForExit() == 0)
    }

    @Test func concurrentStartsNeverBothRun() async throws {
        for _ in 0..<4 {
            let app = try makeApp(["Procfile": "web: echo up pid=$$; exec sleep 1000\n"])
            let a = try SwiftProc(["start", "--no-color"], in: app)
            let b = try SwiftProc(["start", "--no-color"], in: app)
            #expect(await eventually(timeout: 10) {
                (a.stdout.text.contains("up pid=") || b.stdout.text.contains("up pid="))
                    && (!a.process.isRunning || !b.process.isRunning)
            })
            let running = [a, b].filter { $0.process.isRunning }
            #expect(running.count == 1)
            let loser = [a, b].first { !$0.process.isRunning }
            #expect(loser.map { $0.stderr.text.contains("already running") } ?? false, "\(loser?.stderr.text ?? "")")
            for p in running { p.signal(SIGINT); _ = await p.waitForExit() }
        }
    }

    // MARK: - `.swiftproc` trust

    @Test func aSymlinkedStateDirectoryIsRefusedWithNothingWritten() async throws {
        let app = try makeApp(["Procfile": "web: exec sleep 1000\n"])
        let elsewhere = try makeApp([:])
        #expect(symlink(elsewhere.path, app.appendingPathComponent(".swiftproc").path) == 0)
        for words in [["start"], ["start", "-d"]] {
            let r = try await runSwiftProc(words, in: app)
            #expect(r.status == 1, "\(words): \(r.out)")
            #expect(r.err.contains("refusing to use") && r.err.contains("symbolic link"), "\(words): \(r.err)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).isEmpty)
    }

    @Test func aStateDirectoryOthersCanEnterOrOwnIsRefused() async throws {
        let app = try makeApp(["Procfile": "web: exec sleep 1000\n"])
        let state = app.appendingPathComponent(".swiftproc").path
        #expect(mkdir(state, 0o700) == 0)
        #expect(chmod(state, 0o777) == 0)
        var r = try await runSwiftProc(["start"], in: app)
        #expect(r.status == 1)
        #expect(r.err.contains("mode 777 gives other users access"), "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: state).isEmpty)

        // Pre-created by another user (here: nobody), even with a tight mode.
        #expect(chmod(state, 0o700) == 0)
        #expect(chown(state, 65534, 65534) == 0)
        r = try await runSwiftProc(["start", "-d"], in: app)
        #expect(r.status == 1)
        #expect(r.err.contains("belongs to uid 65534"), "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: state).isEmpty)

        // A plain file in its place.
        #expect(rmdir(state) == 0)
        #expect(FileManager.default.createFile(atPath: state, contents: Data()))
        r = try await runSwiftProc(["start"], in: app)
        #expect(r.status == 1)
        #expect(r.err.contains("not a directory"), "\(r.err)")
    }

    @Test func theDaemonLogIsNeverWrittenThroughASymlink() async throws {
        let app = try makeApp(["Procfile": "web: exec sleep 1000\n"])
        let state = app.appendingPathComponent(".swiftproc").path
        #expect(mkdir(state, 0o700) == 0)
        let victim = try makeApp(["secret": "root only\n"]).appendingPathComponent("secret")
        #expect(symlink(victim.path, state + "/swiftproc.log") == 0)
        let r = try await runSwiftProc(["start", "-d"], in: app)
        #expect(r.status == 1, "\(r.out)")
        #expect(r.err.contains("symbolic link"), "\(r.err)")
        #expect(try String(contentsOf: victim, encoding: .utf8) == "root only\n")
    }

    @Test func aTamperedChildrenRecordNeverKillsAnotherProcessGroup() async throws {
        let app = try makeApp(["Procfile": "web: echo up; exec sleep 1000\n"])
        let state = app.appendingPathComponent(".swiftproc")
        #expect(mkdir(state.path, 0o700) == 0)
        // Someone else's process group, with its true start time, listed as a leftover.
        let bystander = Process()
        bystander.executableURL = URL(fileURLWithPath: "/bin/sleep")
        bystander.arguments = ["1000"]
        try bystander.run()
        defer { if bystander.isRunning { kill(bystander.processIdentifier, SIGKILL) } }
        let pid = bystander.processIdentifier
        let start = try #require(Platform.startTime(of: pid))
        try "owner 999999 1 0123456789abcdef\n\(pid) \(start)\n".write(to: state.appendingPathComponent("children"),
                                                                      atomically: true, encoding: .utf8)
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("| up"))
        #expect(bystander.isRunning)
        #expect(!sp.stdout.text.contains("left over"), "\(sp.stdout.text)")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
        #expect(bystander.isRunning)
    }

    @Test func clientsRefuseASocketServedByAnotherUser() async throws {
        let app = try makeApp(["Procfile": "web: exec sleep 1000\n"])
        let theirs = try makeApp([:])
        #expect(chown(theirs.path, 65534, 65534) == 0)
        let socket = theirs.appendingPathComponent("fake.sock").path
        // A fake supervisor run by `nobody` that answers anything with a made-up status.
        let fake = Process()
        fake.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        fake.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", """
            import socket, sys, os
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(8)
            print("listening", flush=True)
            while True:
                c, _ = s.accept()
                try:
                    c.recv(65536); c.sendall(b'{"ok":true,"message":"fake","version":1}\\n')
                except OSError:
                    pass
                c.close()
            """, socket]
        fake.standardOutput = Pipe()
        try fake.run()
        defer { kill(fake.processIdentifier, SIGKILL) }
        #expect(await eventually { FileManager.default.fileExists(atPath: socket) })
        for words in [["stop"], ["status"], ["scale", "web=2"]] {
            let r = try await runSwiftProc(words + ["--socket", socket], in: app)
            #expect(r.status == 1, "\(words): \(r.out)")
            #expect(r.err.contains("served by uid 65534, not by you"), "\(words): \(r.err)")
        }
    }
}

/// Issue 13: the `logs` command's name column and each group's share of the ring.
@Suite(.serialized) struct LogsHardeningTests {
    private func barColumns(_ text: String) -> Set<Int> {
        Set(text.split(separator: "\n").compactMap { line in line.firstIndex(of: "|").map { line.distance(from: line.startIndex, to: $0) } })
    }

    @Test func logsAlignsNamesFromTheFirstLine() async throws {
        let app = try makeApp(["Procfile": "a: echo from-a; exec sleep 1000\nlongername: sleep 0.3; echo from-long; exec sleep 1000\n"])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("| from-long"))
        let r = try await runSwiftProc(["logs", "--no-follow", "--no-timestamps", "--no-color"], in: app)
        #expect(r.out.contains("from-a") && r.out.contains("from-long"))
        #expect(barColumns(r.out).count == 1, "\(r.out)")
        let follower = try SwiftProc(["logs", "--no-timestamps", "--no-color"], in: app)
        #expect(await follower.waitFor("from-long"))
        #expect(barColumns(follower.stdout.text).count == 1, "\(follower.stdout.text)")
        follower.signal(SIGINT)
        _ = await follower.waitForExit()
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func aFloodingGroupDoesNotPushAQuietOneOutOfTheRing() async throws {
        let app = try makeApp(["Procfile": """
            quiet: echo quiet-1; echo quiet-2; echo quiet-3; exec sleep 1000
            flood: sleep 0.3; i=0; while [ $i -lt 3000 ]; do echo flood-$i; i=$((i+1)); done; echo flood-done; exec sleep 1000

            """])
        let sp = try SwiftProc(["start", "--no-color", "--no-tty", "--log-lines", "200"], in: app)
        #expect(await sp.waitFor("| flood-done", timeout: 30))
        let quiet = try await runSwiftProc(["logs", "--no-follow", "-n", "3", "quiet"], in: app)
        #expect(quiet.status == 0, "\(quiet.err)")
        #expect(quiet.out.contains("quiet-1") && quiet.out.contains("quiet-3"), "\(quiet.out)")
        let flood = try await runSwiftProc(["logs", "--no-follow", "-n", "2", "flood"], in: app)
        #expect(flood.out.contains("flood-done"), "\(flood.out)")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }
}

/// Issue 13: a child that daemonizes itself outlived `stop`.
@Suite(.serialized) struct EscapeTests {
    @Test func aDaemonizedDescendantIsStoppedWithTheApp() async throws {
        #if os(Linux)
        let app = try makeApp(["Procfile": "web: setsid -f sh -c 'echo daemon=$$; exec sleep 1000' >&2; echo up; exec sleep 1000\n"])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("daemon="))
        let daemon = try #require(values("daemon", in: sp.stdout.text, lines: "daemon=").first.flatMap { pid_t($0) })
        // It left the group and the session, and was re-parented to the supervisor.
        #expect(getsid(daemon) == daemon)
        #expect(await eventually { processTable()[daemon]?.ppid == sp.pid })
        sp.signal(SIGINT)
        _ = await sp.waitForExit()
        #expect(kill(daemon, 0) != 0, "the daemon (pid \(daemon)) outlived swiftproc")
        #expect(sp.stdout.text.contains("daemonized descendant"), "\(sp.stdout.text)")
        if kill(daemon, 0) == 0 { kill(daemon, SIGKILL) }
        #endif
    }
}
