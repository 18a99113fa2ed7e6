import Testing
@testable import TOML

/// Hostile inputs must produce an error or a value: never a crash, a hang or a stack overflow.
@Suite struct HostileInputTests {
    let limit = TOMLTable.maximumNestingDepth

    @Test func megabyteOfOpenBrackets() {
        let e = decodeError([UInt8](repeating: UInt8(ascii: "["), count: 1 << 20))
        #expect(e?.location == loc(1, 3))
    }

    @Test func deeplyNestedArraysAreAnError() {
        let n = 100_000
        let text = "a = " + String(repeating: "[", count: n) + String(repeating: "]", count: n)
        let e = decodeError(text)
        #expect(e?.message.contains("nesting is too deep") == true)
        // The root table is level 0 and the k-th bracket level k: bracket limit+1 is refused.
        #expect(e?.location == loc(1, 5 + limit))
    }

    @Test func deeplyNestedInlineTablesAreAnError() {
        let n = 100_000
        let text = "a = " + String(repeating: "{b = ", count: n) + "1" + String(repeating: "}", count: n)
        let e = decodeError(text)
        #expect(e?.message.contains("nesting is too deep") == true)
        #expect(e?.location.line == 1)
    }

    @Test func unclosedNestingIsAnError() {
        #expect(decodeError("a = " + String(repeating: "[", count: 300)) != nil)
        #expect(decodeError("a = " + String(repeating: "[{b=", count: 100_000)) != nil)
    }

    @Test func deepTableHeadersAndDottedKeysAreAnError() {
        let header = "[" + Array(repeating: "a", count: 100_000).joined(separator: ".") + "]"
        #expect(decodeError(header) != nil)
        let dotted = Array(repeating: "k", count: 100_000).joined(separator: ".") + " = 1"
        #expect(decodeError(dotted) != nil)
        #expect(decodeError(String(repeating: "[[a]]\n", count: 10) + "[" + Array(repeating: "a", count: limit + 5).joined(separator: ".") + "]") != nil)
    }

    @Test func nestingJustBelowTheLimitDecodes() {
        let n = limit  // the k-th nested array is level k
        let text = "a = " + String(repeating: "[", count: n) + String(repeating: "]", count: n)
        var v = decode(text)["a"]
        var depth = 0
        while case .array(let items)? = v {
            depth += 1
            v = items.first
        }
        #expect(depth == n)
        #expect(decodeError("a = " + String(repeating: "[", count: n + 1) + String(repeating: "]", count: n + 1)) != nil)
    }

    @Test func nulBytes() {
        #expect(decodeError([0, 0, 0]) != nil)
        #expect(decodeError(Array("a = 1\n".utf8) + [0] + Array(" = 2".utf8))?.location == loc(2, 1))
        #expect(decodeError(Array("a = \"".utf8) + [0] + Array("\"".utf8)) != nil)
        #expect(decodeError([UInt8](repeating: 0, count: 1 << 20)) != nil)
    }

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(seed: 0x70_4D_4C)  // deterministic, so a failure reproduces
        let alphabet = Array("[]{}=\"'.,#\n\r\t abc123_-+:eExob\\uU".utf8) + [0, 0x7F, 0xC3, 0xA9, 0xFF]
        var bad: [[UInt8]] = []
        for _ in 0..<20_000 {
            let n = Int.random(in: 0..<40, using: &rng)
            let bytes = (0..<n).map { _ in alphabet.randomElement(using: &rng)! }
            do {
                _ = try TOMLTable(parsing: bytes)
            } catch {
                // Every error points inside the document and shows its line. (Checked once at
                // the end: an #expect per case would dominate the run time.)
                let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).count
                if !(1...lines).contains(error.location.line) || !(1...(n + 1)).contains(error.location.column)
                    || error.sourceLine == nil {
                    bad.append(bytes)
                }
            }
        }
        #expect(bad.isEmpty, "\(bad.prefix(3))")
    }

    @Test func tenMegabyteString() {
        let body = String(repeating: "abcdefghi\u{E9}", count: 1_000_000)
        let t = decode("s = \"" + body + "\"\nafter = 1")
        #expect(t["s"]?.stringValue?.utf8.count == 11_000_000)
        #expect(t.entry("after")?.keyLocation == loc(2, 1))
        let ml = decode("s = '''\n" + body + "'''")
        #expect(ml["s"]?.stringValue?.unicodeScalars.count == 10_000_000)
    }

    @Test func veryLongKey() {
        let key = String(repeating: "k", count: 1_000_000)
        let t = decode(key + " = 1\n\"" + key + "x\" = 2")
        #expect(t[key] == .integer(1))
        #expect(t[key + "x"] == .integer(2))
        #expect(decodeError(key + " = 1\n" + key + " = 2")?.location == loc(2, 1))
    }

    @Test func hugeNumberOfKeys() {
        let n = 200_000
        var text = ""
        text.reserveCapacity(n * 16)
        for i in 0..<n { text += "key\(i) = \(i)\n" }
        let t = decode(text)
        #expect(t.count == n)
        #expect(t["key123456"] == .integer(123_456))
        #expect(t.keys.last == "key\(n - 1)")
        #expect(decodeError(text + "key77 = 1")?.message == "duplicate key \"key77\" (first defined at 78:1)")
    }

    @Test func hugeArrayOnOneLine() {
        let n = 200_000
        let text = "a = [" + (0..<n).map(String.init).joined(separator: ",") + "]\nb = {" + (0..<n).map { "k\($0) = \($0)" }.joined(separator: ", ") + "}"
        let t = decode(text)
        #expect(t["a"]?.arrayValue?.count == n)
        #expect(t["b"]?.tableValue?.count == n)
        #expect(t["b"]?.tableValue?.entry("k1")?.keyLocation == loc(2, 14))
    }
}

/// A tiny seedable generator for reproducible fuzzing.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
