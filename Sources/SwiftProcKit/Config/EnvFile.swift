import Foundation

/// One environment variable, kept as a pair so files keep their order (for `check` output and
/// so "later wins" is visible).
public struct EnvVariable: Sendable, Hashable, Codable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// `.env` files: the local stand-in for `fly secrets`.
///
/// The syntax is the common dotenv subset that foreman, docker compose and the dotenv libraries
/// agree on: `KEY=VALUE`, an optional `export ` prefix, spaces around `=`, single quotes taken
/// literally, double quotes with `\n`, `\t`, `\r`, `\"` and `\\` escapes (other backslashes are
/// kept), quoted values that span lines, `#` comments on their own line or after an unquoted
/// value following whitespace (`KEY=a#b` keeps the `#`). `$VAR` is **not** expanded: the value
/// is what the file says. A line that is none of these is an error with `file:line:column`,
/// because silently dropping a secret is worse than refusing to start.
public enum EnvFile {
    /// Parses one file's text. Later duplicates replace earlier ones in place.
    public static func parse(_ text: String, path: String) throws(ConfigError) -> [EnvVariable] {
        var parser = EnvParser(scalars: Array(text.unicodeScalars), path: path, lines: splitLines(text))
        var result: [EnvVariable] = []
        var positions: [String: Int] = [:]
        while let variable = try parser.next() {
            merge(variable, into: &result, positions: &positions)
        }
        return result
    }

    /// Loads several files in order, later files winning.
    ///
    /// - Parameters:
    ///   - paths: the files; relative paths are resolved against `directory`.
    ///   - required: when `true` (files the user named with `-e`), a missing file is an error;
    ///     when `false` (the default `.env`), a missing file is skipped.
    public static func load(_ paths: [String], relativeTo directory: String, required: Bool) throws(ConfigError) -> [EnvVariable] {
        var result: [EnvVariable] = []
        var positions: [String: Int] = [:]
        for path in paths {
            let full = resolve(path, against: directory)
            guard FileManager.default.fileExists(atPath: full) else {
                if required { throw .fileNotFound(path, role: "env file") }
                continue
            }
            let text = try readText(atPath: full, displayPath: path)
            for variable in try parse(text, path: path) {
                merge(variable, into: &result, positions: &positions)
            }
        }
        return result
    }

    /// `merge(_:into:)` in constant time: `positions` maps each name in `list` to its index.
    /// (A linear search per line made a 40,000-line file take 12 s.)
    static func merge(_ variable: EnvVariable, into list: inout [EnvVariable], positions: inout [String: Int]) {
        if let i = positions[variable.name] {
            list[i].value = variable.value
        } else {
            positions[variable.name] = list.count
            list.append(variable)
        }
    }

    static func merge(_ variable: EnvVariable, into list: inout [EnvVariable]) {
        if let i = list.firstIndex(where: { $0.name == variable.name }) {
            list[i].value = variable.value
        } else {
            list.append(variable)
        }
    }
}

/// How a process's environment is assembled.
public enum Environment {
    /// The environment a process sees, lowest precedence first: the environment swiftproc
    /// inherited, then fly.toml's `[env]`, then the `.env` files (standing in for Fly secrets,
    /// which on Fly also override `[env]`).
    public static func merged(inherited: [String: String], config: [EnvVariable], dotenv: [EnvVariable]) -> [String: String] {
        var result = inherited
        for v in config { result[v.name] = v.value }
        for v in dotenv { result[v.name] = v.value }
        return result
    }
}

/// Resolves `path` against `directory` unless it is absolute; `~` is the user's home.
func resolve(_ path: String, against directory: String) -> String {
    if path.hasPrefix("/") { return path }
    if path == "~" || path.hasPrefix("~/") { return NSString(string: path).expandingTildeInPath }
    if directory.isEmpty || directory == "." { return path }
    return directory.hasSuffix("/") ? directory + path : directory + "/" + path
}

/// Reads a UTF-8 text file, turning failures into ``ConfigError/unreadable(_:reason:)``.
func readText(atPath path: String, displayPath: String) throws(ConfigError) -> String {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw .unreadable(displayPath, reason: "it is a directory")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw .unreadable(displayPath, reason: "permission denied or I/O error")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw .unreadable(displayPath, reason: "not valid UTF-8")
    }
    return text
}

