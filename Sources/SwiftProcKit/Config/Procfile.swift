/// A foreman Procfile: `name: command` lines.
///
/// The rule is foreman's, so files written for foreman, honcho or Heroku read the same here: a
/// line is an entry when it matches `^([A-Za-z0-9_-]+):\s*(.+)$`, and every other line —
/// comments, blank lines, indented lines, prose — is ignored. A `release:` entry is the release
/// command (as Heroku and `fly launch` treat it), not a process group.
public struct Procfile: Sendable, Equatable {
    /// One `name: command` line.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var command: String
        /// 1-based line number, for messages.
        public var line: Int

        public init(name: String, command: String, line: Int) {
            self.name = name
            self.command = command
            self.line = line
        }
    }

    /// Process entries in file order (without `release`).
    public var entries: [Entry]
    /// The `release:` entry's command, if any.
    public var releaseCommand: String?

    public init(entries: [Entry], releaseCommand: String? = nil) {
        self.entries = entries
        self.releaseCommand = releaseCommand
    }

    /// Parses Procfile text. `path` is only used in error messages.
    ///
    /// A command is taken up to the end of its line, without trailing whitespace (or the `\r` of
    /// a CRLF file). A name followed by a colon and only whitespace has no command and is
    /// ignored like any other non-entry line.
    ///
    /// - Throws: ``ConfigError/invalid(_:at:)`` for a name defined twice (pointing at the second
    ///   definition), ``ConfigError/emptyProcfile(_:)`` when no process entries remain.
    public static func parse(_ text: String, path: String) throws(ConfigError) -> Procfile {
        var entries: [Entry] = []
        var release: (command: String, line: Int)?
        var firstLine: [String: Int] = [:]
        for (offset, rawLine) in splitLines(text).enumerated() {
            let lineNumber = offset + 1
            guard let (name, command) = entry(in: rawLine) else { continue }
            if let earlier = firstLine[name] {
                throw .invalid("duplicate process name \"\(name)\" (first defined on line \(earlier))",
                               at: FilePosition(path: path, line: lineNumber, column: 1, sourceLine: rawLine))
            }
            firstLine[name] = lineNumber
            if name == "release" {
                release = (command, lineNumber)
            } else {
                entries.append(Entry(name: name, command: command, line: lineNumber))
            }
        }
        if entries.isEmpty { throw .emptyProcfile(path) }
        return Procfile(entries: entries, releaseCommand: release?.command)
    }

    /// Foreman's line rule, without regular expressions so it behaves the same on every platform.
    private static func entry(in line: String) -> (String, String)? {
        let scalars = Array(line.unicodeScalars)
        var i = 0
        while i < scalars.count, isNameScalar(scalars[i]) { i += 1 }
        guard i > 0, i < scalars.count, scalars[i] == ":" else { return nil }
        let name = String(String.UnicodeScalarView(scalars[0..<i]))
        var rest = String(String.UnicodeScalarView(scalars[(i + 1)...]))
        while let c = rest.unicodeScalars.first, c.properties.isWhitespace {
            rest.unicodeScalars.removeFirst()
        }
        while let c = rest.unicodeScalars.last, c.properties.isWhitespace {
            rest.unicodeScalars.removeLast()
        }
        guard !rest.isEmpty else { return nil }
        return (name, rest)
    }

    private static func isNameScalar(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-"
    }
}

/// Splits text into lines on `\n`, dropping a `\r` before it, without inventing an empty last
/// line for text that ends with a newline.
func splitLines(_ text: String) -> [String] {
    // Split on scalars: "\r\n" is one Character, so splitting Characters on "\n" would miss it.
    var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
        var view = String.UnicodeScalarView(line)
        if view.last == "\r" { view.removeLast() }
        return String(view)
    }
    if lines.last == "" { lines.removeLast() }
    return lines
}
