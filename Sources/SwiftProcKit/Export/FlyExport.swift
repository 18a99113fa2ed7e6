/// `swiftproc export fly`: a Procfile (and its `release:`) as a fly.toml for `fly launch` /
/// `fly deploy`: `[processes]`, `[deploy] release_command`, and for a `web` group an
/// `[http_service]` on 8080 with `PORT = "8080"` in `[env]` (Fly sets no `PORT`).
///
/// Fly runs a command without a shell, while a Procfile's lines are shell commands; a command
/// that needs the shell (variables, quotes, pipes, lists…) is written as `sh -c '…'`, which
/// means the same thing on Fly and under `swiftproc start`.
enum FlyExport {
    static let webPort = 8080

    static func render(_ model: ExportModel) throws(ExportError) -> ExportResult {
        guard model.sourceKind == .procfile else {
            throw ExportError("export fly turns a Procfile into a fly.toml, and \(model.sourcePath) is already a fly.toml "
                              + "(pass the Procfile with -f)")
        }
        var warnings: [String] = []
        var text = Exporter.header(.fly, model).map { "# " + $0 + "\n" }.joined()
        text += "# Next: fly launch --no-deploy (keep this configuration)"
        text += model.dotenv.isEmpty ? ", then fly deploy.\n" : ", fly secrets import < .env, then fly deploy.\n"
        text += "app = \(tomlString(dnsLabel(model.appName)))\n"
        if let release = model.releaseCommand {
            text += "\n[deploy]\n  release_command = \(tomlString(flyCommand(release)))\n"
        }
        // Fly's group names are lowercase letters, digits, `-` and `_`; a Procfile's may be more.
        var groups: [(name: String, command: String)] = []
        for g in model.groups {
            let name = flyGroupName(g.name)
            if groups.contains(where: { $0.name == name }) {
                warnings.append("\(g.name): becomes \"\(name)\" in fly.toml, which another group already is; left out")
                continue
            }
            if name != g.name { warnings.append("\(g.name): renamed \"\(name)\", as Fly's group names are lowercase letters, digits, - and _") }
            groups.append((name, g.command))
        }
        let hasWeb = groups.contains { $0.name == "web" }
        if hasWeb {
            text += "\n[env]\n  PORT = \"\(webPort)\"\n"
        }
        text += "\n[processes]\n"
        for g in groups {
            text += "  \(tomlKey(g.name)) = \(tomlString(flyCommand(g.command)))\n"
        }
        if hasWeb {
            text += """

            [http_service]
              internal_port = \(webPort)
              force_https = true
              auto_stop_machines = "stop"
              auto_start_machines = true
              min_machines_running = 0
              processes = ["web"]

            """
        } else {
            warnings.append("no web group, so no [http_service]: add one if a group serves HTTP")
        }
        return ExportResult(files: [ExportFile(name: "fly.toml", contents: text)], warnings: warnings)
    }

    /// The command as Fly should run it: as is when it is plain words, else through `sh -c`.
    static func flyCommand(_ command: String) -> String {
        let trimmed = command.trimmingCharacters(in: .whitespaces)
        let plain = trimmed.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || "_./=:,+@%- ".unicodeScalars.contains($0) }
        return plain ? trimmed : "sh -c " + shellQuoted(trimmed)
    }
}

/// `name` as a Fly process group name: lowercase, other characters as `-`.
func flyGroupName(_ name: String) -> String {
    var out = ""
    for s in name.lowercased().unicodeScalars {
        if ("a"..."z").contains(s) || ("0"..."9").contains(s) || s == "_" || s == "-" { out.unicodeScalars.append(s) } else { out += "-" }
    }
    return out.isEmpty ? "app" : out
}

/// A TOML basic string.
func tomlString(_ text: String) -> String {
    var out = "\""
    for s in text.unicodeScalars {
        switch s {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if s.value < 0x20 || s.value == 0x7F {
                let h = String(s.value, radix: 16, uppercase: true)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            } else {
                out.unicodeScalars.append(s)
            }
        }
    }
    return out + "\""
}

/// A TOML key: bare when it can be, else quoted.
func tomlKey(_ key: String) -> String {
    let bare = !key.isEmpty && key.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    return bare ? key : tomlString(key)
}