/// A scanner over a whole `.env` text, so quoted values may span lines and every error knows its
/// line and column.
private struct EnvParser {
    let scalars: [Unicode.Scalar]
    let path: String
    let lines: [String]
    var i = 0
    var line = 1
    var column = 1

    init(scalars: [Unicode.Scalar], path: String, lines: [String]) {
        self.scalars = scalars
        self.path = path
        self.lines = lines
    }

    var current: Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

    mutating func advance() {
        guard let c = current else { return }
        i += 1
        if c == "\n" { line += 1; column = 1 } else { column += 1 }
    }

    func error(_ message: String, line: Int? = nil, column: Int? = nil) -> ConfigError {
        let l = line ?? self.line
        return .invalid(message, at: FilePosition(path: path, line: l, column: column ?? self.column,
                                                  sourceLine: l - 1 < lines.count ? lines[l - 1] : nil))
    }

    mutating func skipBlanks() {
        while let c = current, c == " " || c == "\t" { advance() }
    }

    /// At a line end (or end of text): consume it.
    mutating func endLine() {
        if current == "\r" { advance() }
        if current == "\n" { advance() }
    }

    mutating func skipRestOfLine() {
        while let c = current, c != "\n" { advance() }
        endLine()
    }

    static func isNameStart(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_"
    }

    static func isName(_ c: Unicode.Scalar) -> Bool {
        isNameStart(c) || ("0"..."9").contains(c) || c == "."
    }

    mutating func readName() -> String {
        var name = ""
        while let c = current, EnvParser.isName(c) { name.unicodeScalars.append(c); advance() }
        return name
    }

    mutating func next() throws(ConfigError) -> EnvVariable? {
        while true {
            skipBlanks()
            guard let c = current else { return nil }
            if c == "\n" || c == "\r" { endLine(); continue }
            if c == "#" { skipRestOfLine(); continue }
            break
        }
        guard let first = current, EnvParser.isNameStart(first) else {
            throw error("expected a variable name (letters, digits and _, not starting with a digit)")
        }
        var name = readName()
        if name == "export", current == " " || current == "\t" {
            skipBlanks()
            guard let c = current, EnvParser.isNameStart(c) else {
                throw error("expected a variable name after \"export\"")
            }
            name = readName()
        }
        skipBlanks()
        guard current == "=" else {
            if current == nil || current == "\n" || current == "\r" {
                throw error("expected \"=\" after \(name) (write \(name)= for an empty value)")
            }
            throw error("expected \"=\" after \(name)")
        }
        advance()
        skipBlanks()
        let value: String
        switch current {
        case "'":
            value = try readQuoted(quote: "'", escapes: false, name: name)
        case "\"":
            value = try readQuoted(quote: "\"", escapes: true, name: name)
        default:
            value = readUnquoted()
        }
        return EnvVariable(name, value)
    }

    mutating func readUnquoted() -> String {
        var value = ""
        var previousWasBlank = i > 0 && (scalars[i - 1] == " " || scalars[i - 1] == "\t")
        while let c = current, c != "\n" {
            if c == "#" && previousWasBlank { break }
            previousWasBlank = c == " " || c == "\t"
            value.unicodeScalars.append(c)
            advance()
        }
        skipRestOfLine()
        while let last = value.unicodeScalars.last, last == " " || last == "\t" || last == "\r" {
            value.unicodeScalars.removeLast()
        }
        return value
    }

    mutating func readQuoted(quote: Unicode.Scalar, escapes: Bool, name: String) throws(ConfigError) -> String {
        let openLine = line, openColumn = column
        advance()
        var value = ""
        while true {
            guard let c = current else {
                throw error("unterminated \(quote == "'" ? "single" : "double")-quoted value for \(name)",
                            line: openLine, column: openColumn)
            }
            if c == quote { advance(); break }
            if escapes && c == "\\" {
                advance()
                guard let e = current else { continue }
                switch e {
                case "n": value += "\n"
                case "t": value += "\t"
                case "r": value += "\r"
                case "\"": value += "\""
                case "\\": value += "\\"
                default: value.unicodeScalars.append("\\"); value.unicodeScalars.append(e)
                }
                advance()
                continue
            }
            value.unicodeScalars.append(c)
            advance()
        }
        skipBlanks()
        if let c = current, c != "\n", c != "\r", c != "#" {
            throw error("unexpected text after the closing quote of \(name)")
        }
        skipRestOfLine()
        return value
    }
}
