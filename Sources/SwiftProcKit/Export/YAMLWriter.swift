/// A YAML value for the exporters: maps keep their order, so output is deterministic.
public indirect enum YAMLNode: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([YAMLNode])
    /// Ordered key/value pairs.
    case map([YAMLPair])

    /// A map from pairs written in order.
    public static func object(_ pairs: [(String, YAMLNode?)]) -> YAMLNode {
        .map(pairs.compactMap { key, value in value.map { YAMLPair(key, $0) } })
    }

    /// A list of strings.
    public static func strings(_ values: [String]) -> YAMLNode { .list(values.map(YAMLNode.string)) }
}

public struct YAMLPair: Sendable, Equatable {
    public var key: String
    public var value: YAMLNode
    public init(_ key: String, _ value: YAMLNode) {
        self.key = key
        self.value = value
    }
}

/// Writes ``YAMLNode`` documents in block style.
///
/// Strings are written plain only when they are unmistakably strings in both YAML 1.1 (what
/// Kubernetes' and Compose's Go parsers speak) and 1.2: a letter, `_` or `/` first, then only
/// letters, digits and `_./-`, and not a word either version reads as a boolean or null.
/// Everything else is double-quoted with escapes, so quotes, `$`, `#`, `:`, leading spaces,
/// newlines, control characters and Unicode all come back byte for byte.
public enum YAMLWriter {
    /// `comment` lines written as `# …`, then the documents separated by `---`.
    public static func render(comment: [String], documents: [YAMLNode]) -> String {
        var out = comment.map { $0.isEmpty ? "#\n" : "# \($0)\n" }.joined()
        for (i, doc) in documents.enumerated() {
            if i > 0 { out += "---\n" }
            out += render(doc)
        }
        return out
    }

    /// One document, without a separator.
    public static func render(_ node: YAMLNode) -> String {
        var out = ""
        switch node {
        case .map(let pairs) where !pairs.isEmpty: writeMap(pairs, indent: 0, into: &out)
        case .list(let items) where !items.isEmpty: writeList(items, indent: 0, into: &out)
        default: out += scalarOrEmpty(node) + "\n"
        }
        return out
    }

    private static func writeMap(_ pairs: [YAMLPair], indent: Int, into out: inout String, firstInline: Bool = false) {
        let pad = String(repeating: " ", count: indent)
        for (i, pair) in pairs.enumerated() {
            out += (i == 0 && firstInline ? "" : pad) + scalar(pair.key) + ":"
            writeValue(pair.value, indent: indent, into: &out)
        }
    }

    /// After `key:` — a scalar on the same line, a collection on the next lines.
    private static func writeValue(_ value: YAMLNode, indent: Int, into out: inout String) {
        switch value {
        case .map(let pairs) where !pairs.isEmpty:
            out += "\n"
            writeMap(pairs, indent: indent + 2, into: &out)
        case .list(let items) where !items.isEmpty:
            out += "\n"
            writeList(items, indent: indent + 2, into: &out)
        default:
            out += " " + scalarOrEmpty(value) + "\n"
        }
    }

    private static func writeList(_ items: [YAMLNode], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for item in items {
            out += pad + "-"
            switch item {
            case .map(let pairs) where !pairs.isEmpty:
                out += " "
                writeMap(pairs, indent: indent + 2, into: &out, firstInline: true)
            case .list(let inner) where !inner.isEmpty:
                out += "\n"
                writeList(inner, indent: indent + 2, into: &out)
            default:
                out += " " + scalarOrEmpty(item) + "\n"
            }
        }
    }

    private static func scalarOrEmpty(_ node: YAMLNode) -> String {
        switch node {
        case .string(let s): return scalar(s)
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .list: return "[]"
        case .map: return "{}"
        }
    }

    /// Words YAML 1.1 or 1.2 reads as something other than a string.
    private static let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"]

    /// `text` as a YAML scalar: plain when that is safe, else double-quoted.
    public static func scalar(_ text: String) -> String {
        isPlainSafe(text) ? text : doubleQuoted(text)
    }

    static func isPlainSafe(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCIILetter || first == "_" || first == "/" else { return false }
        guard !reserved.contains(text.lowercased()) else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || "_./-".unicodeScalars.contains($0) }
    }

    /// A double-quoted YAML scalar; escapes whatever YAML does not allow raw in one.
    public static func doubleQuoted(_ text: String) -> String {
        var out = "\""
        for s in text.unicodeScalars {
            switch s {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\u{85}", "\u{2028}", "\u{2029}", "\u{FEFF}":
                // Line separators and the BOM, as \u escapes every YAML parser knows.
                out += "\\u" + String(s.value, radix: 16, uppercase: true).leftPadded(to: 4)
            default:
                if s.value < 0x20 || (0x7F...0x84).contains(s.value) || (0x86...0x9F).contains(s.value) {
                    out += "\\x" + hex2(s.value)
                } else if (0xFFFE...0xFFFF).contains(s.value) || (0xD800...0xDFFF).contains(s.value) {
                    out += "\\u" + String(s.value, radix: 16, uppercase: true)
                } else {
                    out.unicodeScalars.append(s)
                }
            }
        }
        return out + "\""
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

func hex2(_ value: UInt32) -> String {
    let h = String(value, radix: 16, uppercase: true)
    return h.count < 2 ? "0" + h : h
}

extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
}
