import TOML

extension AppConfig {
    /// Builds a configuration from a decoded fly.toml the way flyctl loads it.
    ///
    /// flyctl's loader converts legacy forms before anything reads the file (string ports,
    /// `concurrency = "soft,hard"`, `[services]`/`[checks]`/`[env]` as a table or an array,
    /// `[experimental] cmd`/`entrypoint`/`kill_timeout`, integer check durations in
    /// milliseconds…), and so does this. What flyctl refuses (a wrong type, an unknown process
    /// group in `processes = [...]`, an unknown restart policy) is an error pointing at the value;
    /// what it accepts but swiftproc cannot use, or does not know (unknown keys, with the closest
    /// known one), is a ``ConfigWarning``.
    ///
    /// Where a group's command comes from, in order: its `[processes]` value; when that is empty
    /// or there is no `[processes]`, the same-named entry of a Procfile next to fly.toml (`app`
    /// also finds `web`, as `fly launch` maps it); `[experimental] cmd`/`entrypoint`; the final
    /// stage of the Dockerfile (`[build] dockerfile`, else `Dockerfile`).
    ///
    /// - Parameters:
    ///   - root: the decoded document.
    ///   - path: the file's path as the user knows it, for messages.
    ///   - directory: the app directory (the file's directory).
    ///   - sourceText: the file's text, so messages can show the offending line; optional.
    ///   - procfile: a Procfile named on the command line (`-f`): its processes replace
    ///     `[processes]`, and its `release:` is used when fly.toml has no release command.
    ///   - procfilePath: that Procfile's path as the user typed it.
    ///   - readFile: reads a file next to fly.toml by relative path (nil when missing): where
    ///     the Procfile and Dockerfile fallbacks come from. Tests pass a dictionary.
    public init(flyToml root: TOMLTable, path: String, directory: String, sourceText: String? = nil,
                procfile explicitProcfile: Procfile? = nil, procfilePath explicitProcfilePath: String? = nil,
                readFile: (String) -> String? = { _ in nil }) throws(ConfigError) {
        let reader = FieldReader(path: path, lines: sourceText.map(splitLines) ?? [])
        reader.warnUnknownKeys(in: root, known: FlyTomlSchema.root, section: nil)
        let experimental = try reader.table("experimental", in: root, name: "experimental")
        if let experimental { reader.warnUnknownKeys(in: experimental, section: "experimental") }

        // Process groups, in file order, and where their commands come from.
        var procfile = explicitProcfile
        var procfilePath = explicitProcfilePath
        var groups: [ProcessGroup]
        var groupsFromProcfile = false
        if let procfile {
            groups = procfile.entries.map { ProcessGroup(name: $0.name, command: $0.command,
                                                         source: .procfile(path: explicitProcfilePath ?? "Procfile", line: $0.line)) }
            groupsFromProcfile = true
        } else {
            groups = try reader.processGroups(in: root)
            if groups.isEmpty || groups.contains(where: { $0.command == nil }),
               let text = readFile(ConfigLoader.procfileName) {
                let display = siblingPath(of: path, named: ConfigLoader.procfileName)
                procfile = try Procfile.parse(text, path: display)
                procfilePath = display
            }
            if groups.isEmpty {
                if let procfile {
                    groups = procfile.entries.map { ProcessGroup(name: $0.name, command: $0.command,
                                                                 source: .procfile(path: procfilePath!, line: $0.line)) }
                    groupsFromProcfile = true
                } else {
                    groups = [ProcessGroup(name: "app", command: nil)]
                }
            }
        }
        var usedProcfile = groupsFromProcfile
        if !groupsFromProcfile, let procfile, let procfilePath {
            for i in groups.indices where groups[i].command == nil {
                let name = groups[i].name
                let entry = procfile.entries.first { $0.name == name }
                    ?? (name == "app" ? procfile.entries.first { $0.name == "web" } : nil)
                if let entry {
                    groups[i].command = entry.command
                    groups[i].source = .procfile(path: procfilePath, line: entry.line)
                    usedProcfile = true
                }
            }
        }
        var dockerfilePath: String?
        if groups.contains(where: { $0.command == nil }) {
            dockerfilePath = try Self.imageCommands(for: &groups, root: root, experimental: experimental, reader: reader,
                                                    configPath: path, readFile: readFile)
        }

        let names = groups.map(\.name)
        let defaultGroup = groupsFromProcfile ? Self.procfileDefaultGroup(names) : Self.flyDefaultGroup(names)
        // fly.toml's sections name Fly's implicit `app` group; with a Procfile's processes,
        // that group is played by the Procfile's default (`web`), as `fly launch` maps it.
        let resolver = GroupResolver(reader: reader, known: names, defaultGroup: defaultGroup,
                                     implicitApp: groupsFromProcfile && !names.contains("app"))

        // [[restart]]: later entries win for a group they share with an earlier one.
        for entry in try reader.tables("restart", in: root, name: "restart") {
            reader.warnUnknownKeys(in: entry, section: "restart")
            let policyName = try reader.string("policy", in: entry, name: "restart.policy") ?? "on-failure"
            let retries = try reader.count("retries", in: entry, name: "restart.retries") ?? 10
            let policy: RestartPolicy
            switch policyName {
            case "always": policy = .always
            case "on-failure", "on_failure": policy = .onFailure(retries: retries)
            case "never", "no": policy = .never
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

        // [[vm]] (also `compute`): memory per group (FLY_VM_MEMORY_MB). An entry without
        // processes is for every group; one that names a group wins over it.
        var vms: [(memory: Int, groups: [String])] = []
        for key in ["compute", "computes", "vm"] {
            for entry in try reader.tables(key, in: root, name: key) {
                reader.warnUnknownKeys(in: entry, section: "vm")
                guard let memory = try reader.vmMemory(entry) else { continue }
                vms.append((memory, try reader.stringList("processes", in: entry, name: "\(key).processes") ?? []))
            }
        }
        for vm in vms.filter({ $0.groups.isEmpty }) + vms.filter({ !$0.groups.isEmpty }) {
            for i in groups.indices where vm.groups.isEmpty || vm.groups.contains(groups[i].name) {
                groups[i].memoryMB = vm.memory
            }
        }

        let env = try reader.environment(in: root)

        // kill_signal, kill_timeout (also in [experimental], the older home of kill_timeout).
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
        var timeoutTable: TOMLTable? = root.entry("kill_timeout") != nil ? root : nil
        if timeoutTable == nil, let experimental, experimental.entry("kill_timeout") != nil { timeoutTable = experimental }
        if let table = timeoutTable,
           let timeout = try reader.duration("kill_timeout", in: table, name: "kill_timeout", integerUnit: .seconds(1)) {
            if timeout > AppConfig.maximumKillTimeout {
                throw reader.invalid("kill_timeout is \(DurationText.format(timeout)); Fly allows at most 300s",
                                     at: table.entry("kill_timeout")?.valueLocation)
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
            reader.warnUnknownKeys(in: table, section: "http_service")
            let port = try reader.port("internal_port", in: table, name: "http_service.internal_port") ?? 8080
            let (processes, given) = try resolver.groups(for: table, name: "http_service")
            var checks: [HealthCheck] = []
            for check in try reader.tables("checks", in: table, name: "http_service.checks") {
                reader.warnUnknownKeys(in: check, section: "http_service.checks")
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
            reader.warnUnknownKeys(in: table, section: "services")
            // flyctl's default when a service names no internal_port.
            let port = try reader.port("internal_port", in: table, name: "services.internal_port") ?? 8080
            let (processes, given) = try resolver.groups(for: table, name: "services")
            let proto = (try reader.string("protocol", in: table, name: "services.protocol") ?? "tcp").lowercased()
            var ports: [Service.Port] = []
            for p in try reader.tables("ports", in: table, name: "services.ports") {
                reader.warnUnknownKeys(in: p, section: "services.ports")
                ports.append(Service.Port(
                    port: try reader.port("port", in: p, name: "services.ports.port"),
                    startPort: try reader.port("start_port", in: p, name: "services.ports.start_port"),
                    endPort: try reader.port("end_port", in: p, name: "services.ports.end_port"),
                    handlers: try reader.stringList("handlers", in: p, name: "services.ports.handlers") ?? [],
                    forceHTTPS: try reader.bool("force_https", in: p, name: "services.ports.force_https") ?? false))
            }
            var tcpChecks: [HealthCheck] = []
            for check in try reader.tables("tcp_checks", in: table, name: "services.tcp_checks") {
                reader.warnUnknownKeys(in: check, section: "services.tcp_checks")
                tcpChecks.append(try reader.healthCheck(check, name: nextServiceCheckName(.tcp, port: port), kind: .tcp,
                                                        origin: .service, port: port, processes: processes,
                                                        context: "services.tcp_checks"))
            }
            var httpChecks: [HealthCheck] = []
            for check in try reader.tables("http_checks", in: table, name: "services.http_checks") {
                reader.warnUnknownKeys(in: check, section: "services.http_checks")
                httpChecks.append(try reader.healthCheck(check, name: nextServiceCheckName(.http, port: port), kind: .http,
                                                         origin: .service, port: port, processes: processes,
                                                         context: "services.http_checks"))
            }
            if !(try reader.tables("script_checks", in: table, name: "services.script_checks")).isEmpty {
                reader.warn("script_checks were removed from Fly and are not run", at: table.entry("script_checks")?.keyLocation)
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
        for (name, check, keyLocation) in try reader.namedTables("checks", in: root) {
            reader.warnUnknownKeys(in: check, section: "checks")
            let context = "checks.\(name)"
            let typeName = try reader.string("type", in: check, name: "\(context).type")
            guard let kind = typeName.flatMap(HealthCheck.Kind.init(rawValue:)) else {
                let why = typeName.map { "type \"\($0)\" is not \"http\" or \"tcp\"" } ?? "has no type (\"http\" or \"tcp\")"
                reader.warn("\(context) \(why); it is not run", at: check.entry("type")?.valueLocation ?? keyLocation)
                continue
            }
            // A check without a port probes the http service's internal_port, as on Fly.
            guard let port = try reader.port("port", in: check, name: "\(context).port") ?? httpService?.internalPort else {
                reader.warn("\(context) has no port and there is no [http_service] to take it from; it is not run",
                            at: keyLocation)
                continue
            }
            let (processes, _) = try resolver.groups(for: check, name: context)
            if processes.isEmpty { continue }
            checks.append(try reader.healthCheck(check, name: name, kind: kind, origin: .topLevel, port: port,
                                                 processes: processes, context: context))
        }

        // [deploy]
        var releaseCommand = procfile?.releaseCommand
        var releaseTimeout = AppConfig.defaultReleaseCommandTimeout
        var rollout = Rollout()
        if let deploy = try reader.table("deploy", in: root, name: "deploy") {
            reader.warnUnknownKeys(in: deploy, section: "deploy")
            if let command = try reader.string("release_command", in: deploy, name: "deploy.release_command"), !command.isEmpty {
                releaseCommand = command
            }
            if let timeout = try reader.duration("release_command_timeout", in: deploy,
                                                 name: "deploy.release_command_timeout", integerUnit: .seconds(1)) {
                releaseTimeout = timeout
            }
            rollout = try reader.rollout(deploy)
        }
        for section in ["build", "metrics"] {
            if case .table(let t)? = root[section] { reader.warnUnknownKeys(in: t, section: section) }
        }
        for section in ["mounts", "mount", "statics", "files"] {
            for t in (try? reader.tables(section, in: root, name: section)) ?? [] {
                reader.warnUnknownKeys(in: t, section: section == "mount" ? "mounts" : section)
            }
        }
        if env.contains(where: { $0.name.hasPrefix("FLY_") }) {
            for entry in env where entry.name.hasPrefix("FLY_") {
                reader.warn("[env] sets \(entry.name): names starting with FLY_ belong to Fly, and swiftproc's own "
                            + "value wins for the ones it sets (as Fly's do)", at: reader.envKeyLocation(entry.name, in: root))
            }
        }

        self.init(
            appName: try reader.string("app", in: root, name: "app"),
            primaryRegion: try reader.string("primary_region", in: root, name: "primary_region"),
            source: .flyToml, configPath: path, procfilePath: usedProcfile ? procfilePath : nil,
            directory: directory, groups: groups, defaultGroup: defaultGroup, env: env,
            killSignal: killSignal, killTimeout: killTimeout, httpService: httpService, services: services,
            checks: checks, releaseCommand: releaseCommand, releaseCommandTimeout: releaseTimeout)
        self.rollout = rollout
        self.consoleCommand = try reader.string("console_command", in: root, name: "console_command")
        if let console = consoleCommand, console.contains("/") {
            // `/rails/bin/rails console`: the image path of the app's own bin/rails.
            let dockerfileName = Self.dockerfileName(root)
            if let text = readFile(dockerfileName) {
                let words = ShellQuoting.split(console)
                let dockerfile = Dockerfile.parse(text)
                if words.map(dockerfile.localPath) != words { self.localConsoleCommand = dockerfile.commandLine(words) }
            }
        }
        self.dockerfilePath = dockerfilePath
        // A group with no command, when others can run (when none can, `start` refuses with this advice).
        for group in groups where group.command == nil && groups.contains(where: { $0.command != nil }) {
            reader.warn("process group \"\(group.name)\" has no command: " + Self.noCommandAdvice(group.name, configPath: path,
                                                                                                   dockerfilePath: dockerfilePath),
                        at: reader.processKeyLocation(group.name, in: root))
        }
        self.warnings = ConfigWarning.inFileOrder(reader.warnings + hardCodedPortWarnings())
        self.notes = reader.notes
    }

    /// How to give a group a command, for the warning and for `start`'s refusal.
    static func noCommandAdvice(_ group: String, configPath: String, dockerfilePath: String?) -> String {
        var text = "on Fly it runs the image's command, which swiftproc looks for in "
        text += dockerfilePath.map { "\($0) (it has no CMD or ENTRYPOINT)" } ?? "a Dockerfile (there is none)"
        text += "; give it one in [processes] (\(group) = \"...\") or a Procfile next to \(configPath)"
        return text
    }

    /// Fills in the commands of groups that have none from `[experimental] cmd`/`entrypoint`
    /// and the Dockerfile, as Fly runs the image's ENTRYPOINT + CMD (each replaced by its
    /// `[experimental]` counterpart when given). Returns the Dockerfile's display path when one
    /// was read.
    private static func imageCommands(for groups: inout [ProcessGroup], root: TOMLTable, experimental: TOMLTable?,
                                      reader: FieldReader, configPath: String,
                                      readFile: (String) -> String?) throws(ConfigError) -> String? {
        var experimentalCmd: [String]?
        var experimentalEntrypoint: [String]?
        if let experimental {
            experimentalCmd = try reader.words("cmd", in: experimental, name: "experimental.cmd")
            experimentalEntrypoint = try reader.words("entrypoint", in: experimental, name: "experimental.entrypoint")
            // `exec` replaces ENTRYPOINT and CMD both: exactly that argv runs.
            if let exec = try reader.words("exec", in: experimental, name: "experimental.exec") {
                (experimentalEntrypoint, experimentalCmd) = (exec, [])
            }
        }
        let relative = dockerfileName(root)
        var dockerfile = Dockerfile()
        var dockerfileDisplay: String?
        if experimentalCmd == nil || experimentalEntrypoint == nil {
            if let text = readFile(relative) {
                dockerfile = Dockerfile.parse(text)
                dockerfileDisplay = siblingPath(of: configPath, named: relative)
            } else if case .table(let build)? = root["build"], let entry = build.entry("dockerfile") {
                reader.warn("build.dockerfile names \(siblingPath(of: configPath, named: relative)), which cannot be read", at: entry.valueLocation)
            }
        }
        let fromExperimental = experimentalCmd != nil || experimentalEntrypoint != nil
        let entrypoint = experimentalEntrypoint.map { Dockerfile.Form.exec($0) } ?? dockerfile.entrypoint?.form
        let cmd = experimentalCmd.map { Dockerfile.Form.exec($0) } ?? dockerfile.cmd?.form
        guard let argv = Dockerfile.combine(entrypoint: entrypoint, cmd: cmd) else { return dockerfileDisplay }
        let source: CommandSource = fromExperimental
            ? .experimental(dockerfile: dockerfile.origin.isEmpty ? nil : dockerfileDisplay)
            : .dockerfile(path: dockerfileDisplay ?? relative, origin: dockerfile.origin)
        let command = dockerfile.commandLine(argv)
        if entrypoint == nil, let base = dockerfile.baseImage {
            // Say it once, where it matters: a base image's ENTRYPOINT would run in front on Fly.
            reader.note("the Dockerfile sets no ENTRYPOINT; if its base image \(base) has one, Fly runs it in front of "
                        + "\"\(command)\" and swiftproc does not")
        }
        for i in groups.indices where groups[i].command == nil {
            groups[i].command = command
            groups[i].source = source
        }
        return dockerfileDisplay
    }

    /// `[build] dockerfile`, else `Dockerfile` (relative to fly.toml).
    static func dockerfileName(_ root: TOMLTable) -> String {
        if case .table(let build)? = root["build"], case .string(let named)? = build["dockerfile"], !named.isEmpty {
            return named
        }
        return "Dockerfile"
    }

    /// Builds a configuration from a Procfile alone: its entries in file order, its `release:`
    /// entry, and Fly's defaults for everything else.
    public init(procfile: Procfile, path: String, directory: String) {
        let names = procfile.entries.map(\.name)
        self.init(source: .procfile, configPath: path, directory: directory,
                  groups: procfile.entries.map { ProcessGroup(name: $0.name, command: $0.command,
                                                              source: .procfile(path: path, line: $0.line)) },
                  defaultGroup: Self.procfileDefaultGroup(names),
                  releaseCommand: procfile.releaseCommand)
        warnings = hardCodedPortWarnings()
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

/// `deploy/fly.toml` → `deploy/Procfile`; `fly.toml` → `Procfile`.
func siblingPath(of displayPath: String, named name: String) -> String {
    if name.hasPrefix("/") { return name }
    guard let slash = displayPath.lastIndex(of: "/") else { return name }
    return String(displayPath[...slash]) + name
}

/// A TOML scalar as environment text: numbers and booleans as flyctl prints them.
func scalarText(_ value: TOMLValue) -> String? {
    switch value {
    case .string(let s): return s
    case .integer(let i): return String(i)
    case .float(let f):
        if f.isFinite, f == f.rounded(), f.magnitude < 1e15 { return String(Int64(f)) }
        return "\(f)"
    case .boolean(let b): return b ? "true" : "false"
    case .dateTime(let d): return d.description
    case .localDate(let d): return d.description
    case .localTime(let t): return t.description
    case .array, .table: return nil
    }
}

/// Resolves `processes = [...]` lists against the known groups.
struct GroupResolver {
    let reader: FieldReader
    let known: [String]
    let defaultGroup: String
    /// `processes = ["app"]` means the default group (processes came from a Procfile).
    var implicitApp = false

    /// The groups a section applies to: its `processes`, or the default group when it has none
    /// (or an empty list), exactly as flyctl decides. An unknown group is a warning (with the
    /// closest name) and left out: flyctl's loader drops it too (its validation refuses it for
    /// services and `[[restart]]`, which `check --strict` matches).
    func groups(for table: TOMLTable, name: String) throws(ConfigError) -> (names: [String], given: Bool) {
        guard let list = try reader.stringList("processes", in: table, name: "\(name).processes"), !list.isEmpty else {
            return ([defaultGroup], false)
        }
        var result: [String] = []
        for listed in list {
            let group = implicitApp && listed == "app" ? defaultGroup : listed
            guard known.contains(group) else {
                let error = ConfigError.unknownProcess(group, suggestions: Suggestions.closest(to: group, among: known), known: known)
                reader.warn("\(name): \(error.message); left out", at: table.entry("processes")?.valueLocation)
                continue
            }
            if !result.contains(group) { result.append(group) }
        }
        return (result, true)
    }
}
