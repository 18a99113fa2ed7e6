/// toml-test-decoder: the decoder interface of the toml-test conformance suite.
///
/// Usage:
///
///     toml-test-decoder < doc.toml
///
/// Reads one TOML document from stdin (raw bytes), and
/// - if it is valid, prints toml-test's tagged JSON on stdout (keys in document order; every
///   scalar is `{"type": "...", "value": "..."}`) and exits 0 with nothing on stderr;
/// - otherwise prints the error, rendered with `<stdin>` as the path, on stderr and exits 1.
///
/// Hidden flag, for `Benchmarks/toml/run.sh`:
///
///     toml-test-decoder --benchmark FILE N
///
/// reads FILE once, decodes it N times in-process and prints the median decode time in
/// milliseconds (e.g. `4.213`) on stdout (the time to build the ``TOMLTable``, not to free it); exits 1 if the file cannot be read or does not decode.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TOML

func readAll(_ fd: Int32) -> [UInt8]? {
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { return data }
        data.append(contentsOf: chunk[0..<n])
    }
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { buf in
        var off = 0
        while off < buf.count {
            let n = write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            off += n
        }
    }
}

func fail(_ message: String) -> Never {
    writeAll(2, Array((message + "\n").utf8))
    exit(1)
}

// MARK: Tagged JSON

private let hexDigits = Array("0123456789abcdef".utf8)

func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for c in s.utf8 {
        switch c {
        case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
        case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        case 0..<0x20, 0x7F:
            out.append(contentsOf: Array("\\u00".utf8))
            out.append(hexDigits[Int(c >> 4)])
            out.append(hexDigits[Int(c & 15)])
        default:
            out.append(c)  // non-ASCII: valid UTF-8 passes through unchanged
        }
    }
    out.append(UInt8(ascii: "\""))
}

func appendTagged(_ type: String, _ value: String, to out: inout [UInt8]) {
    out.append(contentsOf: Array("{\"type\":\"\(type)\",\"value\":".utf8))
    appendJSONString(value, to: &out)
    out.append(UInt8(ascii: "}"))
}

func floatText(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    return "\(d)"  // shortest representation that round-trips
}

func appendJSON(_ value: TOMLValue, to out: inout [UInt8]) {
    switch value {
    case .table(let t):
        out.append(UInt8(ascii: "{"))
        for (i, e) in t.entries.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONString(e.key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendJSON(e.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    case .array(let a):
        out.append(UInt8(ascii: "["))
        for (i, v) in a.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendJSON(v, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    case .string(let s): appendTagged("string", s, to: &out)
    case .integer(let i): appendTagged("integer", String(i), to: &out)
    case .float(let d): appendTagged("float", floatText(d), to: &out)
    case .boolean(let b): appendTagged("bool", b ? "true" : "false", to: &out)
    case .dateTime(let dt): appendTagged(dt.offset == nil ? "datetime-local" : "datetime", dt.description, to: &out)
    case .localDate(let d): appendTagged("date-local", d.description, to: &out)
    case .localTime(let t): appendTagged("time-local", t.description, to: &out)
    }
}

// MARK: Benchmark

func benchmark(path: String, runs: Int) -> Never {
    let fd = open(path, O_RDONLY)
    guard fd >= 0, let bytes = readAll(fd) else { fail("cannot read \(path)") }
    close(fd)
    var times: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<max(1, runs) {
        let start = clock.now
        let table: TOMLTable
        do {
            table = try TOMLTable(parsing: bytes)
        } catch {
            fail(error.rendered(path: path))
        }
        let d = start.duration(to: clock.now)
        withExtendedLifetime(table) {}  // freeing the result is not part of decoding
        times.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }
    times.sort()
    let median = times[times.count / 2]
    let rounded = (median * 1000).rounded() / 1000
    print(rounded)
    exit(0)
}

// MARK: Main

let args = CommandLine.arguments
if args.count >= 2 && args[1] == "--benchmark" {
    guard args.count == 4, let n = Int(args[3]) else { fail("usage: toml-test-decoder --benchmark FILE N") }
    benchmark(path: args[2], runs: n)
}

guard let input = readAll(0) else { fail("<stdin>: cannot read input") }
do {
    let table = try TOMLTable(parsing: input)
    var out: [UInt8] = []
    out.reserveCapacity(input.count * 2 + 16)
    appendJSON(.table(table), to: &out)
    out.append(0x0A)
    writeAll(1, out)
    exit(0)
} catch {
    fail(error.rendered(path: "<stdin>"))
}
