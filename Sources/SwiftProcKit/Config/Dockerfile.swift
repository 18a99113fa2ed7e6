/// What swiftproc needs from a Dockerfile: the command its image runs.
///
/// On Fly, a group with no command of its own runs the image's `ENTRYPOINT` + `CMD`. There is
/// no image locally, so this reads them from the Dockerfile that builds it: the final stage's
/// (following `FROM <earlier stage>` for what a stage inherits), with Docker's rules for
/// combining the two forms. Only the instructions that decide the command are interpreted —
/// `FROM`, `WORKDIR`, `COPY`/`ADD`, `ENTRYPOINT`, `CMD` — everything else is skipped, and a
/// malformed line never fails the file: the worst case is "no command found".
///
/// Paths: a command like `/rails/bin/docker-entrypoint` names a file inside the image. When the
/// Dockerfile copies the build context (the app directory) to `/rails` — directly with
/// `COPY . .`, or from a build stage with `COPY --from=build /rails /rails` — that path is the
/// app's own `bin/docker-entrypoint`, so it is rewritten to `./bin/docker-entrypoint`.
public struct Dockerfile: Sendable, Equatable {
    /// An `ENTRYPOINT` or `CMD` as written.
    public enum Form: Sendable, Equatable {
        /// `CMD ["bundle", "exec", "puma"]`: argv, no shell.
        case exec([String])
        /// `CMD bundle exec puma`: run by `/bin/sh -c`.
        case shell(String)

        var words: [String] {
            switch self {
            case .exec(let list): return list
            case .shell(let text): return ["/bin/sh", "-c", text]
            }
        }
    }

    /// An instruction that set the command, with its 1-based line.
    public struct Instruction: Sendable, Equatable {
        public var form: Form
        public var line: Int
    }

    /// The final stage's entrypoint and cmd after inheritance (nil when none applies).
    public var entrypoint: Instruction?
    public var cmd: Instruction?
    /// The final stage's working directory (absolute; `/` when none was set).
    public var workdir: String
    /// Absolute directories of the final stage that hold a copy of the build context.
    public var contextDirectories: [String]
    /// The image the final stage is built on (through earlier stages), whose own ENTRYPOINT
    /// and CMD the Dockerfile cannot show; nil for `scratch` or an empty file.
    public var baseImage: String?

    public init(entrypoint: Instruction? = nil, cmd: Instruction? = nil, workdir: String = "/", contextDirectories: [String] = [],
                baseImage: String? = nil) {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.workdir = workdir
        self.contextDirectories = contextDirectories
        self.baseImage = baseImage
    }

    /// The argv the image runs (Docker's rules), or nil when it runs nothing we can know.
    public var argv: [String]? { Dockerfile.combine(entrypoint: entrypoint?.form, cmd: cmd?.form) }

    /// Docker's rules for ENTRYPOINT + CMD:
    /// - exec `ENTRYPOINT` + exec `CMD`: the two lists joined.
    /// - exec `ENTRYPOINT` + shell `CMD`: the entrypoint, then `/bin/sh -c CMD`.
    /// - shell `ENTRYPOINT`: `/bin/sh -c ENTRYPOINT`; `CMD` is ignored.
    /// - `CMD` alone: its list, or `/bin/sh -c CMD`.
    public static func combine(entrypoint: Form?, cmd: Form?) -> [String]? {
        if case .shell(let text)? = entrypoint { return ["/bin/sh", "-c", text] }
        let words = (entrypoint?.words ?? []) + (cmd?.words ?? [])
        return words.isEmpty ? nil : words
    }

    /// The image's command as one line for `sh -c` in the app directory.
    public var shellCommand: String? { argv.map(commandLine) }

    /// argv as one `sh -c` line: image paths under a copy of the build context become relative
    /// to the app directory, and a plain `/bin/sh -c X` is just X.
    public func commandLine(_ argv: [String]) -> String {
        if argv.count == 3, ["/bin/sh", "sh", "/bin/bash", "bash"].contains(argv[0]), argv[1] == "-c" {
            return argv[2]
        }
        return argv.map(localPath).map(ShellQuoting.quote).joined(separator: " ")
    }

