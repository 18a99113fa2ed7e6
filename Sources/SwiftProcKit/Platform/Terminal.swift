#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The user's terminal, for `attach` (raw mode, window size) and `run` (who owns the keyboard).
public enum Terminal {
    /// Puts the terminal on `fd` in raw mode — every key as it is typed, no echo, no signal
    /// characters — and returns the settings to restore, or nil when `fd` is not a terminal.
    public static func enterRawMode(_ fd: Int32) -> termios? {
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { return nil }
        var raw = saved
        cfmakeraw(&raw)
        _ = tcsetattr(fd, TCSAFLUSH, &raw)
        return saved
    }

    public static func restore(_ fd: Int32, _ settings: termios) {
        var s = settings
        _ = tcsetattr(fd, TCSAFLUSH, &s)
    }

    /// Rows and columns of the terminal on `fd`.
    public static func windowSize(_ fd: Int32) -> (rows: UInt16, columns: UInt16)? {
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 else { return nil }
        return (size.ws_row, size.ws_col)
    }

    /// The process group the terminal on `fd` delivers keys and Ctrl-C to, if it is our
    /// controlling terminal.
    public static func foregroundGroup(_ fd: Int32) -> pid_t? {
        let group = tcgetpgrp(fd)
        return group > 0 ? group : nil
    }

    /// Hands the terminal on `fd` to process group `group` (SIGTTOU, which a background
    /// caller would get, is ignored meanwhile).
    public static func setForegroundGroup(_ fd: Int32, _ group: pid_t) {
        let previous = signal(SIGTTOU, SIG_IGN)
        _ = tcsetpgrp(fd, group)
        _ = signal(SIGTTOU, previous)
    }
}
