import TOML

/// Typed access to TOML fields with errors that name the key and point at the value, and the
/// warnings gathered while reading (unknown keys, values read past).
///
/// Legacy forms flyctl's loader converts are read here, so the loader above sees one shape:
/// ports as strings, `concurrency = "soft,hard"`, sections as a table or an array of tables.
final class FieldReader {
    let path: String
    let lines: [String]
    private(set) var warnings: [ConfigWarning] = []
    /// Things worth knowing that are not problems (`check` lists them as notes).
    private(set) var notes: [String] = []

    init(path: String, lines: [String]) {
        self.path = path
        self.lines = lines
    }

    func note(_ message: String) {
        if !notes.contains(message) { notes.append(message) }
    }

    func warn(_ message: String, at location: SourceLocation?) {
        let warning = ConfigWarning(message, at: location.map { position($0) })
        if !warnings.contains(warning) { warnings.append(warning) }
    }

    /// One warning per key of `table` that flyctl does not know in `section`, with the closest
    /// known key when there is one.
    func warnUnknownKeys(in table: TOMLTable, known: Set<String>? = nil, section: String?) {
        guard let known = known ?? section.flatMap({ FlyTomlSchema.sections[$0] }) else { return }
        for entry in table.entries where !known.contains(entry.key) {
            let place = section.map { "[\($0)]" } ?? "the top level"
            var message = "unknown key \"\(entry.key)\" in \(place)"
            if let guess = Suggestions.closest(to: entry.key, among: known.sorted()).first {
                message += "; did you mean \"\(guess)\"?"
            } else {
                message += " (ignored)"
            }
            warn(message, at: entry.keyLocation)
        }
    }

    func position(_ location: SourceLocation?) -> FilePosition {
        let l = location ?? SourceLocation(line: 1, column: 1)
        return FilePosition(path: path, line: l.line, column: l.column,
                            sourceLine: l.line >= 1 && l.line <= lines.count ? lines[l.line - 1] : nil)
    }

    func invalid(_ message: String, at location: SourceLocation?) -> ConfigError {
        .invalid(message, at: position(location))
    }

    func typeError(_ name: String, expected: String, entry: TOMLTable.Entry) -> ConfigError {
        invalid("\(name) must be \(expected), not \(entry.value.kindDescription)", at: entry.valueLocation)
    }