    /// `/rails/bin/x` → `./bin/x` when `/rails` holds the build context; other words unchanged.
    func localPath(_ word: String) -> String {
        // A context copied to `/` would make every absolute path (/usr/bin/python3) the app's:
        // too wide to be right, so it maps nothing.
        for dir in contextDirectories.sorted(by: { $0.count > $1.count }) where dir != "/" {
            let prefix = dir + "/"
            if word.hasPrefix(prefix), word.count > prefix.count {
                return "./" + word.dropFirst(prefix.count)
            }
        }
        return word
    }

    /// Where the command came from, for `check`: `20,21 (ENTRYPOINT + CMD)`, `21 (CMD)`.
    public var origin: String {
        var parts: [(String, Int)] = []
        if let entrypoint { parts.append(("ENTRYPOINT", entrypoint.line)) }
        if let cmd, !(entrypoint.map { if case .shell = $0.form { return true } else { return false } } ?? false) {
            parts.append(("CMD", cmd.line))
        }
        guard !parts.isEmpty else { return "" }
        return parts.map { String($0.1) }.joined(separator: ",") + " (" + parts.map(\.0).joined(separator: " + ") + ")"
    }

    /// Reads Dockerfile text. Never throws: what cannot be understood is skipped.
    public static func parse(_ text: String) -> Dockerfile {
        var stages: [String: Stage] = [:]
        var current: Stage?
        var escape: Character = "\\"
        var sawInstruction = false
        for (instruction, line) in logicalLines(text, escape: &escape, sawInstruction: &sawInstruction) {
            let (keyword, rest) = split(instruction)
            switch keyword {
            case "FROM":
                let words = rest.split(whereSeparator: \.isWhitespace).map(String.init).filter { !$0.hasPrefix("--") }
                guard let image = words.first else { continue }
                if let previous = current, let name = previous.name { stages[name] = previous }
                var stage = stages[image.lowercased()] ?? Stage(baseImage: image.lowercased() == "scratch" ? nil : image)
                stage.cmdSetHere = false
                if words.count >= 3, words[1].uppercased() == "AS" {
                    stage.name = words[2].lowercased()
                } else {
                    stage.name = nil
                }
                current = stage
            case "WORKDIR":
                guard current != nil else { continue }
                let dir = unquote(rest.trimmingWhitespace)
                guard !dir.isEmpty else { continue }
                current!.workdir = resolve(dir, against: current!.workdir)
            case "COPY", "ADD":
                guard current != nil else { continue }
                current!.copy(rest, stages: stages)
            case "ENTRYPOINT":
                guard current != nil, let form = parseForm(rest) else { continue }
                current!.entrypoint = Instruction(form: form, line: line)
                // Docker: setting ENTRYPOINT resets a CMD inherited from the base image (not
                // one this stage set).
                if !current!.cmdSetHere { current!.cmd = nil }
            case "CMD":
                guard current != nil, let form = parseForm(rest) else { continue }
                current!.cmd = Instruction(form: form, line: line)
                current!.cmdSetHere = true
            default:
                continue
            }
        }
        guard let final = current else { return Dockerfile() }
        return Dockerfile(entrypoint: final.entrypoint, cmd: final.cmd, workdir: final.workdir,
                          contextDirectories: final.contextDirectories, baseImage: final.baseImage)
    }

    /// One stage's state while reading.
    private struct Stage {
        var baseImage: String?
        var name: String?
        var workdir = "/"
        var entrypoint: Instruction?
        var cmd: Instruction?
        var contextDirectories: [String] = []
        /// This stage set its own CMD (Docker's reset rule spares it).
        var cmdSetHere = false

