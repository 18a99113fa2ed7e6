import TOML

/// Something in a configuration that swiftproc reads past: an unknown key, a legacy form it
/// converted, a value it cannot use locally, a group with no command.
///
/// flyctl deploys files with all of these, so refusing them would break the promise that a
/// fly.toml runs unmodified; but the user should hear about each once. `check` prints them and
/// exits 0 (`--strict` makes them errors), `start` prints them before it runs.
public struct ConfigWarning: Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// Where in which file, when the warning is about a place in a file.
    public var position: FilePosition?

    public init(_ message: String, at position: FilePosition? = nil) {
        self.message = message
        self.position = position
    }

    /// `fly.toml:12:3: warning: message`.
    public var description: String {
        if let p = position { return "\(p): warning: \(message)" }
        return "warning: \(message)"
    }

    /// ``description`` plus the source line and a caret, like a ``ConfigError``.
    public var rendered: String {
        guard let p = position else { return description }
        return TOMLError("warning: " + message, at: SourceLocation(line: p.line, column: p.column), sourceLine: p.sourceLine)
            .rendered(path: p.path)
    }

    /// `warnings` in file order — by file, line and column, those without a place last — as a
    /// compiler lists them; equal places keep their order.
    public static func inFileOrder(_ warnings: [ConfigWarning]) -> [ConfigWarning] {
        warnings.enumerated().sorted { a, b in
            let pa = a.element.position.map { ($0.path, $0.line, $0.column) } ?? ("\u{10FFFF}", Int.max, Int.max)
            let pb = b.element.position.map { ($0.path, $0.line, $0.column) } ?? ("\u{10FFFF}", Int.max, Int.max)
            return pa != pb ? pa < pb : a.offset < b.offset
        }.map(\.element)
    }
}
