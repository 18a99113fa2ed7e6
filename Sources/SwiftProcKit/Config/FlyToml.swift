import TOML

extension AppConfig {
    /// Builds a configuration from a decoded fly.toml, applying flyctl's rules.
    ///
    /// Sections swiftproc has no use for (`[[vm]]`, `[mounts]`, `[build]`, `[[statics]]`,
    /// `[experimental]`, `script_checks`, unknown keys) are ignored without complaint, as flyctl
    /// ignores keys it does not know; the sections swiftproc reads are checked strictly, with
    /// errors that point at the offending key or value.
    ///
    /// - Parameters:
    ///   - root: the decoded document.
    ///   - path: the file's path as the user knows it, for messages.
    ///   - directory: the app directory (the file's directory).
    ///   - sourceText: the file's text, so errors can show the offending line; optional.
    ///   - procfile: when given, the process groups come from it instead of fly.toml's
    ///     `[processes]` (see ``ConfigLoader``); its `release:` entry is used when fly.toml has
    ///     no `[deploy] release_command`.
    ///   - procfilePath: the Procfile's path, recorded in ``procfilePath``.
    public init(flyToml root: TOMLTable, path: String, directory: String, sourceText: String? = nil,
                procfile: Procfile? = nil, procfilePath: String? = nil) throws(ConfigError) {
        let reader = FieldReader(path: path, lines: sourceText.map(splitLines) ?? [])

        // Process groups, in file order.
        var groups: [ProcessGroup]
        if let procfile {
            groups = procfile.entries.map { ProcessGroup(name: $0.name, command: $0.command) }
        } else {
            groups = try reader.processGroups(in: root)
        }
        if groups.isEmpty { groups = [ProcessGroup(name: "app", command: nil)] }
        let names = groups.map(\.name)
        let defaultGroup = procfile == nil ? Self.flyDefaultGroup(names) : Self.procfileDefaultGroup(names)
        // fly.toml's sections name Fly's implicit `app` group; with a Procfile's processes,
        // that group is played by the Procfile's default (`web`), as `fly launch` maps it.
        let resolver = GroupResolver(reader: reader, known: names, defaultGroup: defaultGroup,
                                     implicitApp: procfile != nil && !names.contains("app"))

        // [[restart]]: later entries win for a group they share with an earlier one.
        for entry in try reader.tables("restart", in: root, name: "restart") {
            let policyName = try reader.string("policy", in: entry, name: "restart.policy") ?? "on-failure"
            let retries = try reader.integer("retries", in: entry, name: "restart.retries") ?? 10
            if retries < 0 {
                throw reader.invalid("restart.retries cannot be negative", at: entry.entry("retries")?.valueLocation)
            }
            let policy: RestartPolicy
            switch policyName {
            case "always": policy = .always
            case "on-failure": policy = .onFailure(retries: retries)
            case "never": policy = .never
            default:
                var message = "unknown restart policy \"\(policyName)\": use always, on-failure or never"
                if let guess = Suggestions.closest(to: policyName, among: ["always", "on-failure", "never"]).first {
                    message += " (did you mean \"\(guess)\"?)"
                }
                throw reader.invalid(message, at: entry.entry("policy")?.valueLocation)
            }
            for group in try resolver.groups(for: entry, name: "restart").names {
                if let i = groups.firstIndex(where: { $0.name == group }) { groups[i].restart = policy }
            }
        }

        // [env]
        var env: [EnvVariable] = []
        if let table = try reader.table("env", in: root, name: "env") {
            for entry in table.entries {
                guard let text = scalarText(entry.value) else {
                    throw reader.invalid("[env] \(entry.key) must be a string, number or boolean, not \(entry.value.kindDescription)",
                                         at: entry.valueLocation)
                }
                if entry.key.hasPrefix("FLY_") {
                    throw reader.invalid("[env] cannot set \(entry.key): names starting with FLY_ are reserved by Fly",
                                         at: entry.keyLocation)
                }
                env.append(EnvVariable(entry.key, text))
            }
        }

        // kill_signal, kill_timeout
        var killSignal = KillSignal.defaultSignal
        if let text = try reader.string("kill_signal", in: root, name: "kill_signal") {
            guard let signal = KillSignal(parsing: text) else {
                throw reader.invalid("kill_signal \"\(text)\" is not one Fly accepts: "
                                     + KillSignal.allowed.map(\.name).joined(separator: ", "),
                                     at: root.entry("kill_signal")?.valueLocation)
            }
            killSignal = signal
        }
        var killTimeout = AppConfig.defaultKillTimeout
        if let timeout = try reader.duration("kill_timeout", in: root, name: "kill_timeout", integerUnit: .seconds(1)) {
            if timeout > AppConfig.maximumKillTimeout {
                throw reader.invalid("kill_timeout is \(DurationText.format(timeout)); Fly allows at most 300s",
                                     at: root.entry("kill_timeout")?.valueLocation)
            }
            killTimeout = timeout
        }

        // Services and checks.
        var serviceCheckNumber = 0
        func nextServiceCheckName(_ kind: HealthCheck.Kind, port: Int) -> String {
            defer { serviceCheckNumber += 1 }
            let number = serviceCheckNumber < 10 ? "0\(serviceCheckNumber)" : "\(serviceCheckNumber)"
            return "servicecheck-\(number)-\(kind.rawValue)-\(port)"
        }

        var httpService: HTTPService?
        if let table = try reader.table("http_service", in: root, name: "http_service") {
            let port = try reader.port("internal_port", in: table, name: "http_service.internal_port") ?? 8080
            let (processes, given) = try resolver.groups(for: table, name: "http_service")
            var checks: [HealthCheck] = []
            for check in try reader.tables("checks", in: table, name: "http_service.checks") {
                checks.append(try reader.healthCheck(check, name: nextServiceCheckName(.http, port: port), kind: .http,
                                                     origin: .httpService, port: port, processes: processes,
                                                     context: "http_service.checks"))
            }
            httpService = HTTPService(
                internalPort: port,
                forceHTTPS: try reader.bool("force_https", in: table, name: "http_service.force_https") ?? false,
                autoStopMachines: try reader.autoStop(in: table, name: "http_service.auto_stop_machines"),
                autoStartMachines: try reader.bool("auto_start_machines", in: table, name: "http_service.auto_start_machines") ?? true,
                minMachinesRunning: try reader.count("min_machines_running", in: table, name: "http_service.min_machines_running") ?? 0,
                processes: processes, processesGiven: given,
                concurrency: try reader.concurrency(in: table, name: "http_service.concurrency"),
                checks: checks)
        }

        var services: [Service] = []
        for table in try reader.tables("services", in: root, name: "services") {
            guard let port = try reader.port("internal_port", in: table, name: "services.internal_port") else {
                throw reader.invalid("[[services]] needs an internal_port (the port the app listens on)", at: table.location)
            }
            let (processes, given) = try resolver.groups(for: table, name: "services")
            let proto = try reader.string("protocol", in: table, name: "services.protocol") ?? "tcp"
            var ports: [Service.Port] = []
            for p in try reader.tables("ports", in: table, name: "services.ports") {
                ports.append(Service.Port(
                    port: try reader.port("port", in: p, name: "services.ports.port"),
                    startPort: try reader.port("start_port", in: p, name: "services.ports.start_port"),
                    endPort: try reader.port("end_port", in: p, name: "services.ports.end_port"),
                    handlers: try reader.stringList("handlers", in: p, name: "services.ports.handlers") ?? [],
                    forceHTTPS: try reader.bool("force_https", in: p, name: "services.ports.force_https") ?? false))
            }
            var tcpChecks: [HealthCheck] = []
            for check in try reader.tables("tcp_checks", in: table, name: "services.tcp_checks") {
                tcpChecks.append(try reader.healthCheck(check, name: nextServiceCheckName(.tcp, port: port), kind: .tcp,
                                                        origin: .service, port: port, processes: processes,
                                                        context: "services.tcp_checks"))
            }
            var httpChecks: [HealthCheck] = []
            for check in try reader.tables("http_checks", in: table, name: "services.http_checks") {
                httpChecks.append(try reader.healthCheck(check, name: nextServiceCheckName(.http, port: port), kind: .http,
                                                         origin: .service, port: port, processes: processes,
                                                         context: "services.http_checks"))
            }
            services.append(Service(
                internalPort: port, protocol: proto, ports: ports, processes: processes, processesGiven: given,
                autoStopMachines: try reader.autoStop(in: table, name: "services.auto_stop_machines"),
                autoStartMachines: try reader.bool("auto_start_machines", in: table, name: "services.auto_start_machines") ?? true,
                minMachinesRunning: try reader.count("min_machines_running", in: table, name: "services.min_machines_running") ?? 0,
                concurrency: try reader.concurrency(in: table, name: "services.concurrency"),
                tcpChecks: tcpChecks, httpChecks: httpChecks))
        }

        var checks: [HealthCheck] = []
        if let table = try reader.table("checks", in: root, name: "checks") {
            for entry in table.entries {
                guard case .table(let check) = entry.value else {
                    throw reader.invalid("checks.\(entry.key) must be a table ([checks.\(entry.key)])", at: entry.valueLocation)
                }
                let context = "checks.\(entry.key)"
                guard let typeName = try reader.string("type", in: check, name: "\(context).type") else {
                    throw reader.invalid("\(context) needs type = \"http\" or \"tcp\"", at: check.location ?? entry.keyLocation)
                }
                guard let kind = HealthCheck.Kind(rawValue: typeName) else {
                    throw reader.invalid("\(context).type must be \"http\" or \"tcp\", not \"\(typeName)\"",
                                         at: check.entry("type")?.valueLocation)
                }
                guard let port = try reader.port("port", in: check, name: "\(context).port") else {
                    throw reader.invalid("\(context) needs a port to probe", at: check.location ?? entry.keyLocation)
                }
                let (processes, _) = try resolver.groups(for: check, name: context)
                checks.append(try reader.healthCheck(check, name: entry.key, kind: kind, origin: .topLevel, port: port,
                                                     processes: processes, context: context))
            }
        }

        // [deploy]
        var releaseCommand = procfile?.releaseCommand
        var releaseTimeout = AppConfig.defaultReleaseCommandTimeout
        if let deploy = try reader.table("deploy", in: root, name: "deploy") {
            if let command = try reader.string("release_command", in: deploy, name: "deploy.release_command"), !command.isEmpty {
                releaseCommand = command
            }
            if let timeout = try reader.duration("release_command_timeout", in: deploy,
                                                 name: "deploy.release_command_timeout", integerUnit: .seconds(1)) {
                releaseTimeout = timeout
            }
        }

        self.init(
            appName: try reader.string("app", in: root, name: "app"),
            primaryRegion: try reader.string("primary_region", in: root, name: "primary_region"),
            source: .flyToml, configPath: path, procfilePath: procfile == nil ? nil : procfilePath,
            directory: directory, groups: groups, defaultGroup: defaultGroup, env: env,
            killSignal: killSignal, killTimeout: killTimeout, httpService: httpService, services: services,
            checks: checks, releaseCommand: releaseCommand, releaseCommandTimeout: releaseTimeout)
    }

