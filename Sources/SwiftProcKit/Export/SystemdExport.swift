/// `swiftproc export systemd`: a target for the app, a release oneshot, one templated unit per
/// group (`APP-GROUP@.service`, instance = index), and `APP.env` for the `.env` values.
///
/// `PORT` per instance: a unit setting cannot do arithmetic, so the template passes the
/// instance (`%i`) in `SWIFTPROC_INSTANCE` and `ExecStart=` runs `/bin/sh -c` with a short
/// preamble that computes `PORT=$((base + instance - 1))` — `start`'s scheme — and exports
/// `PS`, `FLY_PROCESS_GROUP` and `FLY_APP_NAME` (after the environment files, so they win, as
/// in `start`), then runs the command as `start` does (`exec`-prefixed when simple).
enum SystemdExport {
    static func render(_ model: ExportModel, options: ExportOptions) -> ExportResult {
        let prefix = unitWord(model.appName)
        let target = "\(prefix).target"
        let releaseUnit = "\(prefix)-release.service"
        var files: [ExportFile] = []
        var warnings: [String] = []
        let systemctl = options.userUnits ? "systemctl --user" : "systemctl"
        let installDir = options.userUnits ? "~/.config/systemd/user/" : "/etc/systemd/system/"
        let header = Exporter.header(.systemd, model) + [
            "Install: copy the .service, .target (and .env) files to \(installDir), then",
            "  \(systemctl) daemon-reload && \(systemctl) enable --now \(target)",
            "One more instance: \(systemctl) enable --now \(prefix)-GROUP@N.service",
        ]
        let comment = header.map { "# " + $0 }.joined(separator: "\n") + "\n"

        var env: [EnvVariable] = []
        for v in model.env {
            if isPortableEnvName(v.name) { env.append(v) } else { warnings.append("[env] \(v.name): not a valid variable name for systemd; left out") }
        }
        var envFile: String?
        let dotenv = model.dotenv.filter { v in
            if isPortableEnvName(v.name) { return true }
            warnings.append(".env \(v.name): not a valid variable name for systemd; left out")
            return false
        }
        if !model.dotenv.isEmpty {
            let name = "\(prefix).env"
            envFile = options.outputDirectory.hasSuffix("/") ? options.outputDirectory + name : options.outputDirectory + "/" + name
            var text = Exporter.header(.systemd, model).map { "# " + $0 + "\n" }.joined()
            text += "# The .env values (\(model.envFiles.map { oneLine($0) }.joined(separator: ", "))), for EnvironmentFile=. Keep it private.\n"
            text += dotenv.map { SystemdUnit.environmentFileLine(name: $0.name, value: $0.value) }.joined()
            files.append(ExportFile(name: name, contents: text, isPrivate: true))
        }

        func serviceLines(instance: Bool) -> [String] {
            var lines = ["WorkingDirectory=" + SystemdUnit.plainValue(model.directory)]
            lines += env.map { "Environment=" + SystemdUnit.environmentAssignment(name: $0.name, value: $0.value) }
            if let envFile { lines.append("EnvironmentFile=" + SystemdUnit.plainValue(envFile)) }
            // %i is the instance specifier: the only place a template's index reaches the command.
            if instance { lines.append("Environment=SWIFTPROC_INSTANCE=%i") }
            return lines
        }

        // The target: starts every instance of the formation.
        var instances: [String] = []
        for g in model.groups where g.count > 0 {
            instances += (1...g.count).map { "\(prefix)-\(unitWord(g.name))@\($0).service" }
        }
        var t = comment + "\n[Unit]\nDescription=" + SystemdUnit.plainValue("\(model.appName) (all process groups)") + "\n"
        if !instances.isEmpty { t += "Wants=" + instances.joined(separator: " ") + "\n" }
        t += "\n[Install]\nWantedBy=\(options.userUnits ? "default.target" : "multi-user.target")\n"
        files.append(ExportFile(name: target, contents: t))

        // The release command: once, before any instance; a failure stops them from starting.
        if let release = model.releaseCommand {
            var u = comment + "\n[Unit]\nDescription=" + SystemdUnit.plainValue("\(model.appName) release command") + "\n"
            u += "PartOf=\(target)\n"
            if !options.userUnits { u += "Wants=network-online.target\nAfter=network-online.target\n" }
            u += "\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            u += serviceLines(instance: false).joined(separator: "\n") + "\n"
            let preamble = "RELEASE_COMMAND=1 FLY_PROCESS_GROUP=fly_app_release_command FLY_APP_NAME=\(shellQuoted(model.appName)); "
                + "export RELEASE_COMMAND FLY_PROCESS_GROUP FLY_APP_NAME; "
            u += "ExecStart=/bin/sh -c " + SystemdUnit.execArgument(preamble + shellCommand(release)) + "\n"
            u += "TimeoutStartSec=\(model.releaseTimeout)\n"
            u += "KillMode=control-group\nKillSignal=\(model.killSignal)\nTimeoutStopSec=\(model.killTimeout)\n"
            files.append(ExportFile(name: releaseUnit, contents: u))
        }

        for g in model.groups {
            let unit = "\(prefix)-\(unitWord(g.name))@.service"
            var u = comment + "\n[Unit]\nDescription=" + SystemdUnit.plainValue("\(model.appName) \(g.name).") + "%i\n"
            u += "PartOf=\(target)\n"
            if model.releaseCommand != nil { u += "Requires=\(releaseUnit)\nAfter=\(releaseUnit)\n" }
            if !options.userUnits { u += "Wants=network-online.target\nAfter=network-online.target\n" }
            switch g.restart {
            case .always:
                u += "StartLimitIntervalSec=0\n"
            case .onFailure(let retries):
                // Up to `retries` restarts in a row; swiftproc forgets failures after 10 s of running.
                u += "StartLimitIntervalSec=\((retries + 1) * 10)\nStartLimitBurst=\(retries + 1)\n"
            case .never:
                break
            }
            u += "\n[Service]\nType=simple\n"
            u += serviceLines(instance: true).joined(separator: "\n") + "\n"
            let preamble = "PORT=$((\(g.basePort) + SWIFTPROC_INSTANCE - 1)) PS=\(shellQuoted(g.name + "."))\"$SWIFTPROC_INSTANCE\" "
                + "FLY_PROCESS_GROUP=\(shellQuoted(g.name)) FLY_APP_NAME=\(shellQuoted(model.appName)); "
                + "export PORT PS FLY_PROCESS_GROUP FLY_APP_NAME; "
            u += "ExecStart=/bin/sh -c " + SystemdUnit.execArgument(preamble + shellCommand(g.command)) + "\n"
            switch g.restart {
            case .always: u += "Restart=always\nRestartSec=1\n"
            case .onFailure: u += "Restart=on-failure\nRestartSec=1\n"
            case .never: u += "Restart=no\n"
            }
            u += "KillMode=control-group\nKillSignal=\(model.killSignal)\nTimeoutStopSec=\(model.killTimeout)\nSendSIGKILL=yes\n"
            u += "SyslogIdentifier=" + SystemdUnit.plainValue(unitWord(g.name)) + ".%i\n"
            u += "\n[Install]\nWantedBy=\(target)\n"
            files.append(ExportFile(name: unit, contents: u))
        }
        if model.groups.contains(where: { !$0.checks.isEmpty }) {
            warnings.append("systemd has no health checks; the checks in \(model.sourcePath) are not exported")
        }
        return ExportResult(files: files, warnings: warnings)
    }
}
