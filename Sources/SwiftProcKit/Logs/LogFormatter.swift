#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How merged output looks: foreman's `HH:MM:SS name | text`.
public struct LogStyle: Sendable, Equatable {
    /// ANSI colour for each group's prefix. Foreman colours only when stdout is a terminal.
    public var color: Bool
    /// The `HH:MM:SS ` (local time) at the start of each line.
    public var timestamps: Bool

    public init(color: Bool, timestamps: Bool = true) {
        self.color = color
        self.timestamps = timestamps
    }

    /// Colour when `fd` is a terminal, timestamps on.
    public static func automatic(for fd: Int32) -> LogStyle {
        LogStyle(color: isatty(fd) == 1)
    }
}

/// Formats ``LogRecord``s as bytes, the same way for the live stream (`start`'s stdout, via
/// ``LogMultiplexer``) and for a `swiftproc logs` client printing records from the socket.
///
/// Layout, with `W` = ``nameWidth`` (the widest name registered, at least 6 = `system`):
/// - no colour: `HH:MM:SS name<pad> | text\n`
/// - colour:    `ESC[36mHH:MM:SS name<pad> |ESC[0m text\n` — the colour covers the prefix up to
///   and including the bar and is reset before the text, so the child's own escapes are untouched.
/// - `colorIndex < 0` (`system`): never coloured.
/// Without timestamps the `HH:MM:SS ` part is left out. The text is copied byte-exact.
///
/// A value type, not thread-safe (it caches the formatted second): give each thread its own copy.
public struct LogFormatter: Sendable {
    public static let minimumNameWidth = 6
    /// Foreman's cycle: cyan, yellow, green, magenta, red, blue; then their bright variants.
    public static let palette: [Int] = [36, 33, 32, 35, 31, 34, 96, 93, 92, 95, 91, 94]

    public var style: LogStyle
    public private(set) var nameWidth: Int

    private var cachedSecond = Int.min
    private var cachedClock: [UInt8] = Array("00:00:00".utf8)

    public init(style: LogStyle, names: [String] = []) {
        self.style = style
        nameWidth = LogFormatter.minimumNameWidth
        for name in names { register(name: name) }
    }

    /// Widens the name column to fit `name`. Returns whether it grew.
    @discardableResult
    public mutating func register(name: String) -> Bool {
        let width = name.count
        guard width > nameWidth else { return false }
        nameWidth = width
        return true
    }

    /// The SGR colour code for a group's colour slot, or `nil` for uncoloured (`colorIndex < 0`).
    public static func colorCode(for colorIndex: Int) -> Int? {
        colorIndex < 0 ? nil : palette[colorIndex % palette.count]
    }

    /// One formatted line, terminated by `\n`. Registers the record's source first (the column only grows).
    public mutating func format(_ record: LogRecord) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(record.text.count + nameWidth + 24)
        append(record, to: &out)
        return out
    }

    public mutating func append(_ record: LogRecord, to out: inout [UInt8]) {
        register(name: record.source)
        var template = makePrefix(name: record.source, colorIndex: record.colorIndex)
        stamp(&template, second: LogFormatter.second(of: record.time))
        out.append(contentsOf: template.bytes)
        out.append(contentsOf: record.text)
        out.append(0x0A)
    }

    // MARK: - Prefix templates (the reader thread caches one per fd)

    /// A line prefix with the clock bytes patched in place when the second changes.
    struct Prefix {
        var bytes: [UInt8]
        /// Where `HH:MM:SS` sits in `bytes`, or -1 without timestamps.
        var clockOffset: Int
        var second = Int.min
    }

    func makePrefix(name: String, colorIndex: Int) -> Prefix {
        var b: [UInt8] = []
        b.reserveCapacity(nameWidth + 24)
        let code = style.color ? LogFormatter.colorCode(for: colorIndex) : nil
        if let code {
            b.append(0x1B)
            b.append(UInt8(ascii: "["))
            b.append(contentsOf: String(code).utf8)
            b.append(UInt8(ascii: "m"))
        }
        var clockOffset = -1
        if style.timestamps {
            clockOffset = b.count
            b.append(contentsOf: "00:00:00 ".utf8)
        }
        b.append(contentsOf: name.utf8)
        let pad = nameWidth - name.count
        if pad > 0 { b.append(contentsOf: repeatElement(UInt8(ascii: " "), count: pad)) }
        b.append(contentsOf: " |".utf8)
        if code != nil { b.append(contentsOf: [0x1B, UInt8(ascii: "["), UInt8(ascii: "0"), UInt8(ascii: "m")]) }
        b.append(UInt8(ascii: " "))
        return Prefix(bytes: b, clockOffset: clockOffset)
    }

    mutating func stamp(_ prefix: inout Prefix, second: Int) {
        guard prefix.second != second else { return }
        prefix.second = second
        guard prefix.clockOffset >= 0 else { return }
        if second != cachedSecond { updateClock(second) }
        let offset = prefix.clockOffset
        for i in 0..<8 { prefix.bytes[offset + i] = cachedClock[i] }
    }

    static func second(of time: Double) -> Int {
        Int((time).rounded(.down))
    }

    private mutating func updateClock(_ second: Int) {
        cachedSecond = second
        var t = time_t(second)
        var parts = tm()
        localtime_r(&t, &parts)
        func two(_ v: Int32, _ at: Int) {
            cachedClock[at] = UInt8(48 + Int(v) / 10 % 10)
            cachedClock[at + 1] = UInt8(48 + Int(v) % 10)
        }
        two(parts.tm_hour, 0)
        two(parts.tm_min, 3)
        two(parts.tm_sec, 6)
    }
}
