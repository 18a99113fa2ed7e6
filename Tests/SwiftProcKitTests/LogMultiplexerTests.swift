#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
import SwiftProcKit

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Parsed output: per source, its lines' texts in output order. Malformed lines are collected.
private func bySource(_ output: [UInt8], timestamps: Bool = true) -> (lines: [String: [[UInt8]]], malformed: Int) {
    var result: [String: [[UInt8]]] = [:]
    var malformed = 0
    for line in LogTest.lines(output) {
        if let (source, text) = LogTest.parse(line, timestamps: timestamps) {
            result[source, default: []].append(text)
        } else {
            malformed += 1
        }
    }
    return (result, malformed)
}

@Suite(.serialized) struct LogMultiplexerTests {
    /// 16 children × 100 000 numbered lines through real pipes: complete, per-child ordered, untorn.
    @Test func sixteenChildrenOfOneHundredThousandLines() throws {
        let children = 16, count = 100_000
        let (fd, path) = LogTest.tempOutput("16x100k")
        defer { close(fd); unlink(path) }
        let mux = LogMultiplexer(output: fd, style: LogStyle(color: false))
        let closes = CloseCounter()
        let start = Date()
        var processes: [Process] = []
        for i in 1...children {
            let (p, r) = try LogTest.spawn("exec seq 1 \(count)")
            processes.append(p)
            mux.attach(fd: r, source: "seq.\(i)", group: "seq", colorIndex: i, isPTY: false, onClose: closes.callback("seq.\(i)"))
        }
        #expect(closes.wait(for: children, seconds: 120))
        let elapsed = Date().timeIntervalSince(start)
        mux.shutdown()
        for p in processes { p.waitUntilExit() }

        // Baseline: the same children writing straight to a file.
        let (direct, directPath) = LogTest.tempOutput("16x100k-direct")
        defer { close(direct); unlink(directPath) }
        let baseStart = Date()
        var baseline: [Process] = []
        for _ in 1...children {
            LogTest.spawnLock.lock()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "exec seq 1 \(count)"]
            p.standardOutput = FileHandle(fileDescriptor: direct, closeOnDealloc: false)
            p.standardInput = FileHandle.nullDevice
            try p.run()
            LogTest.spawnLock.unlock()
            baseline.append(p)
        }
        for p in baseline { p.waitUntilExit() }
        let baseElapsed = Date().timeIntervalSince(baseStart)