    /// Builds a configuration from a Procfile alone: its entries in file order, its `release:`
    /// entry, and Fly's defaults for everything else.
    public init(procfile: Procfile, path: String, directory: String) {
        let names = procfile.entries.map(\.name)
        self.init(source: .procfile, configPath: path, directory: directory,
                  groups: procfile.entries.map { ProcessGroup(name: $0.name, command: $0.command) },
                  defaultGroup: Self.procfileDefaultGroup(names),
                  releaseCommand: procfile.releaseCommand)
    }

    /// flyctl's rule: `app` if there is one, else the first name alphabetically.
    static func flyDefaultGroup(_ names: [String]) -> String {
        names.contains("app") ? "app" : (names.sorted().first ?? "app")
    }

    /// For a Procfile's processes: `app`, else `web` (Heroku's web process, which `fly launch`
    /// turns into Fly's `app` group), else flyctl's rule.
    static func procfileDefaultGroup(_ names: [String]) -> String {
        names.contains("app") || !names.contains("web") ? flyDefaultGroup(names) : "web"
    }
}

/// A TOML scalar as environment text: numbers and booleans as flyctl prints them.
func scalarText(_ value: TOMLValue) -> String? {
    switch value {
    case .string(let s): return s
    case .integer(let i): return String(i)
    case .float(let f):
        if f.isFinite, f == f.rounded(), abs(f) < 1e15 { return String(Int64(f)) }
        return "\(f)"
    case .boolean(let b): return b ? "true" : "false"
    case .dateTime(let d): return d.description
    case .localDate(let d): return d.description
    case .localTime(let t): return t.description
    case .array, .table: return nil
    }
}

