import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every byte a child writes appears exactly once, per-child order is kept, lines never tear.
@Suite(.serialized) struct LogIntegrityTests {
    /// Checks `output` (from `--no-color --no-timestamps`) for `children` sources `lines.K`,
    /// each printing "lines.K N" for N in 1...count in order. Returns problems found (empty = good).
    static func verify(_ output: [UInt8], children: Int, count: Int) -> [String] {
        var next = [Int](repeating: 1, count: children + 1)
        var problems: [String] = []
        var lineStart = 0
        let bar = Array(" | ".utf8)
        for i in output.indices where output[i] == UInt8(ascii: "\n") {
            let line = output[lineStart..<i]
            lineStart = i + 1
            guard line.starts(with: Array("lines.".utf8)) else { continue }  // system lines
            // "lines.K   | lines.K N"
            guard let barAt = line.firstRange(of: bar) else { problems.append("no separator: \(String(decoding: line, as: UTF8.self))"); continue }
            let text = line[barAt.upperBound...]
            let words = text.split(separator: UInt8(ascii: " "))
            let name = line[line.startIndex..<barAt.lowerBound].split(separator: UInt8(ascii: " ")).first ?? []
            guard words.count == 2, words[0].elementsEqual(name),
                  let k = Int(String(decoding: name.dropFirst(6), as: UTF8.self)), (1...children).contains(k),
                  let n = Int(String(decoding: words[1], as: UTF8.self)) else {
                problems.append("torn or foreign line: \(String(decoding: line.prefix(120), as: UTF8.self))")
                if problems.count > 5 { return problems }
                continue
            }
            if n != next[k] {
                problems.append("lines.\(k): expected \(next[k]), got \(n)")
                if problems.count > 5 { return problems }
            }
            next[k] = n + 1
        }
        for k in 1...children where next[k] != count + 1 {
            problems.append("lines.\(k) ended at \(next[k] - 1) of \(count)")
        }
        return problems
    }

    private func run(children: Int, count: Int, tty: Bool) async throws {
        let app = try makeApp(["Procfile": """
            lines: awk 'BEGIN { for (i = 1; i <= \(count); i++) printf "%s %d\\n", ENVIRON["PS"], i }'
            """])
        var args = ["start", "--no-color", "--no-timestamps", "-m", "lines=\(children)"]
        if !tty { args.append("--no-tty") }
        let sp = try SwiftProc(args, in: app)
        let marker = Array("exited with status 0".utf8)
        let done = await eventually(timeout: 120, every: 0.25) {
            let data = sp.stdout.data
            var found = 0
            var from = data.startIndex
            while let r = data[from...].firstRange(of: marker) { found += 1; from = r.upperBound }
            return found == children
        }
        #expect(done, "not all children finished: \(sp.stdout.text.suffix(500))")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
        let problems = Self.verify(sp.stdout.data, children: children, count: count)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func sixteenChildrenTimesAHundredThousandLinesThroughPipes() async throws {
        try await run(children: 16, count: 100_000, tty: false)
    }

    @Test func sixteenChildrenThroughPseudoTerminals() async throws {
        try await run(children: 16, count: 20_000, tty: true)
    }

    @Test func unterminatedFinalLineAndLongLinesSurvive() async throws {
        let app = try makeApp(["Procfile": """
            tail: printf 'first\\nno-newline-at-end'
            long: awk 'BEGIN { s = ""; for (i = 0; i < 100000; i++) s = s "x"; print s; print "after" }'
            """])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps", "--no-tty"], in: app)
        #expect(await eventually { sp.stdout.text.components(separatedBy: "exited with status 0").count - 1 == 2 })
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
        let lines = sp.stdout.text.split(separator: "\n")
        #expect(lines.contains("tail.1 | no-newline-at-end"))
        let pieces = lines.filter { $0.hasPrefix("long.1 | x") }.map { $0.count - "long.1 | ".count }
        #expect(pieces == [65536, 100000 - 65536], "a 100 KB line is split at 64 KiB, nothing lost")
        #expect(lines.contains("long.1 | after"))
    }

    @Test func invalidUTF8PassesThroughByteExact() async throws {
        let app = try makeApp(["Procfile": "bin: printf 'a\\377\\376b\\n'\n"])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps", "--no-tty"], in: app)
        #expect(await eventually { sp.stdout.text.contains("exited with status 0") })
        sp.signal(SIGINT)
        _ = await sp.waitForExit()
        let expected: [UInt8] = Array("bin.1  | a".utf8) + [0xFF, 0xFE] + Array("b\n".utf8)
        #expect(sp.stdout.data.firstRange(of: expected) != nil)
    }
}

/// Ordering between a child's own lines and swiftproc's lines about it.
@Suite(.serialized) struct LogOrderTests {
    @Test func anExitIsAnnouncedAfterTheChildsLastLine() async throws {
        let app = try makeApp(["Procfile": "app: seq 1 2000; echo last-words; exit 3\n"])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps", "--restart", "never", "-m", "app=30", "--no-tty"], in: app)
        let marker = Array("exited with status 3".utf8)
        let done = await eventually(timeout: 60, every: 0.1) {
            let data = sp.stdout.data
            var n = 0, from = data.startIndex
            while let r = data[from...].firstRange(of: marker) { n += 1; from = r.upperBound }
            return n == 30
        }
        #expect(done)
        sp.signal(SIGINT)
        _ = await sp.waitForExit()
        let lines = sp.stdout.text.split(separator: "\n").map(String.init)
        var early: [String] = []
        for i in 1...30 {
            let name = "app.\(i)"
            guard let exitAt = lines.firstIndex(where: { $0.hasSuffix("| \(name) exited with status 3") }),
                  let lastAt = lines.firstIndex(where: { $0.hasPrefix(name + " ") && $0.hasSuffix("| last-words") }) else {
                early.append("\(name): missing lines"); continue
            }
            if exitAt < lastAt { early.append(name) }
        }
        #expect(early.isEmpty, "exit announced before the last output: \(early)")
    }

    @Test func aLineWrittenInTwoPartsAcrossABufferBoundaryStaysWhole() async throws {
        let app = try makeApp(["Procfile": "big: printf '%2000s' '' | tr ' ' x; sleep 0.3; echo y\n"])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps", "--no-tty"], in: app)
        #expect(await sp.waitFor("exited with status 0"))
        sp.signal(SIGINT)
        _ = await sp.waitForExit()
        #expect(sp.stdout.text.contains("big.1  | " + String(repeating: "x", count: 2000) + "y\n"), "\(sp.stdout.text.prefix(300))")
    }
}
