/// `swiftproc export launchd`: one property list per instance (launchd has no templates), each
/// running `/bin/sh -c COMMAND` in the app directory with the app's environment and the
/// instance's `PORT`, `PS`, `FLY_PROCESS_GROUP` and `FLY_APP_NAME`; `KeepAlive` from the
/// restart policy, `ExitTimeOut` from `kill_timeout`. The release command gets a plist that
/// runs once at load.
enum LaunchdExport {
    static func render(_ model: ExportModel) -> ExportResult {
        var files: [ExportFile] = []
        var warnings: [String] = []
        let labelPrefix = "swiftproc.\(unitWord(model.appName))"
        var env: [(key: String, value: PlistNode)] = []
        for v in model.mergedEnvironment {
            if PlistWriter.canRepresent(v.name) && PlistWriter.canRepresent(v.value) {
                env.append((v.name, .string(v.value)))
            } else {
                warnings.append("\(v.name): its value holds control characters a property list cannot carry; left out")
            }
        }
        let isPrivate = !model.dotenv.isEmpty
        let header = Exporter.header(.launchd, model) + [
            "Load: cp this file ~/Library/LaunchAgents/ && launchctl load ~/Library/LaunchAgents/\(labelPrefix)....plist",
            "Output goes to /tmp/LABEL.log." + (isPrivate ? " It holds the .env values: keep it private." : ""),
        ]
        if model.killSignal != "SIGTERM" {
            warnings.append("launchd stops processes with SIGTERM; kill_signal \(model.killSignal) is not exported")
        }

        func plist(label: String, command: String, extraEnv: [EnvVariable], keepAlive: PlistNode) -> ExportFile? {
            guard PlistWriter.canRepresent(command) else {
                warnings.append("\(label): the command holds control characters a property list cannot carry; left out")
                return nil
            }
            var environment = env
            for v in extraEnv {
                environment.removeAll { $0.key == v.name }
                environment.append((v.name, .string(v.value)))
            }
            let root = PlistNode.dict([
                ("Label", .string(label)),
                ("ProgramArguments", .array([.string("/bin/sh"), .string("-c"), .string(shellCommand(command))])),
                ("WorkingDirectory", .string(model.directory)),
                ("EnvironmentVariables", .dict(environment)),
                ("RunAtLoad", .bool(true)),
                ("KeepAlive", keepAlive),
                ("ExitTimeOut", .int(model.killTimeout)),
                ("StandardOutPath", .string("/tmp/\(label).log")),
                ("StandardErrorPath", .string("/tmp/\(label).log")),
            ])
            return ExportFile(name: "\(label).plist", contents: PlistWriter.render(root, comment: header), isPrivate: isPrivate)
        }

        if let release = model.releaseCommand,
           let file = plist(label: "\(labelPrefix).release", command: release,
                            extraEnv: [EnvVariable("RELEASE_COMMAND", "1"), EnvVariable("FLY_PROCESS_GROUP", "fly_app_release_command"),
                                       EnvVariable("FLY_APP_NAME", model.appName)],
                            keepAlive: .bool(false)) {
            files.append(file)
            warnings.append("launchd has no dependencies: load \(labelPrefix).release.plist first and wait for it to finish")
        }
        for g in model.groups where g.count > 0 {
            let keepAlive: PlistNode
            switch g.restart {
            case .always: keepAlive = .bool(true)
            case .onFailure: keepAlive = .dict([("SuccessfulExit", .bool(false))])
            case .never: keepAlive = .bool(false)
            }
            for i in 1...g.count {
                let label = "\(labelPrefix).\(unitWord(g.name)).\(i)"
                let extra = [EnvVariable("PORT", String(g.basePort + i - 1)), EnvVariable("PS", "\(g.name).\(i)"),
                             EnvVariable("FLY_PROCESS_GROUP", g.name), EnvVariable("FLY_APP_NAME", model.appName)]
                if let file = plist(label: label, command: g.command, extraEnv: extra, keepAlive: keepAlive) { files.append(file) }
            }
        }
        if model.groups.contains(where: { if case .onFailure = $0.restart { return true }; return false }) {
            warnings.append("launchd restarts a failing process without a retry limit (every 10 s at most)")
        }
        return ExportResult(files: files, warnings: warnings)
    }
}
