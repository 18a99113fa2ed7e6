/// The TOML 1.0.0 decoder: a byte-level parser over the raw UTF-8 of a document.
///
/// Design notes:
/// - The whole input is UTF-8 validated first; afterwards the parser works on bytes only and
///   creates `String`s straight from validated byte ranges.
/// - While parsing, tables and arrays live in an arena (`[Node]`, addressed by index) that records
///   how every table came to be (implicitly by a header path, explicitly by a header, by dotted
///   keys, inline), which is what TOML's redefinition rules are about. Children are always created
///   after their parents, so the arena is turned into ``TOMLTable``/``TOMLValue`` in one backwards
///   pass, without recursion.
/// - Arrays and inline tables are parsed with an explicit stack, never recursion, and nesting is
///   limited to ``TOMLTable/maximumNestingDepth`` levels, so hostile input yields an error, not a
///   stack overflow.
/// - Locations are computed with a forward-only cursor (line, column in Unicode scalars), so
///   recording the position of every key and value costs O(document size) in total.
///
/// Choices the spec leaves open:
/// - A CRLF inside a multi-line string is decoded as LF, so a value does not depend on how the
///   file was checked out.
/// - Fractional seconds keep their first 9 digits (nanoseconds); further digits are dropped.
/// - A float literal too large for a Double (`1e400`) is an error, not infinity.
/// - Locations: a table opened by a header is located at its `[`; an intermediate table of a
///   header (`a` in `[a.b]`) at the first header that mentioned it, until `[a]` defines it; a
///   table made by dotted keys at the start of the dotted key; an inline table at its `{`.

extension TOMLTable {
    /// The deepest nesting of tables and arrays the decoder accepts (counting from the root table).
    /// Deeper documents are rejected with an error instead of risking a stack overflow later.
    public static let maximumNestingDepth = 512

    /// Decodes a TOML 1.0.0 document from raw bytes, which must be UTF-8 (a leading byte-order
    /// mark is skipped). Throws a ``TOMLError`` with the line, column and text of the problem.
    public init(parsing bytes: [UInt8]) throws(TOMLError) {
        let result: Result<TOMLTable, TOMLError> = bytes.withUnsafeBufferPointer { buf in
            var parser = Parser(buf)
            do throws(TOMLError) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }

    /// Decodes a TOML 1.0.0 document from a string.
    public init(parsing text: String) throws(TOMLError) {
        try self.init(parsing: Array(text.utf8))
    }
}

// MARK: - Arena

enum NodeKind: UInt8 {
    /// A table created as an intermediate of a `[a.b.c]` header; may later be defined by `[a]`.
    case implicitTable
    /// A table defined by a `[header]` or an element of an array of tables; also the root.
    case explicitTable
    /// A table created by a dotted key (`a.b = 1`).
    case dottedTable
    /// `{ ... }`: immutable after definition.
    case inlineTable
    /// `[ ... ]`: immutable after definition.
    case staticArray
    /// Created by `[[header]]`.
    case tableArray
}

/// A value in the arena: a scalar, or a table/array that is another node.
enum Slot {
    case value(TOMLValue)
    case node(Int)

    /// How a slot is stored: child nodes are an empty table whose location line is -1 and whose
    /// column is the node index (no real table has such a location), so entries and items can be
    /// kept as the final `TOMLTable.Entry`/`TOMLValue` arrays and moved, not copied, at the end.
    var encoded: TOMLValue {
        switch self {
        case .value(let v): return v
        case .node(let n): return .table(TOMLTable(location: SourceLocation(line: -1, column: n)))
        }
    }

    init(_ v: TOMLValue) {
        if case .table(let t) = v, let l = t.location, l.line == -1 {
            self = .node(l.column)
        } else {
            self = .value(v)
        }
    }
}

typealias NodeEntry = TOMLTable.Entry

extension TOMLTable.Entry {
    var slot: Slot { Slot(value) }
}

struct Node {
    var kind: NodeKind
    var depth: Int
    var location: SourceLocation
    var entries: [NodeEntry] = []
    /// Key to entry index; only built once a table has more than `linearLimit` keys (small tables
    /// are searched linearly, which is faster than hashing).
    var index: [String: Int] = [:]
    var items: [TOMLValue] = []
    /// Number of entries/items that are child nodes.
    var childCount = 0

    static let linearLimit = 16

    func find(_ key: String) -> Int? {
        if entries.count <= Node.linearLimit {
            for i in entries.indices where entries[i].key == key { return i }
            return nil
        }
        return index[key]
    }

    mutating func append(_ entry: NodeEntry) {
        if entries.isEmpty { entries.reserveCapacity(8) }
        entries.append(entry)
        if entries.count > Node.linearLimit {
            if entries.count == Node.linearLimit + 1 {
                index.reserveCapacity(Node.linearLimit * 4)
                for i in entries.indices { index[entries[i].key] = i }
            } else {
                index[entry.key] = entries.count - 1
            }
        }
    }

    init(kind: NodeKind, depth: Int, location: SourceLocation) {
        self.kind = kind
        self.depth = depth
        self.location = location
    }
}

struct KeySegment {
    var name: String
    var offset: Int
}

// MARK: - Bytes

private let TAB: UInt8 = 0x09
private let LF: UInt8 = 0x0A
private let CR: UInt8 = 0x0D
private let SPACE: UInt8 = 0x20
private let QUOTE: UInt8 = 0x22
private let HASH: UInt8 = 0x23
private let APOS: UInt8 = 0x27
private let PLUS: UInt8 = 0x2B
private let COMMA: UInt8 = 0x2C
private let MINUS: UInt8 = 0x2D
private let DOT: UInt8 = 0x2E
private let ZERO: UInt8 = 0x30
private let COLON: UInt8 = 0x3A
private let EQUALS: UInt8 = 0x3D
private let LBRACKET: UInt8 = 0x5B
private let BACKSLASH: UInt8 = 0x5C
private let RBRACKET: UInt8 = 0x5D
private let UNDERSCORE: UInt8 = 0x5F
private let LBRACE: UInt8 = 0x7B
private let RBRACE: UInt8 = 0x7D
private let DEL: UInt8 = 0x7F

@inline(__always) private func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }
@inline(__always) private func isBare(_ c: UInt8) -> Bool {
    c &- 0x61 < 26 || c &- 0x41 < 26 || c &- 0x30 < 10 || c == UNDERSCORE || c == MINUS
}
/// Characters that continue a number, date, or bare word; used to reject `12abc`, `1.2.3`, `truex`.
@inline(__always) private func isTokenChar(_ c: UInt8) -> Bool {
    isBare(c) || c == DOT || c == PLUS || c == COLON
}
/// Control characters TOML forbids in strings and comments (tab is allowed).
@inline(__always) private func isForbiddenControl(_ c: UInt8) -> Bool {
    (c < 0x20 && c != TAB) || c == DEL
}
private func hexByte(_ c: UInt8) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
    return String([digits[Int(c >> 4)], digits[Int(c & 15)]])
}

