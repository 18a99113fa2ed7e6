/// Reading and writing durations the way fly.toml spells them.
///
/// flyctl parses duration strings with Go's `time.ParseDuration`, so real files contain `"30s"`,
/// `"1m30s"`, `"500ms"` and `"1.5h"`; accepting exactly that grammar means a file that deploys
/// also runs here.
public enum DurationText {
    /// Parses Go's duration syntax: an optional sign, then one or more `<number><unit>` pairs with
    /// units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`; numbers may have a fraction. `"0"` alone is
    /// zero. Returns `nil` for anything else (including a bare number, whose unit would be a guess).
    public static func parse(_ text: String) -> Duration? {
        var scalars = Array(text.unicodeScalars)[...]
        var negative = false
        if let first = scalars.first, first == "-" || first == "+" {
            negative = first == "-"
            scalars = scalars.dropFirst()
        }
        if scalars.count == 1 && scalars.first == "0" { return .zero }
        if scalars.isEmpty { return nil }
        var totalNanoseconds = 0.0
        while !scalars.isEmpty {
            var number = ""
            while let c = scalars.first, ("0"..."9").contains(c) || c == "." {
                number.unicodeScalars.append(c)
                scalars = scalars.dropFirst()
            }
            guard !number.isEmpty, number != ".", let value = Double(number) else { return nil }
            var unit = ""
            while let c = scalars.first, !(("0"..."9").contains(c) || c == ".") {
                unit.unicodeScalars.append(c)
                scalars = scalars.dropFirst()
            }
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: return nil
            }
            totalNanoseconds += value * scale
        }
        guard totalNanoseconds < 9.2e18 else { return nil }
        let ns = Int64(totalNanoseconds.rounded())
        return .nanoseconds(negative ? -ns : ns)
    }

    /// A short human spelling: `"500ms"`, `"5s"`, `"1m30s"`, `"5m"`, `"1h"`, `"2.5s"`.
    public static func format(_ duration: Duration) -> String {
        let totalNanoseconds = nanoseconds(duration)
        if totalNanoseconds == 0 { return "0s" }
        var sign = ""
        var ns = totalNanoseconds
        if ns < 0 { sign = "-"; ns = -ns }
        if ns < 1_000_000_000 {
            if ns % 1_000_000 == 0 { return sign + "\(ns / 1_000_000)ms" }
            if ns % 1_000 == 0 { return sign + "\(ns / 1_000)µs" }
            return sign + "\(ns)ns"
        }
        let hours = ns / 3_600_000_000_000
        let minutes = (ns / 60_000_000_000) % 60
        let secondNanos = ns % 60_000_000_000
        var s = sign
        if hours > 0 { s += "\(hours)h" }
        if minutes > 0 { s += "\(minutes)m" }
        if secondNanos > 0 {
            if secondNanos % 1_000_000_000 == 0 {
                s += "\(secondNanos / 1_000_000_000)s"
            } else {
                var text = String(Double(secondNanos) / 1e9)
                if text.hasSuffix(".0") { text.removeLast(2) }
                s += text + "s"
            }
        }
        return s
    }

    /// The duration in seconds, for JSON and arithmetic.
    public static func seconds(_ duration: Duration) -> Double {
        let c = duration.components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let c = duration.components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}
