import Testing
import SwiftProcKit

/// Reference model of the splitter's rules, written the obvious (slow) way.
private func referenceLines(_ stream: [UInt8], max: Int, flushAtEnd: Bool) -> [[UInt8]] {
    var out: [[UInt8]] = []
    func pieces(_ line: [UInt8]) {
        if line.isEmpty { out.append([]); return }
        var i = 0
        while i < line.count {
            out.append(Array(line[i..<min(i + max, line.count)]))
            i += max
        }
    }
    var cur: [UInt8] = []
    for b in stream {
        if b == 0x0A {
            if cur.last == 0x0D { cur.removeLast() }
            pieces(cur)
            cur = []
        } else {
            cur.append(b)
        }
    }
    if flushAtEnd && !cur.isEmpty { pieces(cur) }
    return out
}

private func split(_ chunks: [[UInt8]], max: Int = LineSplitter.defaultMaxLineLength, flushAtEnd: Bool = false) -> [[UInt8]] {
    var splitter = LineSplitter(maxLineLength: max)
    var out: [[UInt8]] = []
    for c in chunks { splitter.feed(c) { out.append(Array($0)) } }
    if flushAtEnd { splitter.flushPartial { out.append(Array($0)) } }
    return out
}

private func b(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct LogLineSplitterTests {
    @Test func splitsAcrossChunkBoundaries() {
        var splitter = LineSplitter()
        var out: [[UInt8]] = []
        for c in ["ab", "c\nde", "f\n\ng", ""] { splitter.feed(b(c)) { out.append(Array($0)) } }
        #expect(out == [b("abc"), b("def"), b("")])
        #expect(splitter.hasPartialLine)
        #expect(splitter.partialLineLength == 1)
        splitter.flushPartial { out.append(Array($0)) }
        #expect(out.last == b("g"))
        #expect(!splitter.hasPartialLine)
    }

    @Test func crBeforeNewlineIsPartOfTheTerminatorOtherCRsAreKept() {
        #expect(split([b("a\r\nb\rc\n\r\r\n\r\n")]) == [b("a"), b("b\rc"), b("\r"), b("")])
        // The \r and \n in different chunks.
        #expect(split([b("a\r"), b("\nb\r"), b("x\n")]) == [b("a"), b("b\rx")])
    }

    @Test func invalidUTF8PassesThroughByteExact() {
        let bytes: [UInt8] = [0xFF, 0xFE, 0xC3, 0x28, 0x80, 0x00, 0x1B, 0x5B, 0x33, 0x31, 0x6D, 0x0A, 0xF0, 0x9F]
        #expect(split([bytes], flushAtEnd: true) == [Array(bytes[0..<11]), [0xF0, 0x9F]])
    }

    @Test func lineOf64KiBPlusOneIsTwoPieces() {
        let max = LineSplitter.defaultMaxLineLength
        let line = [UInt8](repeating: 0x61, count: max + 1)
        #expect(split([line + [0x0A]]) == [Array(line[0..<max]), [0x61]])
        // Same when the line arrives in small chunks.
        var chunks: [[UInt8]] = []
        var i = 0
        let all = line + [0x0A]
        while i < all.count { chunks.append(Array(all[i..<min(i + 4093, all.count)])); i += 4093 }
        #expect(split(chunks) == [Array(line[0..<max]), [0x61]])
        // Exactly 64 KiB (with CRLF, split right after the \r) is one line.
        let exact = [UInt8](repeating: 0x62, count: max)
        #expect(split([exact + [0x0D], [0x0A]]) == [exact])
        #expect(split([exact + [0x0D, 0x0A]]) == [exact])
    }

    @Test func twoMiBLineIsEmittedInPiecesWithBoundedMemory() {
        let max = LineSplitter.defaultMaxLineLength
        var line: [UInt8] = []
        for i in 0..<(2 << 20) { let v = UInt8(truncatingIfNeeded: i % 251); line.append(v == 0x0A ? 0x0B : v) }
        var splitter = LineSplitter()
        var pieces: [[UInt8]] = []
        var maxPending = 0
        var i = 0
        while i < line.count {
            splitter.feed(Array(line[i..<min(i + 65_536, line.count)])) { pieces.append(Array($0)) }
            maxPending = Swift.max(maxPending, splitter.partialLineLength)
            i += 65_536
        }
        splitter.feed([0x0A]) { pieces.append(Array($0)) }
        #expect(pieces.count == 32)
        #expect(pieces.allSatisfy { $0.count == max })
        let intact = Array(pieces.joined()) == line
        #expect(intact)
        #expect(maxPending <= max + 1)
    }

    @Test func partialFlushThenTerminatorDoesNotAddAnEmptyLine() {
        var splitter = LineSplitter()
        var out: [[UInt8]] = []
        splitter.feed(b("prompt> ")) { out.append(Array($0)) }
        #expect(out.isEmpty)
        splitter.flushPartial { out.append(Array($0)) }
        #expect(out == [b("prompt> ")])
        splitter.feed(b("\n")) { out.append(Array($0)) }      // the terminator of the flushed text
        splitter.feed(b("\n")) { out.append(Array($0)) }      // a real empty line
        #expect(out == [b("prompt> "), b("")])
        splitter.feed(b("50%\r")) { out.append(Array($0)) }
        splitter.flushPartial { out.append(Array($0)) }
        splitter.feed(b("\r")) { out.append(Array($0)) }
        splitter.feed(b("\nnext\n")) { out.append(Array($0)) }
        #expect(out == [b("prompt> "), b(""), b("50%\r"), b("next")])
        // flushPartial with nothing pending emits nothing.
        splitter.flushPartial { out.append(Array($0)) }
        #expect(out.count == 4)
    }

    /// Every way of cutting a stream into three chunks gives the reference model's lines
    /// (small max length so pieces, CR-at-boundary and empty lines all occur).
    @Test(arguments: [
        "ab\r\ncdefgh\r\n\r\nijklm\rn\n\nxyz",
        "abcd\r\nabcde\r\nabcdef\r\n\r\r\n12345\r6\n",
        "\n\r\n\rabcdefghijk\n",
    ])
    func anyChunkingMatchesTheModel(_ text: String) {
        let stream = b(text)
        let max = 5
        let expected = referenceLines(stream, max: max, flushAtEnd: true)
        for i in 0...stream.count {
            for j in i...stream.count {
                let chunks = [Array(stream[0..<i]), Array(stream[i..<j]), Array(stream[j...])]
                #expect(split(chunks, max: max, flushAtEnd: true) == expected, "cuts at \(i), \(j)")
            }
        }
    }
}