        let output = LogTest.readFile(path)
        let (lines, malformed) = bySource(output)
        #expect(malformed == 0)
        #expect(lines.count == children)
        for i in 1...children {
            let got = lines["seq.\(i)"] ?? []
            #expect(got.count == count, "seq.\(i)")
            var ordered = got.count == count
            for (k, t) in got.enumerated() where Int(text(t)) != k + 1 { ordered = false; break }
            #expect(ordered, "seq.\(i) lines out of order or torn")
        }
        #expect(mux.recent.totalAppended == children * count)
        print("LogMultiplexer: \(children)×\(count) lines (\(output.count) B) via pipes in \(String(format: "%.3f", elapsed)) s; same children straight to a file: \(String(format: "%.3f", baseElapsed)) s")
    }

    @Test func finalLineWithoutNewlineAndStderrArePrinted() throws {
        let (fd, path) = LogTest.tempOutput()
        defer { close(fd); unlink(path) }
        let mux = LogMultiplexer(output: fd, style: LogStyle(color: false, timestamps: false))
        let closes = CloseCounter()
        let (p, r) = try LogTest.spawn("printf 'one\\n'; printf 'err\\r\\n' >&2; printf 'two'")
        mux.attach(fd: r, source: "app.1", group: "app", colorIndex: 0, isPTY: false, onClose: closes.callback("app.1"))
        #expect(closes.wait(for: 1, seconds: 30))
        p.waitUntilExit()
        #expect(text(LogTest.readFile(path)) == "app.1  | one\napp.1  | err\napp.1  | two\n")
        #expect(fcntl(r, F_GETFD) == -1, "the fd is closed")
        mux.shutdown()
    }

    @Test func aHundredKiBLineIsPrintedInTwoPieces() throws {
        let (fd, path) = LogTest.tempOutput()
        defer { close(fd); unlink(path) }
        let mux = LogMultiplexer(output: fd, style: LogStyle(color: false, timestamps: false))
        let closes = CloseCounter()
        let (p, r) = try LogTest.spawn("head -c 102400 /dev/zero | tr '\\000' x; echo; echo after")
        mux.attach(fd: r, source: "big.1", group: "big", colorIndex: 0, isPTY: false, onClose: closes.callback("big.1"))
        #expect(closes.wait(for: 1, seconds: 30))
        p.waitUntilExit()
        let prefix = "big.1  | "
        let expected = prefix + String(repeating: "x", count: 65_536) + "\n" + prefix + String(repeating: "x", count: 102_400 - 65_536) + "\n" + prefix + "after\n"
        let got = text(LogTest.readFile(path))
        #expect(got.count == expected.count)
        #expect(got == expected)
        #expect(mux.recent.snapshot().map(\.text.count) == [65_536, 36_864, 5])
        mux.shutdown()
    }

    /// A child on a pty (sees a terminal; EOF arrives as EIO on the master).
    @Test func ptyChildWithEIOAsEOF() throws {
        let (fd, path) = LogTest.tempOutput()
        defer { close(fd); unlink(path) }
        let mux = LogMultiplexer(output: fd, style: LogStyle(color: false, timestamps: false))
        let closes = CloseCounter()
        let (p, m) = try LogTest.spawnPTY("if test -t 1; then echo tty; else echo notty; fi; printf 'a\\r\\nb\\n'; printf tail")
        mux.attach(fd: m, source: "tty.1", group: "tty", colorIndex: 0, isPTY: true, onClose: closes.callback("tty.1"))
        #expect(closes.wait(for: 1, seconds: 30))
        p.waitUntilExit()
        #expect(text(LogTest.readFile(path)) == "tty.1  | tty\ntty.1  | a\ntty.1  | b\ntty.1  | tail\n")
        mux.shutdown()
    }

    /// A prompt without a newline shows up after the quiet period while the child still waits.
    @Test func unterminatedLineIsFlushedAfterTheQuietPeriod() throws {
        let (fd, path) = LogTest.tempOutput()
        defer { close(fd); unlink(path) }
        let mux = LogMultiplexer(output: fd, style: LogStyle(color: false, timestamps: false))
        let closes = CloseCounter()
        let input = LogTest.pipePair()
        let (p, r) = try LogTest.spawn("printf 'name? '; read x; echo \"hi $x\"", stdinFd: input.read)
        close(input.read)
        mux.attach(fd: r, source: "ask.1", group: "ask", colorIndex: 0, isPTY: false, onClose: closes.callback("ask.1"))
        // The child is blocked in `read` until we answer, so this can only come from the quiet flush.
        #expect(LogTest.wait(seconds: 10) { text(LogTest.readFile(path)) == "ask.1  | name? \n" })
        #expect(p.isRunning)
        _ = "bob\n".withCString { write(input.write, $0, 4) }
        close(input.write)
        #expect(closes.wait(for: 1, seconds: 30))
        p.waitUntilExit()
        // The `\n` ending the flushed prompt's line does not add an empty line.
        #expect(text(LogTest.readFile(path)) == "ask.1  | name? \nask.1  | hi bob\n")
        mux.shutdown()
    }

    /// The same on a pty, where readiness is edge-triggered: the prompt's bytes raise one event,
    /// and the quiet period must still print them while the child waits.
    @Test func unterminatedLineOnAPTYIsFlushedAfterTheQuietPeriod() throws {
        let (fd, path) = LogTest.tempOutput()
        defer { close(fd); unlink(path) }
        let mux = LogMultiplexer(output: fd, style: LogStyle(color: false, timestamps: false))
        let closes = CloseCounter()
        let (p, m) = try LogTest.spawnPTY("printf 'name? '; exec sleep 60")
        mux.attach(fd: m, source: "ask.1", group: "ask", colorIndex: 0, isPTY: true, onClose: closes.callback("ask.1"))
        #expect(LogTest.wait(seconds: 10) { text(LogTest.readFile(path)) == "ask.1  | name? \n" })
        #expect(p.isRunning)
        // SIGKILL: the test runner's blocked signals are inherited by the child.
        kill(p.processIdentifier, SIGKILL)
        #expect(closes.wait(for: 1, seconds: 30))
        p.waitUntilExit()
        #expect(text(LogTest.readFile(path)) == "ask.1  | name? \n")
        mux.shutdown()
    }

    /// System lines and child lines share the writer; the ring holds exactly what was printed, and
    /// the formatter reproduces the printed bytes from the ring's records (the `logs` client path).
    @Test func ringMatchesOutputAndSystemLinesInterleaveWholeLines() throws {
        let (fd, path) = LogTest.tempOutput()
        defer { close(fd); unlink(path) }
        let style = LogStyle(color: true)
        let mux = LogMultiplexer(output: fd, style: style)
        mux.register(name: "worker.10")
        #expect(mux.nameWidth == 9)
        mux.system("starting 2 processes")
        let closes = CloseCounter()
        var processes: [Process] = []
        for i in 1...2 {
            let (p, r) = try LogTest.spawn("i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo \"line $i\"; done")
            processes.append(p)
            mux.attach(fd: r, source: "web.\(i)", group: "web", colorIndex: 0, isPTY: false, onClose: closes.callback("web.\(i)"))
        }
        let logger = Thread { for k in 1...100 { mux.system("tick \(k)\nsecond line") } }
        logger.start()
        mux.log(source: "release", group: "release", colorIndex: 5, "migrated")
        #expect(closes.wait(for: 2, seconds: 30))
        #expect(LogTest.wait(seconds: 10) { mux.recent.totalAppended == 1 + 600 + 200 + 1 })
        mux.flush()
        for p in processes { p.waitUntilExit() }

        let output = LogTest.readFile(path)
        var formatter = LogFormatter(style: style, names: ["worker.10"])
        var expected: [UInt8] = []
        let records = mux.recent.snapshot()
        #expect(records.count == 802)
        // Each batch is ordered the same in ring and output except that concurrent writers
        // (reader vs. system callers) may land in either order: compare as multisets of lines.
        for r in records { expected += formatter.format(r) }
        #expect(LogTest.lines(output).sorted { $0.lexicographicallyPrecedes($1) } == LogTest.lines(expected).sorted { $0.lexicographicallyPrecedes($1) })
        // Per source, order is kept.
        let web1 = records.filter { $0.source == "web.1" }.map { text($0.text) }
        #expect(web1 == (1...300).map { "line \($0)" })
        let first = text(LogTest.lines(output)[0])
        #expect(first.hasSuffix("system    | starting 2 processes"))
        #expect(!first.contains("\u{1B}"), "system lines are uncoloured")
        mux.shutdown()
    }

    /// 200 children at once, names wider than the initial column.
    @Test func twoHundredChildren() throws {
        let (fd, path) = LogTest.tempOutput()
        defer { close(fd); unlink(path) }
        let mux = LogMultiplexer(output: fd, style: LogStyle(color: false))
        let closes = CloseCounter()
        var processes: [Process] = []
        let n = 200
        for i in 1...n {
            let (p, r) = try LogTest.spawn("exec seq 1 500")
            processes.append(p)
            mux.attach(fd: r, source: "many.\(i)", group: "many", colorIndex: i % 7, isPTY: false, onClose: closes.callback("many.\(i)"))
        }
        #expect(closes.wait(for: n, seconds: 120))
        for p in processes { p.waitUntilExit() }
        mux.shutdown()
        let (lines, malformed) = bySource(LogTest.readFile(path))
        #expect(malformed == 0)
        #expect(lines.count == n)
        for i in 1...n {
            #expect((lines["many.\(i)"] ?? []).map(text) == (1...500).map(String.init), "many.\(i)")
        }
    }

    /// Shutdown closes fds that are still open, printing their partial lines and calling onClose.
    @Test func shutdownClosesOpenFdsAndPrintsPartialLines() throws {
        let (fd, path) = LogTest.tempOutput()
        defer { close(fd); unlink(path) }
        let mux = LogMultiplexer(output: fd, style: LogStyle(color: false, timestamps: false), quietPeriod: .infinity)
        let closes = CloseCounter()
        let input = LogTest.pipePair()
        let (p, r) = try LogTest.spawn("printf 'done\\nhalf'; read x", stdinFd: input.read)
        close(input.read)
        mux.attach(fd: r, source: "sh.1", group: "sh", colorIndex: 0, isPTY: false, onClose: closes.callback("sh.1"))
        #expect(LogTest.wait(seconds: 10) { mux.recent.totalAppended == 1 })
        mux.shutdown()
        #expect(closes.names == ["sh.1"])
        #expect(text(LogTest.readFile(path)) == "sh.1   | done\nsh.1   | half\n")
        // After shutdown: attach closes at once, system lines still print.
        let late = LogTest.pipePair()
        mux.attach(fd: late.read, source: "late.1", group: "late", colorIndex: 0, isPTY: false, onClose: closes.callback("late.1"))
        #expect(closes.names == ["sh.1", "late.1"])
        #expect(fcntl(late.read, F_GETFD) == -1)
        close(late.write)
        mux.system("bye")
        #expect(text(LogTest.readFile(path)).hasSuffix("system | bye\n"))
        close(input.write)
        p.waitUntilExit()
    }
}

