/// Known reasons a crash loop happens locally that never happen on Fly, recognised in the
/// instance's last lines, each with the fix — so "app.2 exited with status 1 — restarting"
/// does not repeat with no clue.
///
/// On Fly every machine has its own file system and its own `internal_port`; locally the
/// instances of a group share the app directory and the machine's ports, so two classic
/// failures appear only with `app=2`: a pid file the first instance already wrote, and a port
/// the command hard-codes.
public enum CrashHint: String, Sendable, CaseIterable {
    case pidFileExists
    case addressInUse

    /// The cause `lines` (an instance's last output) show, if any.
    public static func cause(in lines: [String]) -> CrashHint? {
        for line in lines.reversed() {
            let text = line.lowercased()
            if text.contains("server is already running")
                || (text.contains("already running") && (text.contains("pid") || text.contains(".pid"))) {
                return .pidFileExists
            }
            if text.contains("address already in use") || text.contains("eaddrinuse") {
                return .addressInUse
            }
        }
        return nil
    }

    /// One line with the fix, for `instance` (`app.2`).
    public func advice(for instance: String) -> String {
        switch self {
        case .pidFileExists:
            return "hint: \(instance) found a pid file another instance wrote; each instance needs its own. swiftproc sets "
                + "PIDFILE=.swiftproc/pids/\(instance).pid, which `rails server` (Rails 6.1+) and the config/puma.rb Rails "
                + "generates honour; with older Rails, or a pid path in your own config, pass -P \"$PIDFILE\" to "
                + "`rails server` or use ENV[\"PIDFILE\"] in config/puma.rb"
        case .addressInUse:
            return "hint: \(instance) could not listen: its address is in use. Each instance gets its own $PORT "
                + "(and the proxy holds internal_port); listen on $PORT instead of a fixed port, "
                + "e.g. `-p ${PORT:-3000}` or `--bind 0.0.0.0:${PORT:-8000}`"
        }
    }
}
