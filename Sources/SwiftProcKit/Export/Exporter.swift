import Foundation

/// The formats `swiftproc export` writes.
public enum ExportFormat: String, CaseIterable, Sendable {
    case systemd, launchd, kubernetes, compose, procfile, fly

    /// Where files go when no directory is given, relative to the app directory: the files
    /// that belong next to the app (compose.yaml, Procfile, fly.toml) go there, unit files and
    /// manifests into a folder of their own.
    public var defaultSubdirectory: String? {
        switch self {
        case .systemd, .launchd, .kubernetes: return rawValue
        case .compose, .procfile, .fly: return nil
        }
    }
}

/// One file an export writes.
public struct ExportFile: Sendable, Equatable {
    /// The file name, relative to the output directory.
    public var name: String
    public var contents: String
    /// Holds `.env` values: written with mode 0600.
    public var isPrivate: Bool

    public init(name: String, contents: String, isPrivate: Bool = false) {
        self.name = name
        self.contents = contents
        self.isPrivate = isPrivate
    }
}

/// What an export produced: files, and warnings for stderr (skipped groups, lossy mappings).
public struct ExportResult: Sendable, Equatable {
    public var files: [ExportFile]
    public var warnings: [String]

    public init(files: [ExportFile], warnings: [String] = []) {
        self.files = files
        self.warnings = warnings
    }
}

/// Settings that are not part of the app: they come from the command line.
public struct ExportOptions: Sendable, Equatable {
    /// The absolute output directory. systemd units name files in it by absolute path.
    public var outputDirectory: String
    /// systemd: user units (`systemctl --user`) instead of system units.
    public var userUnits: Bool

    public init(outputDirectory: String, userUnits: Bool = false) {
        self.outputDirectory = outputDirectory
        self.userUnits = userUnits
    }
}

/// An export that cannot be done as asked; the message is for the user.
public struct ExportError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Turns an ``ExportModel`` into files. Pure: the same model and options give the same bytes.
public enum Exporter {
    public static func render(_ format: ExportFormat, _ model: ExportModel, options: ExportOptions) throws(ExportError) -> ExportResult {
        var result: ExportResult
        switch format {
        case .systemd: result = SystemdExport.render(model, options: options)
        case .launchd: result = LaunchdExport.render(model)
        case .kubernetes: result = try KubernetesExport.render(model)
        case .compose: result = ComposeExport.render(model, options: options)
        case .procfile: result = ProcfileExport.render(model)
        case .fly: result = try FlyExport.render(model)
        }
        let skipped = model.skippedGroups.map {
            "group \"\($0)\" has no command, so it was left out (add it to [processes] or a Procfile)"
        }
        result.warnings = skipped + result.warnings
        return result
    }

    /// Writes the files into `directory` (created if needed). Refuses, before writing anything,
    /// when a file exists and `force` is false. Returns the paths written.
    public static func write(_ result: ExportResult, to directory: String, force: Bool) throws -> [String] {
        let dir = URL(fileURLWithPath: directory, isDirectory: true)
        let paths = result.files.map { dir.appendingPathComponent($0.name).path }
        if !force {
            let existing = paths.filter { FileManager.default.fileExists(atPath: $0) }
            if !existing.isEmpty {
                let list = existing.map { "  \($0)" }.joined(separator: "\n")
                throw ExportError("\(existing.count == 1 ? "this file exists" : "these files exist") and would be overwritten:\n\(list)\n"
                                  + "pass --force to overwrite \(existing.count == 1 ? "it" : "them")")
            }
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (file, path) in zip(result.files, paths) {
            let data = Data(file.contents.utf8)
            // Created private from the start, so a secret is never readable by others even briefly.
            let mode: mode_t = file.isPrivate ? 0o600 : 0o644
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
            guard fd >= 0 else { throw ExportError("cannot write \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            if file.isPrivate { fchmod(fd, 0o600) }
            if let message = writeAll(fd, data) { throw ExportError("cannot write \(path): \(message)") }
        }
        return paths
    }

    /// The header every file carries (in the format's comment syntax): what made it and from what.
    static func header(_ format: ExportFormat, _ model: ExportModel) -> [String] {
        let source = oneLine(model.sourcePath)
        return ["Generated by `swiftproc export \(format.rawValue)` from \(source).",
                "Edit \(source) and export again rather than editing this file."]
    }
}

/// Writes all of `data`; an error message on failure.
private func writeAll(_ fd: Int32, _ data: Data) -> String? {
    var offset = 0
    while offset < data.count {
        let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + offset, data.count - offset) }
        if n < 0 {
            if errno == EINTR { continue }
            return String(cString: strerror(errno))
        }
        offset += n
    }
    return nil
}

/// `text` on one line (for comments): control characters become spaces.
func oneLine(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
}

/// POSIX shell quoting: one word, taken literally by `sh`.
public func shellQuoted(_ text: String) -> String {
    if !text.isEmpty, text.unicodeScalars.allSatisfy({ $0.isASCIILetter || ("0"..."9").contains($0) || "_./-=:,+@%".unicodeScalars.contains($0) }) {
        return text
    }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// A name made of lowercase letters, digits and `-`, starting and ending with an alphanumeric
/// (an RFC 1123 label, what Kubernetes wants for names), at most `limit` characters.
func dnsLabel(_ text: String, limit: Int = 63) -> String {
    var out = ""
    for s in text.lowercased().unicodeScalars {
        if s.isASCIILetter || ("0"..."9").contains(s) { out.unicodeScalars.append(s) } else if !out.hasSuffix("-") { out += "-" }
    }
    out = String(out.prefix(limit))
    while out.hasSuffix("-") { out.removeLast() }
    while out.hasPrefix("-") { out.removeFirst() }
    return out.isEmpty ? "app" : out
}

/// A unit-name-safe word: letters, digits, `_`, `.` and `-`.
func unitWord(_ text: String) -> String {
    var out = ""
    for s in text.unicodeScalars {
        if s.isASCIILetter || ("0"..."9").contains(s) || "_.-".unicodeScalars.contains(s) { out.unicodeScalars.append(s) } else { out += "-" }
    }
    return out.isEmpty ? "app" : out
}

/// The environment variable names every platform accepts: a letter or `_`, then letters,
/// digits, `_`.
func isPortableEnvName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" else { return false }
    return name.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "_" }
}

/// The command as `start` runs it: `exec`-prefixed when it is a simple command.
func shellCommand(_ command: String) -> String { ShellCommand.execPrefixed(command) }

/// Seconds as a Go-style duration (`5s`, `1m30s`), for Compose.
func goDuration(_ seconds: Double) -> String {
    let ms = Int((seconds * 1000).rounded())
    if ms % 1000 != 0 { return "\(ms)ms" }
    let s = ms / 1000
    if s >= 60, s % 60 == 0 { return "\(s / 60)m" }
    if s >= 60 { return "\(s / 60)m\(s % 60)s" }
    return "\(s)s"
}

/// Whole seconds, at least `minimum`, for fields that only take integers.
func wholeSeconds(_ seconds: Double, minimum: Int = 1) -> Int {
    max(minimum, Int(seconds.rounded(.up)))
}
