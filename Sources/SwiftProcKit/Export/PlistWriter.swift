/// A property-list value, written as Apple's XML plist format.
public indirect enum PlistNode: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case array([PlistNode])
    /// Keys in the order given (launchd does not care; the order keeps output deterministic).
    case dict([(key: String, value: PlistNode)])

    public static func == (a: PlistNode, b: PlistNode) -> Bool {
        PlistWriter.render(a, comment: []) == PlistWriter.render(b, comment: [])
    }
}

/// Writes XML property lists. Text is escaped for XML (`&`, `<`, `>`); characters XML 1.0
/// cannot carry at all (control characters other than tab, line feed and carriage return) are
/// refused by the caller's check ``PlistWriter/canRepresent(_:)``. A carriage return is written
/// as `&#13;` so an XML parser does not turn it into a line feed.
public enum PlistWriter {
    public static func render(_ root: PlistNode, comment: [String]) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
        for line in comment {
            // "--" may not appear inside an XML comment.
            out += "<!-- " + oneLine(line).replacingOccurrences(of: "--", with: "- -") + " -->\n"
        }
        out += "<plist version=\"1.0\">\n"
        write(root, indent: 0, into: &out)
        return out + "</plist>\n"
    }

    /// Whether XML 1.0 can hold `text` at all.
    public static func canRepresent(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { s in
            s.value >= 0x20 ? !(0xFFFE...0xFFFF).contains(s.value) : (s == "\t" || s == "\n" || s == "\r")
        }
    }

    private static func write(_ node: PlistNode, indent: Int, into out: inout String) {
        let pad = String(repeating: "\t", count: indent)
        switch node {
        case .string(let s): out += pad + "<string>" + escaped(s) + "</string>\n"
        case .int(let i): out += pad + "<integer>\(i)</integer>\n"
        case .bool(let b): out += pad + (b ? "<true/>" : "<false/>") + "\n"
        case .array(let items):
            if items.isEmpty { out += pad + "<array/>\n"; return }
            out += pad + "<array>\n"
            for item in items { write(item, indent: indent + 1, into: &out) }
            out += pad + "</array>\n"
        case .dict(let pairs):
            if pairs.isEmpty { out += pad + "<dict/>\n"; return }
            out += pad + "<dict>\n"
            for (key, value) in pairs {
                out += pad + "\t<key>" + escaped(key) + "</key>\n"
                write(value, indent: indent + 1, into: &out)
            }
            out += pad + "</dict>\n"
        }
    }

    static func escaped(_ text: String) -> String {
        var out = ""
        for s in text.unicodeScalars {
            switch s {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\r": out += "&#13;"
            default: out.unicodeScalars.append(s)
            }
        }
        return out
    }
}
