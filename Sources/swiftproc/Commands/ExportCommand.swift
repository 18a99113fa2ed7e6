import Foundation
import SwiftProcKit

/// `swiftproc export FORMAT [DIR]`: the app, as `start` would run it, for another runner.
enum ExportCommand: Command {
    static let name = "export"
    static let summary = "Write the app for systemd, launchd, Kubernetes, Compose, a Procfile or a fly.toml."
    static let usage = "FORMAT [DIR] [options]"
    static let discussion = """
    FORMAT is one of: \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", ")).
    The export uses what `start` would run: the groups and commands, the formation (-m), ports
    (-p), [env] and the .env files (-e), restart policy, kill_signal/kill_timeout, checks and the
    release command. A group without a command is left out, with a warning. Existing files are
    not overwritten unless --force is given. The same input always gives the same bytes.

    DIR defaults to ./systemd, ./launchd or ./kubernetes in the app directory; compose.yaml,
    Procfile and fly.toml go into the app directory itself.

    EXAMPLES:
      swiftproc export systemd -m app=2,worker=1     # APP.target + APP-GROUP@.service templates
      swiftproc export systemd --user ~/.config/systemd/user
      swiftproc export launchd ~/Library/LaunchAgents   # one plist per instance
      swiftproc export kubernetes --image registry.example.com/app:v1   # Deployments, Services, Job
      swiftproc export compose -m worker=3           # compose.yaml with deploy.replicas
      swiftproc export procfile                      # fly.toml → Procfile (with release:)
      swiftproc export fly -f Procfile               # Procfile → fly.toml for fly launch / fly deploy
    """
    static let options: [Option] = [
        CommonOptions.config, CommonOptions.procfile, AppOptions.formation, AppOptions.env, AppOptions.port,
        .flag("force", nil, "Overwrite files that exist."),
        .flag("user", nil, "systemd: user units (systemctl --user) instead of system units."),
        .value("image", nil, "IMAGE", "kubernetes, compose: the container image (default: fly.toml's [build] image)."),
    ]

    static func run(_ arguments: ParsedArguments) async throws -> Int32 {
        guard let formatName = arguments.positionals.first else {
            throw UsageError(message: "which format? one of \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", "))",
                             command: name)
        }
        guard let format = ExportFormat(rawValue: formatName.lowercased()) else {
            let names = ExportFormat.allCases.map(\.rawValue)
            let hint = closestMatch(to: formatName.lowercased(), in: names).map { " (did you mean \($0)?)" } ?? ""
            throw UsageError(message: "unknown format \"\(formatName)\"\(hint); formats: \(names.joined(separator: ", "))",
                             command: name)
        }
        guard arguments.positionals.count <= 2 else {
            throw UsageError(message: "too many arguments: \(arguments.positionals.dropFirst(2).joined(separator: " "))", command: name)
        }
        if arguments.has("user") && format != .systemd {
            throw UsageError(message: "--user is for systemd", command: name)
        }
        if let image = arguments.value("image"), image.isEmpty || image.contains(where: \.isWhitespace) {
            throw UsageError(message: "--image needs an image reference like registry.example.com/app:v1", command: name)
        }
        let config = try AppOptions.loadConfig(arguments)
        var appArguments = arguments
        appArguments.positionals = []  // FORMAT and DIR are not group names
        // The one plan `start` runs, without the local proxy (there is none where exports run).
        var options = AppOptions.runOptions(appArguments)
        options.proxy = false
        let plan = try SupervisorPlan(config: config, options: options)
        let formation = Formation(config.groupNames.map { name in
            Formation.Entry(group: name, count: plan.groups.first { $0.name == name }?.count ?? 0)
        })
        let ports = try PortPlan(config: config, base: options.portBase, environment: options.inheritedEnvironment)
        let model = ExportModel(config: config, formation: formation, ports: ports, image: arguments.value("image"))

        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        let directory: URL
        if arguments.positionals.count == 2 {
            directory = URL(fileURLWithPath: NSString(string: arguments.positionals[1]).expandingTildeInPath, relativeTo: cwd)
        } else if let sub = format.defaultSubdirectory {
            directory = URL(fileURLWithPath: model.directory, isDirectory: true).appendingPathComponent(sub)
        } else {
            directory = URL(fileURLWithPath: model.directory, isDirectory: true)
        }
        let outputDirectory = directory.standardizedFileURL.path
        let result: ExportResult
        do {
            result = try Exporter.render(format, model, options: ExportOptions(outputDirectory: outputDirectory,
                                                                                userUnits: arguments.has("user")))
        } catch {
            throw Failure("swiftproc export: \(error)")
        }
        if model.groups.isEmpty {
            throw Failure("swiftproc export: no group has a command, so there is nothing to export")
        }
        // Never replace the file the app was read from (export procfile -f Procfile, into its own directory).
        let sources = [config.configPath, config.procfilePath].compactMap { $0 }.map {
            URL(fileURLWithPath: $0, relativeTo: cwd).standardizedFileURL.path
        }
        for file in result.files where sources.contains(URL(fileURLWithPath: outputDirectory).appendingPathComponent(file.name).path) {
            throw Failure("swiftproc export: that would overwrite \(file.name), which the app was read from; give another DIR")
        }
        for w in result.warnings { printError("swiftproc export: warning: \(w)") }
        let written: [String]
        do {
            written = try Exporter.write(result, to: outputDirectory, force: arguments.has("force"))
        } catch let error as ExportError {
            throw Failure("swiftproc export: \(error.description)")
        }
        for path in written { print("wrote \(relative(path, to: cwd.path))") }
        return 0
    }

    /// `path` relative to the current directory when it is inside it.
    private static func relative(_ path: String, to cwd: String) -> String {
        let base = URL(fileURLWithPath: cwd).standardizedFileURL.path
        let prefix = base.hasSuffix("/") ? base : base + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}
