import Foundation

/// Where the control socket lives.
public enum ControlSocket {
    /// The socket's place inside the app directory.
    public static let defaultRelativePath = ".swiftproc/swiftproc.sock"
    /// The environment variable that overrides the default (after `--socket`).
    public static let environmentVariable = "SWIFTPROC_SOCKET"

    /// `--socket PATH` if given, else `$SWIFTPROC_SOCKET` if set and non-empty, else
    /// `<appDirectory>/.swiftproc/swiftproc.sock`. Relative overrides are kept as typed
    /// (relative to the current directory, like any other path argument).
    public static func path(appDirectory: String, override: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let override, !override.isEmpty { return override }
        if let fromEnvironment = environment[environmentVariable], !fromEnvironment.isEmpty { return fromEnvironment }
        if appDirectory.isEmpty { return defaultRelativePath }
        return appDirectory.hasSuffix("/") ? appDirectory + defaultRelativePath : appDirectory + "/" + defaultRelativePath
    }

    /// The longest socket path the platform allows, in bytes (107 on Linux, 103 on macOS).
    public static var maxPathBytes: Int { Sockets.pathCapacity - 1 }

    /// `path` as a person would type it from `directory`: relative when inside it
    /// (`.swiftproc/swiftproc.sock`), as given otherwise. For messages only.
    public static func display(_ path: String, from directory: String = FileManager.default.currentDirectoryPath) -> String {
        guard path.hasPrefix("/") else { return path }
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        if path.hasPrefix(base), path.count > base.count { return String(path.dropFirst(base.count)) }
        return path
    }
}