        /// `COPY [--from=x] [--chown=..] SRC... DEST` or the JSON form.
        mutating func copy(_ rest: String, stages: [String: Stage]) {
            var words: [String]
            if case .exec(let list)? = Dockerfile.parseForm(rest), rest.trimmingWhitespace.hasPrefix("[") {
                words = list
            } else {
                words = rest.split(whereSeparator: \.isWhitespace).map { Dockerfile.unquote(String($0)) }
            }
            var from: String?
            while let first = words.first, first.hasPrefix("--") {
                if first.lowercased().hasPrefix("--from=") { from = String(first.dropFirst(7)).lowercased() }
                words.removeFirst()
            }
            guard words.count >= 2, let last = words.last else { return }
            let sources = words.dropLast()
            // A destination ending in "/" or given as "." is a directory; resolve against WORKDIR.
            let destination = Dockerfile.resolve(last, against: workdir)
            if let from {
                guard let source = stages[from] else { return }
                for src in sources {
                    let absolute = Dockerfile.resolve(src, against: source.workdir)
                    for dir in source.contextDirectories {
                        // COPY --from=build /rails /rails: /rails held the context, so /rails does;
                        // COPY --from=build / /x: /app held it, so /x/app does.
                        if dir == absolute {
                            add(destination)
                        } else if absolute == "/" || dir.hasPrefix(absolute + "/") {
                            let inside = String(dir.dropFirst(absolute == "/" ? 1 : absolute.count + 1))
                            add(Dockerfile.resolve(inside, against: destination))
                        }
                    }
                }
            } else if sources.contains(where: { $0 == "." || $0 == "./" }) {
                add(destination)
            }
        }

        mutating func add(_ directory: String) {
            if !contextDirectories.contains(directory) { contextDirectories.append(directory) }
        }
    }

    /// `["a", "b"]` → exec form (JSON array of strings), anything else → shell form.
    static func parseForm(_ text: String) -> Form? {
        let trimmed = text.trimmingWhitespace
        if trimmed.isEmpty { return nil }
        if trimmed.hasPrefix("["), let list = parseJSONStringArray(trimmed) { return .exec(list) }
        return .shell(trimmed)
    }

    /// A JSON array of strings, as Docker reads exec forms; nil when it is not one (Docker then
    /// treats the text as shell form).
    static func parseJSONStringArray(_ text: String) -> [String]? {
        var chars = Array(text.unicodeScalars)[...]
        func skipSpace() { while let c = chars.first, c == " " || c == "\t" { chars.removeFirst() } }
        guard chars.first == "[" else { return nil }
        chars.removeFirst()
        var result: [String] = []
        skipSpace()
        if chars.first == "]" {
            chars.removeFirst(); skipSpace()
            return chars.isEmpty ? [] : nil
        }
        while true {
            skipSpace()
            guard chars.first == "\"" else { return nil }
            chars.removeFirst()
            var word = String.UnicodeScalarView()
            while true {
                guard let c = chars.first else { return nil }
                chars.removeFirst()
                if c == "\"" { break }
                if c == "\\" {
                    guard let e = chars.first else { return nil }
                    chars.removeFirst()
                    switch e {
                    case "n": word.append("\n")
                    case "t": word.append("\t")
                    case "r": word.append("\r")
                    case "b": word.append("\u{08}")
                    case "f": word.append("\u{0C}")
                    case "u":
                        let hex = String(String.UnicodeScalarView(chars.prefix(4)))
                        guard hex.count == 4, let v = UInt32(hex, radix: 16), let s = Unicode.Scalar(v) else { return nil }
                        chars.removeFirst(4)
                        word.append(s)
                    default: word.append(e)
                    }
                } else {
                    word.append(c)
                }
            }
            result.append(String(word))
            skipSpace()
            guard let next = chars.first else { return nil }
            chars.removeFirst()
            if next == "]" { skipSpace(); return chars.isEmpty ? result : nil }
            guard next == "," else { return nil }
        }
    }

    /// Instructions with their first line, continuation lines joined, comments and blank lines
    /// dropped; reads the `# escape=` parser directive.
    static func logicalLines(_ text: String, escape: inout Character, sawInstruction: inout Bool) -> [(String, Int)] {
        var result: [(String, Int)] = []
        var pending: String?
        var pendingLine = 0
        var directivesOpen = true
        // BuildKit ignores a byte-order mark.
        let body = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        var heredocEnd: String?
        for (offset, raw) in splitLines(body).enumerated() {
            let lineNumber = offset + 1
            // A heredoc's body (`RUN <<EOF … EOF`) is data, not instructions.
            if let end = heredocEnd {
                if raw.trimmingWhitespace == end { heredocEnd = nil }
                continue
            }
            let trimmed = raw.trimmingWhitespace
            if directivesOpen && pending == nil {
                // Parser directives: `# escape=`` ` before any instruction or other comment.
                if trimmed.hasPrefix("#") {
                    let body = trimmed.dropFirst().trimmingWhitespace.lowercased()
                    if body.hasPrefix("escape") , let eq = body.firstIndex(of: "=") {
                        let value = body[body.index(after: eq)...].trimmingWhitespace
                        if value == "`" { escape = "`" }
                        continue
                    }
                    if body.contains("=") && !body.contains(" ") { continue }
                }
                directivesOpen = false
            }
            // Comment lines (also inside a continued instruction) and empty lines are skipped.
            if trimmed.hasPrefix("#") { continue }
            if trimmed.isEmpty { continue }
            var content = raw
            let continues = content.trimmingTrailingWhitespace.last == escape
            if continues {
                content = String(content.trimmingTrailingWhitespace.dropLast())
            }
            if pending == nil {
                pending = content.trimmingWhitespace
                pendingLine = lineNumber
                sawInstruction = true
            } else {
                pending! += " " + content.trimmingWhitespace
            }
            if !continues {
                result.append((pending!, pendingLine))
                heredocEnd = heredocTerminator(pending!)
                pending = nil
            }
        }
        if let pending { result.append((pending, pendingLine)) }
        return result
    }

