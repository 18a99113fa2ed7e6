import TOML

/// A place in a named file — `fly.toml:12:9` — with the text of that line, so an error can show
/// the line and a caret instead of making the user count columns.
public struct FilePosition: Sendable, Hashable, CustomStringConvertible {
    /// The path as the user knows it (as typed, or the bare file name when it was discovered).
    public var path: String
    /// 1-based.
    public var line: Int
    /// 1-based, counting Unicode scalars from the start of the line.
    public var column: Int
    /// The text of the line without its newline, when known.
    public var sourceLine: String?

    public init(path: String, line: Int, column: Int, sourceLine: String? = nil) {
        self.path = path
        self.line = line
        self.column = column
        self.sourceLine = sourceLine
    }

    /// `fly.toml:12:9`, the prefix editors and terminals recognise as a jump target.
    public var description: String { "\(path):\(line):\(column)" }
}

/// Everything that can go wrong while reading a configuration, as a value with its context.
///
/// Errors are built where the problem is found and printed once, at the edge (the CLI), with
/// ``rendered``. Anything that points into a file carries a ``FilePosition`` so the output reads
/// `fly.toml:12:9: message` followed by the source line and a caret, exactly like a TOML syntax
/// error, which is wrapped here with its location intact.
public enum ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is not valid TOML; the decoder's error with the file's path.
    case syntax(TOMLError, path: String)
    /// A value in a file breaks a rule (wrong type, out of range, malformed line, duplicate…).
    case invalid(String, at: FilePosition)
    /// A process group name that does not exist: in a `processes = [...]` list (with its
    /// position) or on the command line (without one).
    case unknownProcess(String, suggestions: [String], known: [String], at: FilePosition? = nil)
    /// A formation word that is not `name=count` with a count ≥ 0 (or `name=±n` for a change).
    case invalidFormation(word: String, reason: String, known: [String])
    /// A file the user named (or that must exist) is missing. `role` is "config file",
    /// "Procfile" or "env file", for the message.
    case fileNotFound(String, role: String)
    /// A file exists but could not be read (permissions, a directory, not UTF-8…).
    case unreadable(String, reason: String)
    /// Discovery found nothing to run in `directory`.
    case noConfigFound(directory: String, lookedFor: [String])
    /// No group has a command, so there is nothing to start. Fly would run the image's default
    /// command; locally there is no image and no Dockerfile said what it is.
    case missingCommand(group: String, configPath: String)
    /// A Procfile with no process entries.
    case emptyProcfile(String)
    /// A command-line option (or the plan it shapes) that cannot run: `--proxy-port 70000`,
    /// a formation whose ports collide. `option` names the flag (`-m`, `--proxy-port`).
    case invalidOption(_ option: String, _ message: String)

    /// Where in which file the problem is, when it is in a file.
    public var position: FilePosition? {
        switch self {
        case .syntax(let e, let path):
            return FilePosition(path: path, line: e.location.line, column: e.location.column, sourceLine: e.sourceLine)
        case .invalid(_, let at):
            return at
        case .unknownProcess(_, _, _, let at):
            return at
        default:
            return nil
        }
    }

    /// The message without its position.
    public var message: String {
        switch self {
        case .syntax(let e, _):
            return e.message
        case .invalid(let message, _):
            return message
        case .unknownProcess(let name, let suggestions, let known, _):
            var s = "unknown process group \"\(name)\""
            if let first = suggestions.first { s += "; did you mean \"\(first)\"?" }
            if !known.isEmpty { s += " (known: \(known.joined(separator: ", ")))" }
            return s
        case .invalidFormation(let word, let reason, let known):
            var s = "invalid formation \"\(word)\": \(reason)"
            if !known.isEmpty { s += " (known: \(known.joined(separator: ", ")))" }
            return s
        case .fileNotFound(let path, let role):
            return "\(role) not found: \(path)"
        case .unreadable(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .noConfigFound(let directory, let lookedFor):
            return "nothing to run in \(directory): looked for \(lookedFor.joined(separator: " and ")); "
                + "pass -c PATH (fly.toml) or -f PATH (Procfile)"
        case .missingCommand(let group, let configPath):
            return "nothing to run: process group \"\(group)\" has no command. Give it one in \(configPath) "
                + "([processes] \(group) = \"...\"), in a Procfile next to it (\(group == "app" ? "web" : group): ...), "
                + "or in the Dockerfile's CMD (on Fly it runs the image's command)"
        case .invalidOption(_, let message):
            return message
        case .emptyProcfile(let path):
            return "\(path) defines no processes (expected lines like \"web: bundle exec puma\")"
        }
    }

    /// One line: `fly.toml:12:9: message`, or just the message when it is not about a place in a file.
    public var description: String {
        if let p = position { return "\(p): \(message)" }
        return message
    }

    /// What the CLI prints: ``description``, then, when the source line is known, the line and a
    /// caret under the column (the same layout as `TOMLError.rendered(path:)`).
    public var rendered: String {
        guard let p = position else { return message }
        let asTOMLError = TOMLError(message, at: SourceLocation(line: p.line, column: p.column), sourceLine: p.sourceLine)
        return asTOMLError.rendered(path: p.path)
    }
}

/// "Did you mean" support: the candidates closest to a mistyped name by edit distance.
public enum Suggestions {
    /// Candidates within a small edit distance of `name` (or equal ignoring case), closest first.
    public static func closest(to name: String, among candidates: [String]) -> [String] {
        let limit = max(2, name.count / 3)
        let scored = candidates.compactMap { candidate -> (String, Int)? in
            if candidate.lowercased() == name.lowercased() { return (candidate, 0) }
            let d = editDistance(name, candidate)
            return d <= limit ? (candidate, d) : nil
        }
        return scored.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0)
    }

    /// Levenshtein distance over Unicode scalars.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
