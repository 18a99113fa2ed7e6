import Foundation
import SwiftProcKit

/// How `start` and `check` turn `-c/-f/-e/-m/-p` and group arguments into a config, a
/// formation and ports — one place, so `check` prints exactly what `start` would run.
enum AppOptions {
    static let formation = Option.value("formation", "m", "FORMATION",
                                        "Instances per group: app=3,worker=2 (or \"app=3 worker=2\", all=2).")
    static let env = Option.value("env", "e", "FILES", "Comma-separated .env files to load, later ones winning (default: .env).")
    static let port = Option.value("port", "p", "BASE", "Base port for $PORT (default: 5000, or $PORT).")

    static func loadConfig(_ arguments: ParsedArguments) throws -> AppConfig {
        let envFiles = arguments.all("env").flatMap { $0.split(separator: ",").map(String.init) }
        return try ConfigLoader.load(configPath: arguments.value("config"), procfilePath: arguments.value("procfile"),
                                     envFiles: envFiles.isEmpty ? nil : envFiles,
                                     in: FileManager.default.currentDirectoryPath)
    }

    /// `-m worker=3` changes only worker: groups it does not name keep one instance, as
    /// `fly scale count worker=3` leaves app alone. Naming groups as arguments runs only those.
    static func formation(_ config: AppConfig, _ arguments: ParsedArguments, command: String) throws -> Formation {
        let names = config.groupNames
        for g in arguments.positionals where !names.contains(g) {
            throw ConfigError.unknownProcess(g, suggestions: closestMatch(to: g, in: names).map { [$0] } ?? [],
                                             known: names, at: nil)
        }
        let words = arguments.all("formation")
        var formation = try Formation.parse(words, known: names)
        let mentioned = Set(words.flatMap { $0.split(whereSeparator: { $0 == "," || $0 == " " }) }
            .compactMap { $0.split(separator: "=").first.map(String.init) })
        if !mentioned.contains("all") {
            for g in names where !mentioned.contains(g) { formation[g] = 1 }
        }
        if !arguments.positionals.isEmpty {
            for g in names where !arguments.positionals.contains(g) { formation[g] = 0 }
        }
        return formation
    }

    static func ports(_ config: AppConfig, _ arguments: ParsedArguments, command: String) throws -> PortPlan {
        guard let text = arguments.value("port") ?? ProcessInfo.processInfo.environment["PORT"] else {
            return PortPlan(groups: config.groupNames)
        }
        guard let base = Int(text), (1...65535).contains(base) else {
            throw UsageError(message: "--port needs a port number, not \"\(text)\"", command: command)
        }
        return PortPlan(base: base, groups: config.groupNames)
    }
}