/// Returns the offset of the first byte that is not part of well-formed UTF-8, or nil.
func firstInvalidUTF8(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
    let n = b.count
    guard let base = b.baseAddress else { return nil }
    var i = 0
    while i < n {
        // Fast path: 8 ASCII bytes at a time.
        if i + 8 <= n && UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
            i += 8
            continue
        }
        let c = b[i]
        if c < 0x80 { i += 1; continue }
        if c < 0xC2 { return i }
        if c < 0xE0 {
            guard i + 1 < n, b[i + 1] & 0xC0 == 0x80 else { return i }
            i += 2
            continue
        }
        if c < 0xF0 {
            guard i + 2 < n else { return i }
            let lo: UInt8 = c == 0xE0 ? 0xA0 : 0x80
            let hi: UInt8 = c == 0xED ? 0x9F : 0xBF
            guard b[i + 1] >= lo, b[i + 1] <= hi, b[i + 2] & 0xC0 == 0x80 else { return i }
            i += 3
            continue
        }
        if c < 0xF5 {
            guard i + 3 < n else { return i }
            let lo: UInt8 = c == 0xF0 ? 0x90 : 0x80
            let hi: UInt8 = c == 0xF4 ? 0x8F : 0xBF
            guard b[i + 1] >= lo, b[i + 1] <= hi, b[i + 2] & 0xC0 == 0x80, b[i + 3] & 0xC0 == 0x80 else { return i }
            i += 4
            continue
        }
        return i
    }
    return nil
}

// MARK: - Parser

struct Parser {
    let b: UnsafeBufferPointer<UInt8>
    let end: Int
    /// Offset of the first byte after a BOM.
    let start: Int
    var p: Int
    var nodes: [Node] = []
    var keys: [KeySegment] = []
    var scratch: [UInt8] = []
    // Forward-only location cursor.
    var curOffset: Int
    var curLine = 1
    var curColumn = 1

    init(_ b: UnsafeBufferPointer<UInt8>) {
        self.b = b
        self.end = b.count
        let bom = b.count >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF
        self.start = bom ? 3 : 0
        self.p = start
        self.curOffset = start
    }

    // MARK: Locations and errors

    @inline(__always) func at(_ i: Int) -> UInt8? { i < end ? b[i] : nil }

