import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why `.swiftproc` (or a file in it) cannot be trusted or used. One line for a person.
public struct StateDirectoryError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The app's private state directory, `.swiftproc`: the lock, the control socket, the
/// `children` record and the daemon's log live there.
///
/// Everything in it is acted on — a recorded process group is killed, a socket is trusted, a log
/// is appended to — so it must be ours alone. ``prepare(appDirectory:)`` creates it 0700, or
/// accepts an existing one only if it is a real directory (never a symlink) owned by the
/// effective user with no group or other access; anything else is refused with nothing written.
/// Files inside are opened with `O_NOFOLLOW`, so a planted symlink is an error, not a redirect.
public struct StateDirectory: Sendable {
    public static let name = ".swiftproc"
    public let path: String

    public init(trustedPath path: String) {
        self.path = path
    }

    /// `<appDirectory>/.swiftproc`, created (0700) when missing and checked either way.
    public static func prepare(appDirectory: String) throws(StateDirectoryError) -> StateDirectory {
        let path = appDirectory.hasSuffix("/") ? appDirectory + name : appDirectory + "/" + name
        try prepare(path: path)
        return StateDirectory(trustedPath: path)
    }

    /// Creates `path` (0700) if it does not exist, then checks it. Never follows a symlink.
    public static func prepare(path: String) throws(StateDirectoryError) {
        var info = stat()
        if lstat(path, &info) != 0 {
            guard errno == ENOENT else { throw StateDirectoryError("cannot inspect \(path): \(Platform.errorText(errno))") }
            if mkdir(path, 0o700) != 0, errno != EEXIST {
                throw StateDirectoryError("cannot create \(path): \(Platform.errorText(errno))")
            }
        }
        try check(path: path)
    }

    /// Refuses `path` unless it is a directory (not a symlink), owned by us, with mode `0700` or narrower.
    public static func check(path: String) throws(StateDirectoryError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw StateDirectoryError("cannot inspect \(path): \(Platform.errorText(errno))") }
        let refuse = "refusing to use \(path): "
        let fix = "; remove it (or fix it) and try again"
        if (info.st_mode & S_IFMT) == S_IFLNK {
            throw StateDirectoryError(refuse + "it is a symbolic link, and swiftproc never follows one there" + fix)
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw StateDirectoryError(refuse + "it is not a directory" + fix) }
        guard info.st_uid == geteuid() else {
            throw StateDirectoryError(refuse + "it belongs to uid \(info.st_uid), not to you (uid \(geteuid()))" + fix)
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw StateDirectoryError(refuse + "its mode \(String(mode, radix: 8)) gives other users access (it must be 700)" + fix)
        }
    }

    /// `path/name`.
    public func file(_ name: String) -> String { path + "/" + name }

    /// Opens `name` inside the directory without following a symlink (`O_NOFOLLOW | O_CLOEXEC` are added).
    public func open(_ name: String, flags: Int32, mode: mode_t = 0o600) throws(StateDirectoryError) -> Int32 {
        try Self.openNoFollow(file(name), flags: flags, mode: mode)
    }

    /// `open(2)` with `O_NOFOLLOW | O_CLOEXEC`; a symlink in the last component is a clear error.
    public static func openNoFollow(_ path: String, flags: Int32, mode: mode_t = 0o600) throws(StateDirectoryError) -> Int32 {
        let fd = Glibc_or_Darwin_open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP { throw StateDirectoryError("refusing to open \(path): it is a symbolic link") }
            throw StateDirectoryError("cannot open \(path): \(Platform.errorText(code))")
        }
        return fd
    }

    /// Takes the directory's exclusive lock (`flock` on `lock`, which holds the owner's pid).
    /// Held until the process exits; a second supervisor gets "already running (pid N)" at once.
    public func lock() throws(StateDirectoryError) -> AppLock {
        let fd = try open("lock", flags: O_RDWR | O_CREAT)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            let owner = Self.readPID(fd)
            Glibc_or_Darwin_close(fd)
            if code == EWOULDBLOCK || code == EAGAIN {
                let who = owner.map { "pid \($0)" } ?? "another process"
                throw StateDirectoryError("swiftproc is already running in this directory (\(who)); use `swiftproc stop` first")
            }
            throw StateDirectoryError("cannot lock \(file("lock")): \(Platform.errorText(code))")
        }
        _ = ftruncate(fd, 0)
        Platform.writeAll(fd, Array("\(getpid())\n".utf8))
        return AppLock(fd: fd)
    }

    /// The pid in the lock file of a running supervisor, or nil when nobody holds the lock
    /// (checked by trying it: a stale file from a crashed run names nobody).
    public func runningOwner() -> pid_t? {
        guard let fd = try? open("lock", flags: O_RDONLY) else { return nil }
        defer { Glibc_or_Darwin_close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            _ = flock(fd, LOCK_UN)
            return nil
        }
        return Self.readPID(fd) ?? -1
    }

    private static func readPID(_ fd: Int32) -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        return pid_t(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// An exclusive `flock` on `.swiftproc/lock`, held while this value lives (and, in practice,
/// for the life of the supervisor: the kernel drops it when the process dies, however it dies).
public final class AppLock: Sendable {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    deinit { Glibc_or_Darwin_close(fd) }
}

extension Platform {
    /// `strerror` plus the symbolic name for the errors a user can act on: "Argument list too long (E2BIG)".
    public static func errorText(_ code: Int32) -> String {
        let names: [Int32: String] = [E2BIG: "E2BIG", EAGAIN: "EAGAIN", ENOENT: "ENOENT", EACCES: "EACCES",
                                       EPERM: "EPERM", EMFILE: "EMFILE", ENFILE: "ENFILE", ENOMEM: "ENOMEM",
                                       ENOEXEC: "ENOEXEC", ENOTDIR: "ENOTDIR", ELOOP: "ELOOP", ENOSPC: "ENOSPC",
                                       EEXIST: "EEXIST", ETXTBSY: "ETXTBSY"]
        let text = String(cString: strerror(code))
        return names[code].map { "\(text) (\($0))" } ?? text
    }
}

@inline(__always) private func Glibc_or_Darwin_open(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}

@inline(__always) private func Glibc_or_Darwin_close(_ fd: Int32) {
    _ = close(fd)
}
