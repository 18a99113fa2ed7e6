import Foundation
import TOML

/// Finds and reads an app's configuration the way a developer expects from foreman and flyctl.
///
/// Discovery:
/// - `-c/--config PATH`: that fly.toml. Its processes come from `[processes]`; if it has none
///   and a `Procfile` sits next to it, the Procfile's processes are used (everything else still
///   comes from fly.toml). If there is neither, the single group `app` has no command:
///   `check` shows the plan and ``AppConfig/requireCommands()`` explains what to add.
/// - `-f/--procfile PATH` alone: that Procfile, with Fly's defaults for everything else.
/// - both: fly.toml's settings with the named Procfile's processes — naming a Procfile is an
///   explicit request to run it.
/// - neither: `fly.toml` in `directory` if it exists (with the same Procfile fallback when it
///   has no processes); else `Procfile`; else ``ConfigError/noConfigFound(directory:lookedFor:)``.
///   When fly.toml has processes and a Procfile also exists, fly.toml wins silently: the
///   Procfile is usually there for Heroku-style tooling and says nothing new.
///
/// The app directory is the config file's directory, as an absolute path, so commands run
/// where the file is no matter where swiftproc was started.
///
/// Env files: `envFiles == nil` reads `.env` in the app directory if it exists; a list (from
/// `-e a.env,b.env`) is read in order, later files winning, each resolved against `directory`
/// (where the user typed it), and a missing one is an error.
public enum ConfigLoader {
    /// The file names discovery looks for, in order.
    public static let flyTomlName = "fly.toml"
    public static let procfileName = "Procfile"
    public static let defaultEnvFile = ".env"

    /// Loads the configuration. `directory` is where the command was run (normally the current
    /// directory); relative paths are resolved against it.
    public static func load(configPath: String? = nil, procfilePath: String? = nil, envFiles: [String]? = nil,
                            in directory: String) throws(ConfigError) -> AppConfig {
        var config: AppConfig
        switch (configPath, procfilePath) {
        case (let flyPath?, let procPath):
            config = try loadFlyToml(displayPath: flyPath, fullPath: resolve(flyPath, against: directory),
                                     explicitProcfile: procPath.map { ($0, resolve($0, against: directory)) })
        case (nil, let procPath?):
            config = try loadProcfileOnly(displayPath: procPath, fullPath: resolve(procPath, against: directory))
        case (nil, nil):
            let flyFull = resolve(flyTomlName, against: directory)
            let procFull = resolve(procfileName, against: directory)
            if FileManager.default.fileExists(atPath: flyFull) {
                config = try loadFlyToml(displayPath: shown(flyTomlName, in: directory), fullPath: flyFull, explicitProcfile: nil)
            } else if FileManager.default.fileExists(atPath: procFull) {
                config = try loadProcfileOnly(displayPath: shown(procfileName, in: directory), fullPath: procFull)
            } else {
                throw .noConfigFound(directory: directory, lookedFor: [flyTomlName, procfileName])
            }
        }

        if let envFiles {
            config.dotenv = try EnvFile.load(envFiles, relativeTo: directory, required: true)
            config.envFiles = envFiles
        } else {
            let full = resolve(defaultEnvFile, against: config.directory)
            let display = siblingPath(of: config.configPath, named: defaultEnvFile)
            if FileManager.default.fileExists(atPath: full) {
                let text = try readText(atPath: full, displayPath: display)
                config.dotenv = try EnvFile.parse(text, path: display)
                config.envFiles = [display]
            }
        }
        return config
    }

    /// Decodes fly.toml text, keeping a syntax error's location and the file's path.
    public static func decodeFlyToml(_ text: String, path: String) throws(ConfigError) -> TOMLTable {
        try parseTOMLDocument(text, path: path)
    }

    /// Builds an ``AppConfig`` from fly.toml text without touching the file system: `siblings`
    /// stands in for the files next to it (a Procfile, a Dockerfile), by relative path.
    public static func parseFlyToml(_ text: String, path: String, directory: String,
                                    procfile: Procfile? = nil, procfilePath: String? = nil,
                                    siblings: [String: String] = [:]) throws(ConfigError) -> AppConfig {
        let root = try decodeFlyToml(text, path: path)
        return try AppConfig(flyToml: root, path: path, directory: directory, sourceText: text,
                             procfile: procfile, procfilePath: procfilePath, readFile: { siblings[$0] })
    }

    /// Whether a decoded fly.toml defines any process group.
    public static func hasProcesses(_ root: TOMLTable) -> Bool {
        switch root["processes"] {
        case .table(let t)?: return !t.isEmpty
        case .array(let a)?: return !a.isEmpty
        default: return false
        }
    }

    private static func loadFlyToml(displayPath: String, fullPath: String,
                                    explicitProcfile: (display: String, full: String)?) throws(ConfigError) -> AppConfig {
        guard FileManager.default.fileExists(atPath: fullPath) else {
            throw .fileNotFound(displayPath, role: "config file")
        }
        let text = try readText(atPath: fullPath, displayPath: displayPath)
        let root = try decodeFlyToml(text, path: displayPath)
        let appDirectory = directoryOf(fullPath)

        var procfile: Procfile?
        var procfileDisplay: String?
        if let explicit = explicitProcfile {
            guard FileManager.default.fileExists(atPath: explicit.full) else {
                throw .fileNotFound(explicit.display, role: "Procfile")
            }
            procfile = try Procfile.parse(readText(atPath: explicit.full, displayPath: explicit.display), path: explicit.display)
            procfileDisplay = explicit.display
        }
        return try AppConfig(flyToml: root, path: displayPath, directory: appDirectory, sourceText: text,
                             procfile: procfile, procfilePath: procfileDisplay,
                             readFile: { relative in siblingText(relative, in: appDirectory) })
    }

    /// The text of a file next to fly.toml (a Procfile, a Dockerfile), or nil when there is
    /// no readable file there.
    private static func siblingText(_ relative: String, in directory: String) -> String? {
        let full = resolve(relative, against: directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue,
              let data = FileManager.default.contents(atPath: full) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    private static func loadProcfileOnly(displayPath: String, fullPath: String) throws(ConfigError) -> AppConfig {
        guard FileManager.default.fileExists(atPath: fullPath) else {
            throw .fileNotFound(displayPath, role: "Procfile")
        }
        let procfile = try Procfile.parse(readText(atPath: fullPath, displayPath: displayPath), path: displayPath)
        return AppConfig(procfile: procfile, path: displayPath, directory: directoryOf(fullPath))
    }

    /// The absolute directory holding `path`.
    private static func directoryOf(_ path: String) -> String {
        URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL.path
    }

    /// How to show a discovered file: its bare name when `directory` is the current directory.
    private static func shown(_ name: String, in directory: String) -> String {
        if directory.isEmpty || directory == "." { return name }
        if URL(fileURLWithPath: directory).standardizedFileURL.path
            == URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL.path {
            return name
        }
        return resolve(name, against: directory)
    }

}