    @inline(__always) func str(_ s: Int, _ e: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: b[s..<e]), as: UTF8.self)
    }

    /// Location of `offset`; cheap when offsets are requested in increasing order.
    mutating func loc(_ offset: Int) -> SourceLocation {
        if offset < curOffset { return slowLocation(offset).location }
        var i = curOffset, line = curLine, col = curColumn
        while i < offset {
            let c = b[i]
            if c == LF { line += 1; col = 1 } else if c & 0xC0 != 0x80 { col += 1 }
            i += 1
        }
        curOffset = offset
        curLine = line
        curColumn = col
        return SourceLocation(line: line, column: col)
    }

    func slowLocation(_ offset: Int) -> (location: SourceLocation, lineStart: Int) {
        let o = min(max(offset, start), end)
        var i = start, line = 1, col = 1, lineStart = start
        while i < o {
            let c = b[i]
            if c == LF { line += 1; col = 1; lineStart = i + 1 } else if c & 0xC0 != 0x80 { col += 1 }
            i += 1
        }
        return (SourceLocation(line: line, column: col), lineStart)
    }

    func err(_ message: String, _ offset: Int) -> TOMLError {
        let (location, lineStart) = slowLocation(offset)
        var j = lineStart
        while j < end && b[j] != LF { j += 1 }
        if j > lineStart && b[j - 1] == CR { j -= 1 }
        // Very long lines (minified data, a 1 MB run of brackets) are cut a little after the
        // error, on a character boundary, so the caret display stays readable.
        let cut = max(offset, lineStart) + 80
        if j - lineStart > 1000 && cut < j {
            var k = cut
            while k > lineStart && b[k] & 0xC0 == 0x80 { k -= 1 }
            return TOMLError(message, at: location, sourceLine: str(lineStart, k) + " …")
        }
        return TOMLError(message, at: location, sourceLine: str(lineStart, j))
    }

    /// A description of the byte at `offset` for messages: `'x'`, `a newline`, `end of file`, ...
    func describe(_ offset: Int) -> String {
        guard offset < end else { return "end of file" }
        let c = b[offset]
        switch c {
        case LF: return "a newline"
        case CR: return "a carriage return"
        case TAB: return "a tab"
        case 0..<0x20, DEL: return "control character U+00" + hexByte(c)
        case 0x20..<0x80: return "'" + String(UnicodeScalar(c)) + "'"
        default:
            var e = offset + 1
            while e < end && b[e] & 0xC0 == 0x80 { e += 1 }
            return "'" + str(offset, e) + "'"
        }
    }

    /// The text of the token (number, date, bare word) starting at `s`.
    func token(_ s: Int) -> String {
        var e = s
        if e < end && (b[e] == PLUS || b[e] == MINUS) { e += 1 }
        while e < end && isTokenChar(b[e]) { e += 1 }
        return str(s, max(e, min(s + 1, end)))
    }

    /// The key just parsed (its first `upTo` segments), for messages: `"app"`, `"a.b"`, or the
    /// TOML spelling when a segment needs quotes (`"my key".x`).
    func displayKey(_ upTo: Int? = nil) -> String {
        let text = keyText(upTo)
        return text.first == "\"" || text.hasSuffix("\"") ? text : "\"" + text + "\""
    }

    /// The key just parsed as written in TOML, quoting segments that are not bare: `a.b`, `"my key".x`.
    func keyText(_ upTo: Int? = nil) -> String {
        let n = upTo ?? keys.count
        var parts: [String] = []
        for k in keys[0..<n] {
            let bare = !k.name.isEmpty && k.name.utf8.allSatisfy(isBare)
            parts.append(bare ? k.name : quoteKey(k.name))
        }
        return parts.joined(separator: ".")
    }

    func quoteKey(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    out += "\\u00" + hexByte(UInt8(u.value))
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    // MARK: Whitespace, comments, newlines

    @inline(__always) mutating func skipWS() {
        while p < end && (b[p] == SPACE || b[p] == TAB) { p += 1 }
    }

    /// At a CR: consumes CRLF or fails.
    mutating func crlf() throws(TOMLError) {
        if at(p + 1) == LF { p += 2; return }
        throw err("carriage return must be followed by a newline (a lone CR is not a line ending)", p)
    }

    /// At '#': skips the comment up to (not including) the newline.
    mutating func skipComment() throws(TOMLError) {
        p += 1
        while p < end {
            let c = b[p]
            if c == LF { return }
            if isForbiddenControl(c) {
                if c == CR && at(p + 1) == LF { return }
                throw err("control character U+00\(hexByte(c)) is not allowed in a comment", p)
            }
            p += 1
        }
    }

    /// After a key/value pair or a header: optional whitespace and comment, then a newline or EOF.
    mutating func endOfLine(after what: String) throws(TOMLError) {
        skipWS()
        guard p < end else { return }
        if b[p] == HASH {
            try skipComment()
            guard p < end else { return }
        }
        let c = b[p]
        if c == LF { p += 1; return }
        if c == CR { try crlf(); return }
        throw err("expected a newline after \(what), found \(describe(p))", p)
    }

    /// Whitespace, newlines and comments between array elements.
    mutating func skipArrayFiller() throws(TOMLError) {
        while p < end {
            let c = b[p]
            if c == SPACE || c == TAB || c == LF {
                p += 1
            } else if c == CR {
                try crlf()
            } else if c == HASH {
                try skipComment()
            } else {
                return
            }
        }
    }

    // MARK: Document

    mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        if let bad = firstInvalidUTF8(b) {
            throw err("invalid UTF-8 (byte 0x\(hexByte(b[bad]))); a TOML document must be UTF-8", bad)
        }
        nodes.append(Node(kind: .explicitTable, depth: 0, location: SourceLocation(line: 1, column: 1)))
        var current = 0
        while true {
            skipWS()
            guard p < end else { break }
            let c = b[p]
            if c == LF {
                p += 1
            } else if c == CR {
                try crlf()
            } else if c == HASH {
                try skipComment()
            } else if c == LBRACKET {
                current = try parseHeader()
                try endOfLine(after: "the table header")
            } else {
                try parseKeyValue(in: current)
                try endOfLine(after: "the value")
            }
        }
        return build()
    }

    /// Turns the arena into values, children (higher indices) first.
    mutating func build() -> TOMLTable {
        var built = [TOMLValue?](repeating: nil, count: nodes.count)
        var i = nodes.count - 1
        while i >= 0 {
            let kind = nodes[i].kind
            let childCount = nodes[i].childCount
            switch kind {
            case .staticArray, .tableArray:
                var items: [TOMLValue] = []
                swap(&items, &nodes[i].items)
                if childCount > 0 {
                    for k in items.indices {
                        if case .node(let n) = Slot(items[k]) { items[k] = built[n]!; built[n] = nil }
                    }
                }
                built[i] = .array(items)
            case .implicitTable, .explicitTable, .dottedTable, .inlineTable:
                var entries: [TOMLTable.Entry] = []
                swap(&entries, &nodes[i].entries)
                if childCount > 0 {
                    for k in entries.indices {
                        if case .node(let n) = entries[k].slot { entries[k].value = built[n]!; built[n] = nil }
                    }
                }
                built[i] = .table(TOMLTable(location: i == 0 ? nil : nodes[i].location, uniqueEntries: entries))
            }
            nodes[i].index = [:]
            i -= 1
        }
        if case .table(let root)? = built[0] { return root }
        return TOMLTable()
    }

    mutating func newNode(_ kind: NodeKind, depth: Int, location: SourceLocation, at offset: Int) throws(TOMLError) -> Int {
        if depth > TOMLTable.maximumNestingDepth {
            throw err("nesting is too deep (more than \(TOMLTable.maximumNestingDepth) levels of tables and arrays)", offset)
        }
        nodes.append(Node(kind: kind, depth: depth, location: location))
        return nodes.count - 1
    }

    mutating func insert(_ t: Int, _ key: String, _ slot: Slot, _ keyLocation: SourceLocation, _ valueLocation: SourceLocation) {
        if case .node = slot { nodes[t].childCount += 1 }
        nodes[t].append(NodeEntry(key: key, value: slot.encoded, keyLocation: keyLocation, valueLocation: valueLocation))
    }

    mutating func appendItem(_ a: Int, _ slot: Slot) {
        if case .node = slot { nodes[a].childCount += 1 }
        nodes[a].items.append(slot.encoded)
    }

    func kindName(_ slot: Slot) -> String {
        switch slot {
        case .value(let v): return v.kindDescription
        case .node(let n):
            switch nodes[n].kind {
            case .implicitTable, .explicitTable: return "a table"
            case .dottedTable: return "a table (by dotted keys)"
            case .inlineTable: return "an inline table"
            case .staticArray: return "an array"
            case .tableArray: return "an array of tables"
            }
        }
    }

    // MARK: Keys

    mutating func parseKey() throws(TOMLError) {
        keys.removeAll(keepingCapacity: true)
        while true {
            try parseSimpleKey()
            skipWS()
            guard p < end && b[p] == DOT else { return }
            p += 1
            skipWS()
            if keys.count > TOMLTable.maximumNestingDepth {
                throw err("key has too many parts (nesting is limited to \(TOMLTable.maximumNestingDepth) levels)", p)
            }
        }
    }

    mutating func parseSimpleKey() throws(TOMLError) {
        let s = p
        guard p < end else {
            throw err(keys.isEmpty ? "expected a key, found end of file" : "expected a key after '.', found end of file", p)
        }
        let c = b[p]
        if isBare(c) {
            p += 1
            while p < end && isBare(b[p]) { p += 1 }
            keys.append(KeySegment(name: str(s, p), offset: s))
        } else if c == QUOTE {
            if at(p + 1) == QUOTE && at(p + 2) == QUOTE {
                throw err("a multi-line string cannot be used as a key", p)
            }
            keys.append(KeySegment(name: try parseBasicString(), offset: s))
        } else if c == APOS {
            if at(p + 1) == APOS && at(p + 2) == APOS {
                throw err("a multi-line string cannot be used as a key", p)
            }
            keys.append(KeySegment(name: try parseLiteralString(), offset: s))
        } else if keys.isEmpty {
            throw err("expected a key, found \(describe(p))", p)
        } else {
            throw err("expected a key after '.', found \(describe(p))", p)
        }
    }

    /// Follows (or creates) the table named by dotted-key segment `i` under table `t`.
    mutating func descendDotted(_ t: Int, _ i: Int, _ startLocation: SourceLocation) throws(TOMLError) -> Int {
        let seg = keys[i]
        if let ei = nodes[t].find(seg.name) {
            let e = nodes[t].entries[ei]
            if case .node(let n) = e.slot {
                switch nodes[n].kind {
                case .dottedTable:
                    return n
                case .implicitTable, .explicitTable:
                    throw err("dotted key \(displayKey()) cannot add to table \(displayKey(i + 1)), which was defined by a [table] header (at \(nodes[n].location))", seg.offset)
                case .inlineTable:
                    throw err("cannot add keys to inline table \(displayKey(i + 1)) (defined at \(e.valueLocation)); inline tables cannot be extended", seg.offset)
                case .staticArray, .tableArray:
                    throw err("key \(displayKey(i + 1)) is already defined as \(kindName(e.slot)) at \(e.keyLocation), so it cannot be used as a table", seg.offset)
                }
            }
            throw err("key \(displayKey(i + 1)) is already defined as \(kindName(e.slot)) at \(e.keyLocation), so it cannot be used as a table", seg.offset)
        }
        let n = try newNode(.dottedTable, depth: nodes[t].depth + 1, location: startLocation, at: seg.offset)
        insert(t, seg.name, .node(n), loc(seg.offset), startLocation)
        return n
    }

    /// Navigates the dotted key just parsed from table `t`, checks the last segment is new, and
    /// returns the target table and the key locations.
    mutating func prepareKeyValue(in table: Int, keyStart: Int) throws(TOMLError) -> (table: Int, key: String, keyLocation: SourceLocation) {
        let startLocation = loc(keyStart)
        var t = table
        for i in 0..<(keys.count - 1) { t = try descendDotted(t, i, startLocation) }
        let last = keys[keys.count - 1]
        if let ei = nodes[t].find(last.name) {
            let e = nodes[t].entries[ei]
            if case .node(let n) = e.slot, nodes[n].kind == .implicitTable || nodes[n].kind == .explicitTable {
                throw err("duplicate key \(displayKey()): a table with that name was already defined at \(nodes[n].location)", last.offset)
            }
            throw err("duplicate key \(displayKey()) (first defined at \(e.keyLocation))", last.offset)
        }
        return (t, last.name, loc(last.offset))
    }

    mutating func expectEquals() throws(TOMLError) {
        guard p < end && b[p] == EQUALS else {
            throw err("expected '=' after key \(displayKey())", p)
        }
        p += 1
        skipWS()
    }

    mutating func parseKeyValue(in table: Int) throws(TOMLError) {
        let keyStart = p
        try parseKey()
        try expectEquals()
        let (t, key, keyLocation) = try prepareKeyValue(in: table, keyStart: keyStart)
        let valueLocation = loc(p)
        guard p < end, b[p] != LF, b[p] != CR, b[p] != HASH else {
            throw err("expected a value after '=', found \(describe(p))", p)
        }
        let slot: Slot
        if b[p] == LBRACKET || b[p] == LBRACE {
            slot = .node(try parseContainer(parentDepth: nodes[t].depth))
        } else {
            slot = .value(try parseScalar())
        }
        insert(t, key, slot, keyLocation, valueLocation)
    }

    // MARK: Headers

    /// The header just parsed, for messages: `[a.b]` or `[[a.b]]`.
    func headerName(_ isArray: Bool) -> String {
        isArray ? "[[\(keyText())]]" : "[\(keyText())]"
    }

    mutating func parseHeader() throws(TOMLError) -> Int {
        let open = p
        let isArray = at(p + 1) == LBRACKET
        p += isArray ? 2 : 1
        skipWS()
        try parseKey()
        guard p < end && b[p] == RBRACKET else {
            throw err("expected '\(isArray ? "]]" : "]")' to close the \(isArray ? "array-of-tables" : "table") header, found \(describe(p))", p)
        }
        p += 1
        if isArray {
            guard p < end && b[p] == RBRACKET else {
                throw err("expected ']]' to close the array-of-tables header, found \(describe(p))", p)
            }
            p += 1
        }
        let headerLocation = loc(open)
        var t = 0
        for i in 0..<(keys.count - 1) {
            let seg = keys[i]
            if let ei = nodes[t].find(seg.name) {
                let e = nodes[t].entries[ei]
                if case .node(let n) = e.slot {
                    switch nodes[n].kind {
                    case .implicitTable, .explicitTable, .dottedTable:
                        t = n
                        continue
                    case .tableArray:
                        if let last = nodes[n].items.last, case .node(let m) = Slot(last) { t = m; continue }
                    case .inlineTable:
                        throw err("\(headerName(isArray)) cannot add to inline table \(displayKey(i + 1)) (defined at \(e.valueLocation)); inline tables cannot be extended", seg.offset)
                    case .staticArray:
                        break
                    }
                }
                throw err("\(headerName(isArray)) cannot be defined: key \(displayKey(i + 1)) is already \(kindName(e.slot)) (defined at \(e.keyLocation))", seg.offset)
            }
            let n = try newNode(.implicitTable, depth: nodes[t].depth + 1, location: headerLocation, at: seg.offset)
            insert(t, seg.name, .node(n), loc(seg.offset), headerLocation)
            t = n
        }
        let last = keys[keys.count - 1]
        if let ei = nodes[t].find(last.name) {
            let e = nodes[t].entries[ei]
            if case .node(let n) = e.slot {
                switch nodes[n].kind {
                case .implicitTable where !isArray:
                    nodes[n].kind = .explicitTable
                    nodes[n].location = headerLocation
                    nodes[t].entries[ei].valueLocation = headerLocation
                    return n
                case .explicitTable where !isArray:
                    throw err("table \(headerName(isArray)) is defined twice (first defined at \(nodes[n].location))", open)
                case .dottedTable where !isArray:
                    throw err("table \(headerName(isArray)) was already defined by dotted keys at \(e.keyLocation)", open)
                case .tableArray where isArray:
                    let elem = try newNode(.explicitTable, depth: nodes[n].depth + 1, location: headerLocation, at: open)
                    appendItem(n, .node(elem))
                    return elem
                case .tableArray:
                    throw err("table \(headerName(isArray)) conflicts with the array of tables [[\(keyText())]] defined at \(e.valueLocation)", open)
                default:
                    break
                }
            }
            throw err("\(headerName(isArray)) cannot be defined: key \(displayKey()) is already \(kindName(e.slot)) (defined at \(e.keyLocation))", open)
        }
        let keyLocation = loc(last.offset)
        if isArray {
            let array = try newNode(.tableArray, depth: nodes[t].depth + 1, location: headerLocation, at: open)
            let elem = try newNode(.explicitTable, depth: nodes[t].depth + 2, location: headerLocation, at: open)
            appendItem(array, .node(elem))
            insert(t, last.name, .node(array), keyLocation, headerLocation)
            return elem
        }
        let n = try newNode(.explicitTable, depth: nodes[t].depth + 1, location: headerLocation, at: open)
        insert(t, last.name, .node(n), keyLocation, headerLocation)
        return n
    }

    // MARK: Arrays and inline tables

    /// Parses an array or inline table starting at `p` iteratively; returns its node.
    mutating func parseContainer(parentDepth: Int) throws(TOMLError) -> Int {
        struct Frame {
            var node: Int
            var isArray: Bool
            /// 0: just opened, 1: after a comma, 2: after a value.
            var state: UInt8
        }
        var stack: [Frame] = []
        let root = try openContainer(parentDepth: parentDepth)
        stack.append(Frame(node: root, isArray: b[p - 1] == LBRACKET, state: 0))
        while let top = stack.last {
            let topIndex = stack.count - 1
            if top.isArray {
                try skipArrayFiller()
                guard p < end else {
                    throw err("unterminated array: expected ']' to close the array opened at \(nodes[top.node].location)", p)
                }
                let c = b[p]
                if top.state == 2 {
                    if c == COMMA { p += 1; stack[topIndex].state = 1; continue }
                    if c == RBRACKET { p += 1; stack.removeLast(); continue }
                    throw err("expected ',' or ']' after an array element, found \(describe(p))", p)
                }
                if c == RBRACKET { p += 1; stack.removeLast(); continue }
                stack[topIndex].state = 2
                if c == LBRACKET || c == LBRACE {
                    let child = try openContainer(parentDepth: nodes[top.node].depth)
                    appendItem(top.node, .node(child))
                    stack.append(Frame(node: child, isArray: c == LBRACKET, state: 0))
                    continue
                }
                if c == COMMA { throw err("expected a value in the array, found ','", p) }
                let v = try parseScalar()
                appendItem(top.node, .value(v))
            } else {
                skipWS()
                guard p < end else {
                    throw err("unterminated inline table: expected '}' to close the table opened at \(nodes[top.node].location)", p)
                }
                let c = b[p]
                if c == LF || c == CR {
                    throw err("newlines are not allowed inside an inline table (expected '}')", p)
                }
                if top.state == 2 {
                    if c == COMMA { p += 1; stack[topIndex].state = 1; continue }
                    if c == RBRACE { p += 1; stack.removeLast(); continue }
                    throw err("expected ',' or '}' after a value in an inline table, found \(describe(p))", p)
                }
                if c == RBRACE {
                    if top.state == 0 { p += 1; stack.removeLast(); continue }
                    throw err("a trailing comma is not allowed in an inline table", p)
                }
                stack[topIndex].state = 2
                let keyStart = p
                try parseKey()
                try expectEquals()
                let (t, key, keyLocation) = try prepareKeyValue(in: top.node, keyStart: keyStart)
                let valueLocation = loc(p)
                guard p < end else { throw err("expected a value after '=', found end of file", p) }
                let v = b[p]
                if v == LBRACKET || v == LBRACE {
                    let child = try openContainer(parentDepth: nodes[t].depth)
                    insert(t, key, .node(child), keyLocation, valueLocation)
                    stack.append(Frame(node: child, isArray: v == LBRACKET, state: 0))
                    continue
                }
                if v == LF || v == CR || v == COMMA || v == RBRACE {
                    throw err("expected a value after '=', found \(describe(p))", p)
                }
                insert(t, key, .value(try parseScalar()), keyLocation, valueLocation)
            }
        }
        return root
    }

    mutating func openContainer(parentDepth: Int) throws(TOMLError) -> Int {
        let kind: NodeKind = b[p] == LBRACKET ? .staticArray : .inlineTable
        let n = try newNode(kind, depth: parentDepth + 1, location: loc(p), at: p)
        p += 1
        return n
    }

    // MARK: Scalars

    mutating func parseScalar() throws(TOMLError) -> TOMLValue {
        guard p < end else { throw err("expected a value, found end of file", p) }
        let c = b[p]
        switch c {
        case QUOTE:
            if at(p + 1) == QUOTE && at(p + 2) == QUOTE { return .string(try parseMultilineBasicString()) }
            return .string(try parseBasicString())
        case APOS:
            if at(p + 1) == APOS && at(p + 2) == APOS { return .string(try parseMultilineLiteralString()) }
            return .string(try parseLiteralString())
        case UInt8(ascii: "t"):
            try word("true")
            return .boolean(true)
        case UInt8(ascii: "f"):
            try word("false")
            return .boolean(false)
        case UInt8(ascii: "i"):
            try word("inf")
            return .float(.infinity)
        case UInt8(ascii: "n"):
            try word("nan")
            return .float(.nan)
        case PLUS, MINUS:
            if at(p + 1) == UInt8(ascii: "i") {
                let neg = c == MINUS
                p += 1
                try word("inf", from: p - 1)
                return .float(neg ? -.infinity : .infinity)
            }
            if at(p + 1) == UInt8(ascii: "n") {
                let neg = c == MINUS
                p += 1
                try word("nan", from: p - 1)
                return .float(neg ? -Double.nan : .nan)
            }
            return try parseNumber()
        case ZERO...UInt8(ascii: "9"):
            if p + 4 < end && b[p + 4] == MINUS && isDigit(b[p + 1]) && isDigit(b[p + 2]) && isDigit(b[p + 3]) {
                return try parseDateTime()
            }
            if p + 2 < end && b[p + 2] == COLON && isDigit(b[p + 1]) {
                let s = p
                let time = try parseTime(s, "time")
                try tokenEnd(s, "time")
                return .localTime(time)
            }
            return try parseNumber()
        default:
            if isBare(c) || c == DOT {
                throw err("invalid value \(token(p)) (strings must be in quotes)", p)
            }
            throw err("expected a value, found \(describe(p))", p)
        }
    }

    /// Expects the exact word `w` at `p` (true, false, inf, nan) not followed by a token character.
    mutating func word(_ w: StaticString, from s: Int? = nil) throws(TOMLError) {
        let start = s ?? p
        let n = w.utf8CodeUnitCount
        var ok = p + n <= end
        if ok {
            let wp = w.utf8Start
            for i in 0..<n where b[p + i] != wp[i] { ok = false; break }
        }
        if ok && (p + n == end || !isTokenChar(b[p + n])) {
            p += n
            return
        }
        throw err("invalid value \(token(start)) (strings must be in quotes)", start)
    }

    /// After a number or date: the next byte must not continue the token.
    func tokenEnd(_ s: Int, _ what: String) throws(TOMLError) {
        if p < end && isTokenChar(b[p]) {
            throw err("invalid \(what) \(token(s))", s)
        }
    }

    /// Digits with single underscores between them; `p` is at a digit.
    mutating func scanDigits(_ s: Int, hasUnderscore: inout Bool) throws(TOMLError) {
        p += 1
        while p < end {
            let c = b[p]
            if isDigit(c) {
                p += 1
            } else if c == UNDERSCORE {
                guard p + 1 < end && isDigit(b[p + 1]) else {
                    throw err("invalid number \(token(s)): an underscore must be between two digits", p)
                }
                hasUnderscore = true
                p += 2
            } else {
                return
            }
        }
    }

    mutating func parseNumber() throws(TOMLError) -> TOMLValue {
        let s = p
        var negative = false
        if b[p] == PLUS || b[p] == MINUS {
            negative = b[p] == MINUS
            p += 1
        }
        guard p < end && isDigit(b[p]) else {
            throw err("invalid number \(token(s))", s)
        }
        if b[p] == ZERO, let x = at(p + 1), x == UInt8(ascii: "x") || x == UInt8(ascii: "o") || x == UInt8(ascii: "b") {
            let radix: UInt64 = x == UInt8(ascii: "x") ? 16 : x == UInt8(ascii: "o") ? 8 : 2
            let name = radix == 16 ? "hexadecimal" : radix == 8 ? "octal" : "binary"
            if s != p { throw err("a sign is not allowed on \(name) integers: \(token(s))", s) }
            p += 2
            return .integer(try parseRadix(radix, name, s))
        }
        let intStart = p
        var hasUnderscore = false
        if b[p] == ZERO, let n = at(p + 1), isDigit(n) || n == UNDERSCORE {
            throw err("leading zeros are not allowed in number \(token(s))", s)
        }
        try scanDigits(s, hasUnderscore: &hasUnderscore)
        var isFloat = false
        if p < end && b[p] == DOT {
            isFloat = true
            p += 1
            guard p < end && isDigit(b[p]) else {
                throw err("invalid float \(token(s)): expected a digit after the decimal point", s)
            }
            try scanDigits(s, hasUnderscore: &hasUnderscore)
        }
        if p < end && (b[p] == UInt8(ascii: "e") || b[p] == UInt8(ascii: "E")) {
            isFloat = true
            p += 1
            if p < end && (b[p] == PLUS || b[p] == MINUS) { p += 1 }
            guard p < end && isDigit(b[p]) else {
                throw err("invalid float \(token(s)): expected a digit in the exponent", s)
            }
            try scanDigits(s, hasUnderscore: &hasUnderscore)
        }
        try tokenEnd(s, isFloat ? "float" : "number")
        if isFloat {
            var text = str(s, p)
            if hasUnderscore { text.removeAll { $0 == "_" } }
            guard let d = Double(text) else { throw err("invalid float \(text)", s) }
            if d.isInfinite { throw err("float \(str(s, p)) is out of range for a 64-bit float", s) }
            return .float(d)
        }
        var magnitude: UInt64 = 0
        var i = intStart
        while i < p {
            let c = b[i]
            i += 1
            if c == UNDERSCORE { continue }
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c &- ZERO))
            if o1 || o2 { throw err("integer \(str(s, p)) does not fit in 64 bits", s) }
            magnitude = a
        }
        if negative {
            if magnitude > UInt64(Int64.max) + 1 { throw err("integer \(str(s, p)) does not fit in 64 bits", s) }
            return .integer(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
        }
        if magnitude > UInt64(Int64.max) { throw err("integer \(str(s, p)) does not fit in 64 bits", s) }
        return .integer(Int64(magnitude))
    }

    mutating func parseRadix(_ radix: UInt64, _ name: String, _ s: Int) throws(TOMLError) -> Int64 {
        var magnitude: UInt64 = 0
        var expectDigit = true
        var sawDigit = false
        while p < end {
            let c = b[p]
            var d: UInt64 = 99
            if isDigit(c) {
                d = UInt64(c &- ZERO)
            } else if c &- 0x61 < 6 {
                d = UInt64(c &- 0x61 + 10)
            } else if c &- 0x41 < 6 {
                d = UInt64(c &- 0x41 + 10)
            } else if c == UNDERSCORE {
                if expectDigit || !(p + 1 < end && isBare(b[p + 1]) && b[p + 1] != UNDERSCORE) {
                    throw err("invalid number \(token(s)): an underscore must be between two digits", p)
                }
                expectDigit = true
                p += 1
                continue
            } else if !isTokenChar(c) {
                break
            }
            guard d < radix else {
                throw err("invalid \(name) integer \(token(s))", s)
            }
            let (m, o1) = magnitude.multipliedReportingOverflow(by: radix)
            let (a, o2) = m.addingReportingOverflow(d)
            if o1 || o2 || a > UInt64(Int64.max) {
                throw err("integer \(token(s)) does not fit in 64 bits", s)
            }
            magnitude = a
            expectDigit = false
            sawDigit = true
            p += 1
        }
        if !sawDigit { throw err("invalid \(name) integer \(token(s)): expected digits", s) }
        return Int64(magnitude)
    }

    // MARK: Dates and times

    mutating func twoDigits(_ s: Int, _ what: String) throws(TOMLError) -> Int {
        guard p + 1 < end, isDigit(b[p]), isDigit(b[p + 1]) else {
            throw err("invalid \(what) \(token(s)): expected two digits at \(describe(p))", s)
        }
        let v = Int(b[p] &- ZERO) * 10 + Int(b[p + 1] &- ZERO)
        p += 2
        return v
    }

    mutating func expectByte(_ c: UInt8, _ s: Int, _ what: String) throws(TOMLError) {
        guard p < end && b[p] == c else {
            throw err("invalid \(what) \(token(s)): expected '\(String(UnicodeScalar(c)))', found \(describe(p))", s)
        }
        p += 1
    }

    mutating func parseTime(_ s: Int, _ what: String) throws(TOMLError) -> TOMLTime {
        let hour = try twoDigits(s, what)
        try expectByte(COLON, s, what)
        let minute = try twoDigits(s, what)
        guard p < end && b[p] == COLON else {
            throw err("invalid \(what) \(token(s)): seconds are required (HH:MM:SS)", s)
        }
        p += 1
        let second = try twoDigits(s, what)
        var nanos = 0
        if p < end && b[p] == DOT {
            p += 1
            guard p < end && isDigit(b[p]) else {
                throw err("invalid \(what) \(token(s)): expected digits after '.'", s)
            }
            var count = 0
            while p < end && isDigit(b[p]) {
                if count < 9 { nanos = nanos * 10 + Int(b[p] &- ZERO); count += 1 }
                p += 1
            }
            while count < 9 { nanos *= 10; count += 1 }
        }
        if hour > 23 { throw err("invalid \(what) \(token(s)): hour \(hour) is out of range (00–23)", s) }
        if minute > 59 { throw err("invalid \(what) \(token(s)): minute \(minute) is out of range (00–59)", s) }
        if second > 60 { throw err("invalid \(what) \(token(s)): second \(second) is out of range (00–60)", s) }
        return TOMLTime(hour: hour, minute: minute, second: second, nanosecond: nanos)
    }

    mutating func parseDateTime() throws(TOMLError) -> TOMLValue {
        let s = p
        var year = 0
        for _ in 0..<4 { year = year * 10 + Int(b[p] &- ZERO); p += 1 }
        p += 1  // '-'
        let month = try twoDigits(s, "date")
        try expectByte(MINUS, s, "date")
        let day = try twoDigits(s, "date")
        if month < 1 || month > 12 {
            throw err("invalid date \(token(s)): month \(month) is out of range (01–12)", s)
        }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        if day < 1 || day > days {
            throw err("invalid date \(token(s)): day \(day) is out of range for that month (01–\(days))", s)
        }
        let date = TOMLDate(year: year, month: month, day: day)
        guard p < end else { return .localDate(date) }
        let sep = b[p]
        let hasTime = sep == UInt8(ascii: "T") || sep == UInt8(ascii: "t")
            || (sep == SPACE && p + 3 < end && isDigit(b[p + 1]) && isDigit(b[p + 2]) && b[p + 3] == COLON)
        if !hasTime {
            try tokenEnd(s, "date")
            return .localDate(date)
        }
        p += 1
        let time = try parseTime(s, "date-time")
        var offset: Int? = nil
        if p < end {
            let c = b[p]
            if c == UInt8(ascii: "Z") || c == UInt8(ascii: "z") {
                p += 1
                offset = 0
            } else if c == PLUS || c == MINUS {
                p += 1
                let oh = try twoDigits(s, "date-time")
                try expectByte(COLON, s, "date-time")
                let om = try twoDigits(s, "date-time")
                if oh > 23 || om > 59 {
                    throw err("invalid date-time \(token(s)): UTC offset is out of range", s)
                }
                offset = (oh * 60 + om) * (c == MINUS ? -1 : 1)
            }
        }
        try tokenEnd(s, "date-time")
        return .dateTime(TOMLDateTime(date: date, time: time, offset: offset))
    }

    // MARK: Strings

    func stringControlError(_ c: UInt8, open: Int, _ what: String) -> TOMLError {
        if c == LF || c == CR {
            return err("unterminated \(what): the line ends before the closing quote", open)
        }
        return err("control character U+00\(hexByte(c)) is not allowed in a \(what); use an escape", p)
    }

    /// At `"`: a single-line basic string.
    mutating func parseBasicString() throws(TOMLError) -> String {
        let open = p
        p += 1
        let s = p
        while p < end {
            let c = b[p]
            if c == QUOTE {
                p += 1
                return str(s, p - 1)
            }
            if c == BACKSLASH { break }
            if isForbiddenControl(c) { throw stringControlError(c, open: open, "string") }
            p += 1
        }
        guard p < end else { throw err("unterminated string: missing closing '\"'", open) }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[s..<p]))
        while p < end {
            let c = b[p]
            if c == QUOTE {
                p += 1
                return String(decoding: scratch, as: UTF8.self)
            }
            if c == BACKSLASH {
                try escape()
                continue
            }
            if isForbiddenControl(c) { throw stringControlError(c, open: open, "string") }
            let r = p
            p += 1
            while p < end, b[p] != QUOTE, b[p] != BACKSLASH, !isForbiddenControl(b[p]) { p += 1 }
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[r..<p]))
        }
        throw err("unterminated string: missing closing '\"'", open)
    }

    /// At `\` inside a basic string: appends the escaped scalar to `scratch`.
    mutating func escape() throws(TOMLError) {
        guard p + 1 < end else { throw err("unterminated string: missing closing '\"'", p) }
        let e = b[p + 1]
        var byte: UInt8? = nil
        switch e {
        case UInt8(ascii: "b"): byte = 0x08
        case UInt8(ascii: "t"): byte = TAB
        case UInt8(ascii: "n"): byte = LF
        case UInt8(ascii: "f"): byte = 0x0C
        case UInt8(ascii: "r"): byte = CR
        case QUOTE: byte = QUOTE
        case BACKSLASH: byte = BACKSLASH
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let n = e == UInt8(ascii: "u") ? 4 : 8
            var v: UInt32 = 0
            for i in 0..<n {
                let c = at(p + 2 + i) ?? 0
                let d: UInt32
                if isDigit(c) {
                    d = UInt32(c &- ZERO)
                } else if c &- 0x61 < 6 {
                    d = UInt32(c &- 0x61 + 10)
                } else if c &- 0x41 < 6 {
                    d = UInt32(c &- 0x41 + 10)
                } else {
                    let shown = str(p, min(p + 2 + i, end))
                    throw err("invalid escape \"\(shown)\" in string: expected \(n) hexadecimal digits", p)
                }
                v = v << 4 | d
            }
            guard let scalar = UnicodeScalar(v) else {
                throw err("invalid escape \"\(str(p, p + 2 + n))\" in string: not a Unicode scalar value", p)
            }
            scratch.append(contentsOf: String(scalar).utf8)
            p += 2 + n
            return
        default:
            break
        }
        if let byte {
            scratch.append(byte)
            p += 2
            return
        }
        if e < 0x20 || e == DEL {
            throw err("invalid escape in string: '\\' followed by \(describe(p + 1))", p)
        }
        var end1 = p + 2
        while end1 < end && b[end1] & 0xC0 == 0x80 { end1 += 1 }
        throw err("invalid escape \"\(str(p, end1))\" in string", p)
    }

    /// After the opening `"""` or `'''`: a newline right after the delimiter is trimmed.
    mutating func trimFirstNewline() {
        if p < end && b[p] == LF {
            p += 1
        } else if p + 1 < end && b[p] == CR && b[p + 1] == LF {
            p += 2
        }
    }

    /// At a run of `q` quote characters in a multi-line string: returns true if the string ends.
    mutating func closingQuotes(_ q: UInt8) throws(TOMLError) -> Bool {
        var n = 0
        while p + n < end && b[p + n] == q { n += 1 }
        if n >= 3 {
            if n > 5 { throw err("too many quotes at the end of a multi-line string (at most 5)", p) }
            for _ in 0..<(n - 3) { scratch.append(q) }
            p += n
            return true
        }
        for _ in 0..<n { scratch.append(q) }
        p += n
        return false
    }

    mutating func parseMultilineBasicString() throws(TOMLError) -> String {
        let open = p
        p += 3
        trimFirstNewline()
        scratch.removeAll(keepingCapacity: true)
        while p < end {
            let c = b[p]
            switch c {
            case QUOTE:
                if try closingQuotes(QUOTE) { return String(decoding: scratch, as: UTF8.self) }
            case BACKSLASH:
                var j = p + 1
                while j < end && (b[j] == SPACE || b[j] == TAB) { j += 1 }
                if j < end && (b[j] == LF || (b[j] == CR && at(j + 1) == LF)) {
                    // Line-ending backslash: drop all whitespace and newlines up to the next text.
                    p = j
                    while p < end {
                        let w = b[p]
                        if w == SPACE || w == TAB || w == LF {
                            p += 1
                        } else if w == CR && at(p + 1) == LF {
                            p += 2
                        } else {
                            break
                        }
                    }
                } else {
                    try escape()
                }
            case LF, CR:
                try appendNewline()
            default:
                if isForbiddenControl(c) {
                    throw err("control character U+00\(hexByte(c)) is not allowed in a string; use an escape", p)
                }
                let r = p
                p += 1
                while p < end {
                    let d = b[p]
                    if d == QUOTE || d == BACKSLASH || isForbiddenControl(d) { break }
                    p += 1
                }
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[r..<p]))
            }
        }
        throw err("unterminated multi-line string: missing closing '\"\"\"'", open)
    }

    /// At LF or CR inside a multi-line string: appends LF (CRLF is decoded as LF, as toml-test
    /// expects); a CR not followed by LF is an error.
    private mutating func appendNewline() throws(TOMLError) {
        if b[p] == CR {
            guard at(p + 1) == LF else {
                throw err("carriage return must be followed by a newline (a lone CR is not allowed in a string)", p)
            }
            p += 1
        }
        scratch.append(LF)
        p += 1
    }

    /// At `'`: a single-line literal string.
    mutating func parseLiteralString() throws(TOMLError) -> String {
        let open = p
        p += 1
        let s = p
        while p < end {
            let c = b[p]
            if c == APOS {
                p += 1
                return str(s, p - 1)
            }
            if isForbiddenControl(c) { throw stringControlError(c, open: open, "literal string") }
            p += 1
        }
        throw err("unterminated literal string: missing closing \"'\"", open)
    }

    mutating func parseMultilineLiteralString() throws(TOMLError) -> String {
        let open = p
        p += 3
        trimFirstNewline()
        scratch.removeAll(keepingCapacity: true)
        while p < end {
            let c = b[p]
            switch c {
            case APOS:
                if try closingQuotes(APOS) { return String(decoding: scratch, as: UTF8.self) }
            case LF, CR:
                try appendNewline()
            default:
                if isForbiddenControl(c) {
                    throw err("control character U+00\(hexByte(c)) is not allowed in a literal string", p)
                }
                let r = p
                p += 1
                while p < end && b[p] != APOS && !isForbiddenControl(b[p]) { p += 1 }
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: b[r..<p]))
            }
        }
        throw err("unterminated multi-line literal string: missing closing \"'''\"", open)
    }
}