    /// The word ending a heredoc that `instruction` opens (`RUN <<EOF`, `COPY <<-"END" /x`).
    static func heredocTerminator(_ instruction: String) -> String? {
        guard ["RUN", "COPY", "ADD"].contains(split(instruction).0), let start = instruction.range(of: "<<") else { return nil }
        var rest = instruction[start.upperBound...]
        if rest.first == "-" { rest = rest.dropFirst() }
        if let quote = rest.first, quote == "\"" || quote == "'" { rest = rest.dropFirst() }
        let word = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
        return word.isEmpty ? nil : String(word)
    }

    /// `CMD ["x"]` → ("CMD", "[\"x\"]").
    static func split(_ instruction: String) -> (String, String) {
        guard let space = instruction.firstIndex(where: \.isWhitespace) else { return (instruction.uppercased(), "") }
        return (instruction[..<space].uppercased(), String(instruction[space...]).trimmingWhitespace)
    }

    static func unquote(_ text: String) -> String {
        if text.count >= 2, let f = text.first, f == "\"" || f == "'", text.last == f {
            return String(text.dropFirst().dropLast())
        }
        return text
    }

    /// An absolute, normalised path: `path` against `base` when relative; `.` and `..` folded.
    static func resolve(_ path: String, against base: String) -> String {
        let joined = path.hasPrefix("/") ? path : (base.hasSuffix("/") ? base : base + "/") + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/") {
            switch part {
            case ".", "": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}

/// POSIX shell quoting for turning argv back into one command line, and back.
public enum ShellQuoting {
    /// Splits a command line into words as a shell would (quotes and backslashes, no
    /// expansion): how flyctl turns a string `cmd` into argv.
    public static func split(_ text: String) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for c in text {
            if escaped { word.append(c); escaped = false; inWord = true; continue }
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"" { escaped = true } else { word.append(c) }
                continue
            }
            switch c {
            case "\\": escaped = true; inWord = true
            case "'", "\"": quote = c; inWord = true
            case " ", "\t", "\n", "\r":
                if inWord { words.append(word); word = ""; inWord = false }
            default: word.append(c); inWord = true
            }
        }
        if inWord { words.append(word) }
        return words
    }

    /// `word` as the shell would read it back as one word: bare when it is made of safe
    /// characters, else single-quoted (a `'` inside becomes `'\''`).
    public static func quote(_ word: String) -> String {
        if word.isEmpty { return "''" }
        let safe = word.unicodeScalars.allSatisfy { c in
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
                || "-_./:=@%+,".unicodeScalars.contains(c)
        }
        if safe { return word }
        return "'" + word.replacingAll("'", with: "'\\''") + "'"
    }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { $0 != " " && $0 != "\t" && $0 != "\r" && $0 != "\n" }) else { return "" }
        let end = scalars.lastIndex(where: { $0 != " " && $0 != "\t" && $0 != "\r" && $0 != "\n" })!
        return String(String.UnicodeScalarView(scalars[start...end]))
    }

    var trimmingTrailingWhitespace: String {
        let scalars = unicodeScalars
        guard let end = scalars.lastIndex(where: { $0 != " " && $0 != "\t" && $0 != "\r" && $0 != "\n" }) else { return "" }
        return String(String.UnicodeScalarView(scalars[...end]))
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