@Suite struct LogWriterTests {
    /// A reader that went away (EPIPE) must not kill us; output is dropped and counted.
    @Test func epipeDropsOutput() {
        signal(SIGPIPE) { _ in }     // what main does: a no-op handler, not SIG_IGN (children keep the default)
        let p = LogTest.pipePair()
        close(p.read)
        let writer = LogWriter(fd: p.write)
        writer.write(Array("hello\n".utf8))
        writer.write(Array("again\n".utf8))
        #expect(writer.isBroken)
        #expect(writer.droppedBytes == 12)
        close(p.write)
    }

    /// A non-blocking output that fills up (EAGAIN) is waited on with POLLOUT; nothing is lost or reordered.
    @Test func nonBlockingOutputIsWrittenCompletely() {
        let p = LogTest.pipePair()
        _ = fcntl(p.write, F_SETFL, fcntl(p.write, F_GETFL) | O_NONBLOCK)
        let writer = LogWriter(fd: p.write)
        var payload: [UInt8] = []
        for i in 0..<(1 << 20) { payload.append(UInt8(truncatingIfNeeded: i &* 7)) }
        let data = payload
        let done = CloseCounter()
        let t = Thread {
            writer.append(Array(data[0..<1000]))
            writer.write(Array(data[1000...]))
            close(p.write)
            done.callback("w")()
        }
        t.start()
        var received: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(p.read, &buf, buf.count)
            if n <= 0 { break }
            received += buf[0..<n]
        }
        close(p.read)
        #expect(done.wait(for: 1, seconds: 30))
        #expect(received.count == data.count)
        #expect(received == data)
        #expect(writer.writtenBytes == data.count)
        #expect(!writer.isBroken)
    }
}

@Suite struct LogMultiplexerCallbackTests {
    /// The supervisor reacts to an exit from `onClose`: it prints a system line, flushes and may
    /// even shut down — on the reader thread, without deadlocking.
    @Test func onCloseMayCallBackIntoTheMultiplexer() throws {
        let (fd, path) = LogTest.tempOutput()
        defer { close(fd); unlink(path) }
        let mux = LogMultiplexer(output: fd, style: LogStyle(color: false, timestamps: false))
        let closes = CloseCounter()
        let done = closes.callback("app.1")
        let (p, r) = try LogTest.spawn("echo bye")
        mux.attach(fd: r, source: "app.1", group: "app", colorIndex: 0, isPTY: false) { [mux] in
            mux.system("app.1 exited")
            mux.flush()
            mux.shutdown()
            done()
        }
        #expect(closes.wait(for: 1, seconds: 30))
        mux.shutdown()
        p.waitUntilExit()
        #expect(text(LogTest.readFile(path)) == "app.1  | bye\nsystem | app.1 exited\n")
    }
}
