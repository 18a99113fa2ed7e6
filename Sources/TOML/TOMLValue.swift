/// The value model of a decoded TOML 1.0 document.
///
/// Decoding yields a ``TOMLTable`` (the root). Tables keep their keys in the order the file wrote
/// them, because users expect `[processes]` to start in the order they listed it, and they keep
/// the location of every key and value so that a configuration error can point at
/// `fly.toml:12:9` rather than just naming a key.

/// A 1-based position in a TOML source. `column` counts Unicode scalars from the line start.
public struct SourceLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }
}

/// Any TOML value.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    /// An offset date-time (`offset != nil`) or a local date-time (`offset == nil`).
    case dateTime(TOMLDateTime)
    case localDate(TOMLDate)
    case localTime(TOMLTime)
    case array([TOMLValue])
    case table(TOMLTable)

    /// A short English name of the value's kind, for error messages ("expected a string, found an integer").
    public var kindDescription: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a float"
        case .boolean: return "a boolean"
        case .dateTime(let d): return d.offset == nil ? "a local date-time" : "a date-time"
        case .localDate: return "a local date"
        case .localTime: return "a local time"
        case .array: return "an array"
        case .table: return "a table"
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var integerValue: Int64? { if case .integer(let i) = self { return i }; return nil }
    public var floatValue: Double? { if case .float(let f) = self { return f }; return nil }
    public var booleanValue: Bool? { if case .boolean(let b) = self { return b }; return nil }
    public var arrayValue: [TOMLValue]? { if case .array(let a) = self { return a }; return nil }
    public var tableValue: TOMLTable? { if case .table(let t) = self { return t }; return nil }
}

/// A calendar date, as written (`1979-05-27`).
public struct TOMLDate: Sendable, Hashable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public var description: String { pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) }
}

/// A wall-clock time with up to nanosecond precision (`07:32:00.999999`).
public struct TOMLTime: Sendable, Hashable, CustomStringConvertible {
    public var hour: Int
    public var minute: Int
    public var second: Int
    public var nanosecond: Int

    public init(hour: Int, minute: Int, second: Int, nanosecond: Int = 0) {
        self.hour = hour
        self.minute = minute
        self.second = second
        self.nanosecond = nanosecond
    }

    /// RFC 3339 text; the fraction is printed only when non-zero, without trailing zeros.
    public var description: String {
        var s = pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2)
        if nanosecond != 0 {
            var frac = pad(nanosecond, 9)
            while frac.hasSuffix("0") { frac.removeLast() }
            s += "." + frac
        }
        return s
    }
}

/// A date and a time, with the UTC offset in minutes when the document gave one
/// (`Z` is `0`; `-00:00` is also `0`).
public struct TOMLDateTime: Sendable, Hashable, CustomStringConvertible {
    public var date: TOMLDate
    public var time: TOMLTime
    /// Minutes east of UTC, or `nil` for a local date-time.
    public var offset: Int?

    public init(date: TOMLDate, time: TOMLTime, offset: Int? = nil) {
        self.date = date
        self.time = time
        self.offset = offset
    }

    public var description: String {
        var s = date.description + "T" + time.description
        if let offset {
            if offset == 0 {
                s += "Z"
            } else {
                let a = abs(offset)
                s += (offset < 0 ? "-" : "+") + pad(a / 60, 2) + ":" + pad(a % 60, 2)
            }
        }
        return s
    }
}

private func pad(_ n: Int, _ width: Int) -> String {
    let s = String(n)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

/// A TOML table: keys in document order, each with where its key and its value were written.
public struct TOMLTable: Sendable, Equatable {
    /// One key of a table with its value and source positions.
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: TOMLValue
        /// Where the (last segment of the) key was written.
        public var keyLocation: SourceLocation
        /// Where the value starts; for a table created by a `[header]`, the header's position.
        public var valueLocation: SourceLocation

        public init(key: String, value: TOMLValue, keyLocation: SourceLocation, valueLocation: SourceLocation) {
            self.key = key
            self.value = value
            self.keyLocation = keyLocation
            self.valueLocation = valueLocation
        }
    }

    /// Entries in document order.
    public private(set) var entries: [Entry] = []
    /// Key to position in `entries`; only kept for tables with more than `linearLimit` keys
    /// (small tables are searched linearly, which is faster than hashing and saves memory).
    private var index: [String: Int] = [:]
    private static let linearLimit = 16

    private func position(of key: String) -> Int? {
        if entries.count <= TOMLTable.linearLimit {
            for i in entries.indices where entries[i].key == key { return i }
            return nil
        }
        return index[key]
    }
    /// Where the table itself was opened (its `[header]`, `{`, or the first key of a dotted key);
    /// `nil` for the root table.
    public var location: SourceLocation?

    public init(location: SourceLocation? = nil) {
        self.location = location
    }

    /// Builds a table from entries whose keys are known to be distinct (the decoder's fast path).
    init(location: SourceLocation?, uniqueEntries: [Entry]) {
        self.location = location
        self.entries = uniqueEntries
        if uniqueEntries.count > TOMLTable.linearLimit {
            index.reserveCapacity(uniqueEntries.count)
            for i in uniqueEntries.indices { index[uniqueEntries[i].key] = i }
        }
    }

    public var keys: [String] { entries.map(\.key) }
    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    public subscript(key: String) -> TOMLValue? {
        guard let i = position(of: key) else { return nil }
        return entries[i].value
    }

    /// The entry for `key`, with its locations.
    public func entry(_ key: String) -> Entry? {
        guard let i = position(of: key) else { return nil }
        return entries[i]
    }

    /// Sets `key`, appending it if new (keeping its first position if it already exists).
    public mutating func set(_ value: TOMLValue, for key: String, keyLocation: SourceLocation, valueLocation: SourceLocation) {
        if let i = position(of: key) {
            entries[i].value = value
            return
        }
        entries.append(Entry(key: key, value: value, keyLocation: keyLocation, valueLocation: valueLocation))
        if entries.count == TOMLTable.linearLimit + 1 {
            for i in entries.indices { index[entries[i].key] = i }
        } else if entries.count > TOMLTable.linearLimit {
            index[key] = entries.count - 1
        }
    }

    public static func == (a: TOMLTable, b: TOMLTable) -> Bool {
        a.entries.map { [$0.key: $0.value] } == b.entries.map { [$0.key: $0.value] }
    }
}

/// A decoding error: what went wrong and where. Rendered for people by ``rendered(path:)``.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var location: SourceLocation
    /// The text of the offending line (without its newline), for a caret display.
    public var sourceLine: String?

    public init(_ message: String, at location: SourceLocation, sourceLine: String? = nil) {
        self.message = message
        self.location = location
        self.sourceLine = sourceLine
    }

    public var description: String { "\(location): \(message)" }

    /// `fly.toml:12:9: expected '=' after key "app"`, then the source line and a caret under column 9.
    public func rendered(path: String) -> String {
        var s = "\(path):\(location.line):\(location.column): \(message)"
        if let line = sourceLine {
            let shown = String(line.unicodeScalars.map { $0 == "\t" ? " " : Character($0) })
            s += "\n    " + shown + "\n    " + String(repeating: " ", count: max(0, location.column - 1)) + "^"
        }
        return s
    }
}