/// Resolves `processes = [...]` lists against the known groups.
private struct GroupResolver {
    let reader: FieldReader
    let known: [String]
    let defaultGroup: String
    /// `processes = ["app"]` means the default group (processes came from a Procfile).
    var implicitApp = false

    /// The groups a section applies to: its `processes`, or the default group when it has none
    /// (or an empty list), exactly as flyctl decides.
    func groups(for table: TOMLTable, name: String) throws(ConfigError) -> (names: [String], given: Bool) {
        guard let list = try reader.stringList("processes", in: table, name: "\(name).processes"), !list.isEmpty else {
            return ([defaultGroup], false)
        }
        var result: [String] = []
        for listed in list {
            let group = implicitApp && listed == "app" ? defaultGroup : listed
            guard known.contains(group) else {
                throw .unknownProcess(group, suggestions: Suggestions.closest(to: group, among: known), known: known,
                                      at: reader.position(table.entry("processes")?.valueLocation))
            }
            if !result.contains(group) { result.append(group) }
        }
        return (result, true)
    }
}

/// Typed access to TOML fields with errors that name the key and point at the value.
private struct FieldReader {
    let path: String
    let lines: [String]

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

    /// An integer in 1...65535.
    func port(_ key: String, in table: TOMLTable, name: String) throws(ConfigError) -> Int? {
        guard let value = try integer(key, in: table, name: name) else { return nil }
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
            guard let n = Int(exactly: i), abs(n) < 1 << 40 else { throw invalid("\(name) is out of range", at: entry.valueLocation) }
            value = integerUnit * n
        case .float(let f):
            guard f.isFinite, abs(f) < 1e12 else { throw invalid("\(name) is out of range", at: entry.valueLocation) }
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

    func concurrency(in table: TOMLTable, name: String) throws(ConfigError) -> Concurrency? {
        guard let t = try self.table("concurrency", in: table, name: name) else { return nil }
        let type = try string("type", in: t, name: "\(name).type") ?? "connections"
        guard type == "connections" || type == "requests" else {
            throw invalid("\(name).type must be \"connections\" or \"requests\", not \"\(type)\"", at: t.entry("type")?.valueLocation)
        }
        return Concurrency(type: type,
                           softLimit: try count("soft_limit", in: t, name: "\(name).soft_limit") ?? 20,
                           hardLimit: try count("hard_limit", in: t, name: "\(name).hard_limit") ?? 25)
    }

    /// The fields every check shares. Integer durations are milliseconds, as on Fly. HTTP
    /// checks get Fly's defaults for what the file leaves out: `GET`, `/`, `http`.
    func healthCheck(_ table: TOMLTable, name checkName: String, kind: HealthCheck.Kind, origin: HealthCheck.Origin,
                     port: Int, processes: [String], context: String) throws(ConfigError) -> HealthCheck {
        var headers: [EnvVariable] = []
        if let t = try self.table("headers", in: table, name: "\(context).headers") {
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
            groups.append(ProcessGroup(name: name, command: command.isEmpty ? nil : command))
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
                guard let name = try string("name", in: t, name: "processes.name") else {
                    throw invalid("[[processes]] needs a name", at: t.location ?? entry.valueLocation)
                }
                let command = try string("command", in: t, name: "processes.command") ?? ""
                try add(name, command, at: t.entry("name")?.valueLocation ?? t.location)
            }
        default:
            throw typeError("processes", expected: "a table ([processes])", entry: entry)
        }
        return groups
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