    func string(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> String? {
        guard let entry = table.entry(key) else { return nil }
        guard case .string(let s) = entry.value else { throw typeError(name, expected: "a string", entry: entry) }
        return s
    }

    func integer(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> Int? {
        guard let entry = table.entry(key) else { return nil }
        guard case .integer(let i) = entry.value, let value = Int(exactly: i) else {
            throw typeError(name, expected: "an integer", entry: entry)
        }
        return value
    }

    /// A non-negative integer.
    func count(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> Int? {
        guard let value = try integer(key, in: table, name: name) else { return nil }
        if value < 0 { throw invalid("\(name) cannot be negative", at: table.entry(key)?.valueLocation) }
        return value
    }

    /// An integer in 1...65535; a string of digits too (`internal_port = "8080"`), which flyctl's
    /// loader converts.
    func port(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> Int? {
        guard let entry = table.entry(key) else { return nil }
        var number: Int?
        switch entry.value {
        case .integer(let i): number = Int(exactly: i)
        case .string(let s): number = Int(s.trimmingWhitespace)
        default: break
        }
        guard let value = number else { throw typeError(name, expected: "a port number", entry: entry) }
        if !(1...65535).contains(value) {
            throw invalid("\(name) must be a port number between 1 and 65535, not \(value)", at: table.entry(key)?.valueLocation)
        }
        return value
    }

    func bool(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> Bool? {
        guard let entry = table.entry(key) else { return nil }
        guard case .boolean(let b) = entry.value else { throw typeError(name, expected: "true or false", entry: entry) }
        return b
    }

    func stringList(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> [String]? {
        guard let entry = table.entry(key) else { return nil }
        guard case .array(let items) = entry.value else {
            throw typeError(name, expected: "a list of strings", entry: entry)
        }
        var result: [String] = []
        for item in items {
            guard case .string(let s) = item else {
                throw invalid("\(name) must be a list of strings, but holds \(item.kindDescription)", at: entry.valueLocation)
            }
            result.append(s)
        }
        return result
    }

    func table(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> TOMLTable? {
        guard let entry = table.entry(key) else { return nil }
        guard case .table(let t) = entry.value else { throw typeError(name, expected: "a table ([\(name)])", entry: entry) }
        return t
    }

    /// An array of tables (`[[name]]`), also accepting a single table (`[name]`), which older
    /// files use for sections that are now arrays.
    func tables(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> [TOMLTable] {
        guard let entry = table.entry(key) else { return [] }
        switch entry.value {
        case .table(let t):
            return [t]
        case .array(let items):
            var result: [TOMLTable] = []
            for item in items {
                guard case .table(let t) = item else {
                    throw invalid("\(name) must hold tables ([[\(name)]]), not \(item.kindDescription)", at: entry.valueLocation)
                }
                result.append(t)
            }
            return result
        default:
            throw typeError(name, expected: "a list of tables ([[\(name)]])", entry: entry)
        }
    }

    /// A duration: a string in Go's syntax (`"30s"`, `"1m30s"`, `"500ms"`), or a number in
    /// `integerUnit`s (seconds for `kill_timeout`, milliseconds in checks, as flyctl reads them).
    func duration(_ key: String, in table: TOMLTable, name: String, integerUnit: Duration) throws(ConfigError) -> Duration? {
        guard let entry = table.entry(key) else { return nil }
        let value: Duration
        switch entry.value {
        case .integer(let i):
            guard let n = Int(exactly: i), n.magnitude < 1 << 40 else { throw invalid("\(name) is out of range", at: entry.valueLocation) }
            value = integerUnit * n
        case .float(let f):
            guard f.isFinite, f.magnitude < 1e12 else { throw invalid("\(name) is out of range", at: entry.valueLocation) }
            value = integerUnit * f
        case .string(let s):
            guard let parsed = DurationText.parse(s) else {
                throw invalid("\(name) \"\(s)\" is not a duration (write it like \"30s\", \"1m30s\" or \"500ms\")",
                              at: entry.valueLocation)
            }
            value = parsed
        default:
            throw typeError(name, expected: "a duration (\"30s\") or a number", entry: entry)
        }
        if value < .zero { throw invalid("\(name) cannot be negative", at: entry.valueLocation) }
        return value
    }

    /// `auto_stop_machines`: `"off" | "stop" | "suspend"`, or the legacy booleans (true = stop).
    func autoStop(in table: TOMLTable, name: String) throws(ConfigError) -> AutoStop {
        guard let entry = table.entry("auto_stop_machines") else { return .off }
        switch entry.value {
        case .boolean(let b):
            return b ? .stop : .off
        case .string(let s):
            guard let value = AutoStop(rawValue: s) else {
                throw invalid("\(name) must be \"off\", \"stop\" or \"suspend\", not \"\(s)\"", at: entry.valueLocation)
            }
            return value
        default:
            throw typeError(name, expected: "\"off\", \"stop\", \"suspend\" or a boolean", entry: entry)
        }
    }

    /// `[x.concurrency]`, or the legacy `concurrency = "soft,hard"`. Fly sets no hard limit
    /// unless one is given; the soft limit defaults to 20. An unknown `type` is read as
    /// `connections` with a warning (flyctl deploys it).
    func concurrency(in table: TOMLTable, name: String) throws(ConfigError) -> Concurrency? {
        guard let entry = table.entry("concurrency") else { return nil }
        if case .string(let text) = entry.value {
            // flyctl reads the legacy string as a requests limit.
            let parts = text.split(separator: ",").map { Int($0.trimmingWhitespace) }
            guard parts.count == 2, let soft = parts[0], let hard = parts[1], soft >= 0, hard >= 0 else {
                throw invalid("\(name) \"\(text)\" is not \"soft_limit,hard_limit\" (like \"20,25\")", at: entry.valueLocation)
            }
            return Concurrency(type: "requests", softLimit: soft, hardLimit: hard)
        }
        guard let t = try self.table("concurrency", in: table, name: name) else { return nil }
        warnUnknownKeys(in: t, known: FlyTomlSchema.sections["concurrency"], section: name)
        var type = try string("type", in: t, name: "\(name).type") ?? "connections"
        if type != "connections" && type != "requests" {
            warn("\(name).type \"\(type)\" is not \"connections\" or \"requests\"; counted as connections",
                 at: t.entry("type")?.valueLocation)
            type = "connections"
        }
        return Concurrency(type: type,
                           softLimit: try count("soft_limit", in: t, name: "\(name).soft_limit") ?? 20,
                           hardLimit: try count("hard_limit", in: t, name: "\(name).hard_limit"))
    }

    /// The fields every check shares. Integer durations are milliseconds, as on Fly. HTTP
    /// checks get Fly's defaults for what the file leaves out: `GET`, `/`, `http`.
    func healthCheck(_ table: TOMLTable, name checkName: String, kind: HealthCheck.Kind, origin: HealthCheck.Origin,
                     port: Int, processes: [String], context: String) throws(ConfigError) -> HealthCheck {
        // `[x.headers]` Name = value, or the legacy array: `[[x.headers]]` with name/value
        // (or Name = value) per entry.
        var headers: [EnvVariable] = []
        for t in try tables("headers", in: table, name: "\(context).headers") {
            if let name = try string("name", in: t, name: "\(context).headers.name") {
                headers.append(EnvVariable(name, t["value"].flatMap(scalarText) ?? ""))
                continue
            }
            for entry in t.entries {
                guard let text = scalarText(entry.value) else {
                    throw typeError("\(context).headers.\(entry.key)", expected: "a string", entry: entry)
                }
                headers.append(EnvVariable(entry.key, text))
            }
        }
        let isHTTP = kind == .http
        let method = try string("method", in: table, name: "\(context).method")?.uppercased()
        return HealthCheck(
            name: checkName, kind: kind, origin: origin, port: port,
            path: try string("path", in: table, name: "\(context).path") ?? (isHTTP ? "/" : nil),
            method: method ?? (isHTTP ? "GET" : nil),
            protocol: try string("protocol", in: table, name: "\(context).protocol") ?? (isHTTP ? "http" : nil),
            interval: try duration("interval", in: table, name: "\(context).interval", integerUnit: .milliseconds(1)),
            timeout: try duration("timeout", in: table, name: "\(context).timeout", integerUnit: .milliseconds(1)),
            gracePeriod: try duration("grace_period", in: table, name: "\(context).grace_period", integerUnit: .milliseconds(1)),
            headers: headers, processes: processes)
    }

    /// `[processes]`, or the legacy `[[processes]]` with `name`/`command`, or `processes = []`.
    func processGroups(in root: TOMLTable) throws(ConfigError) -> [ProcessGroup] {
        guard let entry = root.entry("processes") else { return [] }
        var groups: [ProcessGroup] = []
        func add(_ name: String, _ command: String, at location: SourceLocation?) throws(ConfigError) {
            try validateGroupName(name, at: location)
            if groups.contains(where: { $0.name == name }) {
                throw invalid("process group \"\(name)\" is defined twice", at: location)
            }
            let trimmed = command.trimmingWhitespace
            groups.append(ProcessGroup(name: name, command: trimmed.isEmpty ? nil : command,
                                       source: trimmed.isEmpty ? CommandSource.missing : .processes(position(location))))
        }
        switch entry.value {
        case .table(let table):
            for e in table.entries {
                guard case .string(let command) = e.value else {
                    throw typeError("processes.\(e.key)", expected: "a command string", entry: e)
                }
                try add(e.key, command, at: e.keyLocation)
            }
        case .array(let items):
            for item in items {
                guard case .table(let t) = item else {
                    throw invalid("processes must be a table ([processes]) or a list of tables ([[processes]]) with name and command",
                                  at: entry.valueLocation)
                }
                // flyctl skips an entry without a name.
                guard let name = try string("name", in: t, name: "processes.name") else { continue }
                let command = try string("command", in: t, name: "processes.command") ?? ""
                try add(name, command, at: t.entry("name")?.valueLocation ?? t.location)
            }
        default:
            throw typeError("processes", expected: "a table ([processes])", entry: entry)
        }
        return groups
    }

    /// argv given as a list of strings, or a string, which flyctl takes as one word (it does
    /// not split it): `[experimental] cmd`, `entrypoint`, `exec`.
    func words(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> [String]? {
        guard let entry = table.entry(key) else { return nil }
        if case .string(let s) = entry.value {
            if s.contains(" ") {
                warn("\(name) is one string, which Fly runs as a single word; write it as a list: "
                     + "[\(ShellQuoting.split(s).map { "\"\($0)\"" }.joined(separator: ", "))]", at: entry.valueLocation)
            }
            return s.isEmpty ? nil : [s]
        }
        let list = try stringList(key, in: table, name: name) ?? []
        return list.isEmpty ? nil : list
    }

    /// Top-level checks: `[checks.NAME]` tables, or the legacy `[[checks]]` array (named by its
    /// `name`, else `check_N`), with where each was declared.
    func namedTables(_ key: String, in root: TOMLTable) throws(ConfigError) -> [(String, TOMLTable, SourceLocation?)] {
        guard let entry = root.entry(key) else { return [] }
        switch entry.value {
        case .table(let table):
            var result: [(String, TOMLTable, SourceLocation?)] = []
            for e in table.entries {
                guard case .table(let check) = e.value else {
                    throw invalid("\(key).\(e.key) must be a table ([\(key).\(e.key)])", at: e.valueLocation)
                }
                result.append((e.key, check, e.keyLocation))
            }
            return result
        case .array:
            var result: [(String, TOMLTable, SourceLocation?)] = []
            for t in try tables(key, in: root, name: key) {
                guard let name = try string("name", in: t, name: "\(key).name") else {
                    throw invalid("[[\(key)]] needs a name", at: t.location ?? entry.keyLocation)
                }
                result.append((name, t, t.location ?? entry.keyLocation))
            }
            return result
        default:
            throw typeError(key, expected: "a table ([\(key).NAME])", entry: entry)
        }
    }

    /// `[env]` as a table, or the legacy array of tables (merged in order); values as strings.
    func environment(in root: TOMLTable) throws(ConfigError) -> [EnvVariable] {
        var env: [EnvVariable] = []
        for table in try tables("env", in: root, name: "env") {
            for entry in table.entries {
                guard let text = scalarText(entry.value) else {
                    throw invalid("[env] \(entry.key) must be a string, number or boolean, not \(entry.value.kindDescription)",
                                  at: entry.valueLocation)
                }
                env.removeAll { $0.name == entry.key }
                env.append(EnvVariable(entry.key, text))
            }
        }
        return env
    }

    /// Where `[env]` sets `name`, for a warning.
    func envKeyLocation(_ name: String, in root: TOMLTable) -> SourceLocation? {
        ((try? tables("env", in: root, name: "env")) ?? []).compactMap { $0.entry(name)?.keyLocation }.first
    }

    /// Where `[processes]` names `group`, for a warning.
    func processKeyLocation(_ group: String, in root: TOMLTable) -> SourceLocation? {
        if case .table(let t)? = root["processes"] { return t.entry(group)?.keyLocation }
        return root.entry("processes")?.keyLocation
    }

    /// A `[[vm]]` entry's memory in MB: `memory` (`"1gb"`, `"512mb"`, `1024`), `memory_mb`, or
    /// the `size` preset's; nil when it says nothing about memory.
    func vmMemory(_ table: TOMLTable) throws(ConfigError) -> Int? {
        // flyctl: the size preset first, then `memory`, then `memory_mb` wins.
        var result: Int?
        if let size = try string("size", in: table, name: "vm.size") {
            if let mb = Self.presetMemory(size) {
                result = mb
            } else {
                warn("vm.size \"\(size)\" is not a size swiftproc knows (shared-cpu-Nx, performance-Nx)",
                     at: table.entry("size")?.valueLocation)
            }
        }
        for key in ["memory", "memory_mb"] {
            guard let entry = table.entry(key) else { continue }
            switch entry.value {
            case .integer(let i) where i > 0 && i < 1 << 30:
                result = Int(i)
            case .string(let s) where Self.megabytes(s) != nil:
                result = Self.megabytes(s)
            default:
                warn("vm.\(key) is not a size like \"1gb\", \"512mb\" or a number of MB", at: entry.valueLocation)
            }
        }
        return result
    }

    /// Memory of Fly's presets: `shared-cpu-Nx` is N × 256 MB, `performance-Nx` N × 2048 MB.
    static func presetMemory(_ size: String) -> Int? {
        for (prefix, unit) in [("shared-cpu-", 256), ("performance-", 2048)] where size.hasPrefix(prefix) && size.hasSuffix("x") {
            if let n = Int(size.dropFirst(prefix.count).dropLast()), (1...64).contains(n) { return n * unit }
        }
        return nil
    }

    /// `"1gb"`, `"1GB"`, `"512mb"`, `"2g"`, `"1024"` (MB) → megabytes.
    static func megabytes(_ text: String) -> Int? {
        let t = text.trimmingWhitespace.lowercased()
        let digits = t.prefix { $0.isNumber || $0 == "." }
        guard let value = Double(digits), value > 0, value < 1e9 else { return nil }
        let unit = t.dropFirst(digits.count).trimmingWhitespace
        let factor: Double
        switch unit {
        case "", "m", "mb", "mib": factor = 1
        case "g", "gb", "gib": factor = 1024
        case "t", "tb", "tib": factor = 1024 * 1024
        case "k", "kb", "kib": factor = 1.0 / 1024
        default: return nil
        }
        let mb = (value * factor).rounded()
        return mb >= 1 && mb < 1e9 ? Int(mb) : nil
    }

    /// `[deploy] strategy`, `max_unavailable`, `wait_timeout`. A strategy outside canary, rolling,
    /// immediate, bluegreen (which flyctl's validation refuses) is a warning; canary and
    /// bluegreen roll locally (with a warning).
    func rollout(_ deploy: TOMLTable) throws(ConfigError) -> Rollout {
        var rollout = Rollout()
        if let name = try string("strategy", in: deploy, name: "deploy.strategy") {
            let location = deploy.entry("strategy")?.valueLocation
            switch name.lowercased() {
            case "rolling", "": rollout.strategy = .rolling
            case "immediate": rollout.strategy = .immediate
            case "canary", "bluegreen":
                warn("deploy.strategy \"\(name)\" has no local counterpart; restarts and deploys roll one batch at a time",
                     at: location)
            default:
                // flyctl's loader takes any string (its validation refuses it): read as rolling.
                var message = "deploy.strategy is rolling, immediate, canary or bluegreen, not \"\(name)\""
                if let guess = Suggestions.closest(to: name, among: ["rolling", "immediate", "canary", "bluegreen"]).first {
                    message += " (did you mean \"\(guess)\"?)"
                }
                warn(message + "; rolling is used", at: location)
            }
        }
        if let entry = deploy.entry("max_unavailable") {
            let value: Double?
            switch entry.value {
            case .integer(let i): value = i >= 1 && i <= 1_000_000 ? Double(i) : nil
            case .float(let f): value = f.isFinite && f > 0 && f <= 1_000_000 ? f : nil
            default: value = nil
            }
            guard let value else {
                throw invalid("deploy.max_unavailable must be a count ≥ 1 or a fraction between 0 and 1", at: entry.valueLocation)
            }
            rollout.maxUnavailable = value
        }
        if let timeout = try duration("wait_timeout", in: deploy, name: "deploy.wait_timeout", integerUnit: .seconds(1)) {
            rollout.waitTimeout = max(timeout, .seconds(1))
        }
        return rollout
    }

    /// Fly's rule for group names: lowercase letters, digits, `-` and `_`.
    func validateGroupName(_ name: String, at location: SourceLocation?) throws(ConfigError) {
        let ok = !name.isEmpty && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
        }
        if !ok {
            throw invalid("invalid process group name \"\(name)\": use lowercase letters, digits, \"-\" and \"_\"", at: location)
        }
    }
}
