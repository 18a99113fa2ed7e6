// Raw Unix-domain socket calls, with every Glibc/Darwin difference kept in this one file:
// `SOCK_STREAM`'s type, `SOCK_CLOEXEC`/`accept4` vs `fcntl(FD_CLOEXEC)`, `sockaddr_un`'s layout
// (`sun_len`, 108 vs 104 bytes of path), `MSG_NOSIGNAL` vs `SO_NOSIGPIPE`, and `SO_PEERCRED`
// vs `getpeereid`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed socket call: the call's name and `errno`.
struct SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    var call: String
    var code: Int32

    init(_ call: String, _ code: Int32 = errno) {
        self.call = call
        self.code = code
    }

    var message: String { String(cString: strerror(code)) }
    var description: String { "\(call): \(message)" }
}

/// What `Sockets.receive` got.
enum ReceiveResult: Equatable {
    case bytes(Int)
    case endOfFile
    case timedOut
    case failed(Int32)
}

enum Sockets {
    /// The most bytes a `sun_path` holds, including the terminating NUL (108 on Linux, 104 on macOS).
    static var pathCapacity: Int {
        MemoryLayout.size(ofValue: sockaddr_un().sun_path)
    }

    /// Whether `path` fits in a `sockaddr_un` (with its NUL).
    static func pathFits(_ path: String) -> Bool {
        path.utf8.count + 1 <= pathCapacity
    }

    static var streamType: Int32 {
        #if os(Linux)
        return Int32(SOCK_STREAM.rawValue)
        #else
        return SOCK_STREAM
        #endif
    }

    /// A new stream socket (`AF_UNIX` unless told otherwise): close-on-exec, and (on Darwin)
    /// never raising SIGPIPE.
    static func makeStreamSocket(domain: Int32 = AF_UNIX) throws(SocketError) -> Int32 {
        #if os(Linux)
        let fd = socket(domain, streamType | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        #else
        let fd = socket(domain, streamType, 0)
        guard fd >= 0 else { throw SocketError("socket") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        setNoSigPipe(fd)
        #endif
        return fd
    }

    /// Darwin has no `MSG_NOSIGNAL`; the socket option does the same for every send.
    static func setNoSigPipe(_ fd: Int32) {
        #if canImport(Darwin)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    static var sendFlags: Int32 {
        #if os(Linux)
        return Int32(MSG_NOSIGNAL)
        #else
        return 0
        #endif
    }

    /// Runs `body` with a `sockaddr_un` for `path`. The caller checks ``pathFits(_:)`` first.
    private static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        #if canImport(Darwin)
        address.sun_len = UInt8(MemoryLayout<sockaddr_un>.size)
        #endif
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.copyBytes(from: bytes.prefix(raw.count - 1))
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    /// Binds `fd` to `path`, creating the socket file with `mode` (no wider than the umask allows;
    /// the caller `chmod`s afterwards anyway).
    ///
    /// On Linux the file takes its mode from the socket's inode, so `fchmod` before `bind` creates
    /// it with `mode` from the start, without touching the process-wide umask (which would leak
    /// into children spawned concurrently). Darwin ignores that, so there the umask is narrowed
    /// around the `bind` call.
    static func bind(_ fd: Int32, path: String, mode: mode_t) throws(SocketError) {
        #if os(Linux)
        _ = fchmod(fd, mode)
        let result = withAddress(path) { Glibc.bind(fd, $0, $1) }
        #else
        let old = umask(~mode & 0o777)
        let result = withAddress(path) { Darwin.bind(fd, $0, $1) }
        umask(old)
        #endif
        guard result == 0 else { throw SocketError("bind") }
    }

    static func listen(_ fd: Int32, backlog: Int32 = 64) throws(SocketError) {
        #if os(Linux)
        guard Glibc.listen(fd, backlog) == 0 else { throw SocketError("listen") }
        #else
        guard Darwin.listen(fd, backlog) == 0 else { throw SocketError("listen") }
        #endif
    }

    /// Connects `fd` to `path`; returns 0 or the `errno`.
    static func connect(_ fd: Int32, path: String) -> Int32 {
        while true {
            #if os(Linux)
            let result = withAddress(path) { Glibc.connect(fd, $0, $1) }
            #else
            let result = withAddress(path) { Darwin.connect(fd, $0, $1) }
            #endif
            if result == 0 { return 0 }
            if errno == EINTR { continue }
            return errno
        }
    }

    /// Accepts one connection: the new descriptor (close-on-exec, no SIGPIPE), or the `errno`.
    static func accept(_ fd: Int32) -> Result<Int32, SocketError> {
        while true {
            #if os(Linux)
            let client: Int32
            if let accept4 = linuxAccept4 {
                client = accept4(fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
            } else {
                client = Glibc.accept(fd, nil, nil)
                if client >= 0 { _ = fcntl(client, F_SETFD, FD_CLOEXEC) }
            }
            #else
            let client = Darwin.accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                setNoSigPipe(client)
            }
            #endif
            if client >= 0 { return .success(client) }
            if errno == EINTR { continue }
            return .failure(SocketError("accept"))
        }
    }

    #if os(Linux)
    private typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32
    /// `accept4` (atomic close-on-exec, so a child spawned at that moment cannot inherit a client
    /// connection) is hidden behind _GNU_SOURCE in Swift's Glibc module; look it up at run time.
    private static let linuxAccept4: Accept4? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "accept4") else { return nil }
        return unsafeBitCast(symbol, to: Accept4.self)
    }()
    #endif

    /// The effective uid of the process at the other end of a connected socket.
    static func peerUID(_ fd: Int32) -> uid_t? {
        #if os(Linux)
        // `struct ucred` needs _GNU_SOURCE, so Swift's Glibc module does not export it; its
        // layout (pid_t pid; uid_t uid; gid_t gid) is fixed by the kernel ABI.
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard length == 12,
              getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
              length == 12 else { return nil }
        return uid_t(credentials.uid)
        #else
        var uid: uid_t = 0
        var gid: gid_t = 0
        guard getpeereid(fd, &uid, &gid) == 0 else { return nil }
        return uid
        #endif
    }

    /// Waits until `fd` is readable (or hung up). `timeout` in milliseconds, -1 for none.
    /// Returns false on timeout.
    static func waitReadable(_ fd: Int32, timeoutMilliseconds timeout: Int32) -> Bool {
        wait(fd, events: Int16(POLLIN), timeoutMilliseconds: timeout)
    }

    static func waitWritable(_ fd: Int32, timeoutMilliseconds timeout: Int32) -> Bool {
        wait(fd, events: Int16(POLLOUT), timeoutMilliseconds: timeout)
    }

    private static func wait(_ fd: Int32, events: Int16, timeoutMilliseconds timeout: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let result = poll(&entry, 1, timeout)
            if result > 0 { return true }
            if result == 0 { return false }
            if errno == EINTR { continue }
            return true // let the following read/write report the error
        }
    }

    /// Waits on several descriptors for readability; returns the indices that are ready.
    static func waitReadable(_ fds: [Int32], timeoutMilliseconds timeout: Int32) -> [Int] {
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        while true {
            let result = entries.withUnsafeMutableBufferPointer {
                poll($0.baseAddress, nfds_t($0.count), timeout)
            }
            if result >= 0 {
                return entries.indices.filter { entries[$0].revents != 0 }
            }
            if errno == EINTR { continue }
            return []
        }
    }

    /// One `recv` into `buffer`, waiting at most `timeout` ms (-1: forever) for data.
    static func receive(_ fd: Int32, into buffer: inout [UInt8], timeoutMilliseconds timeout: Int32) -> ReceiveResult {
        if timeout >= 0, !waitReadable(fd, timeoutMilliseconds: timeout) { return .timedOut }
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { return .bytes(count) }
            if count == 0 { return .endOfFile }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return .timedOut }
            return .failed(errno)
        }
    }

    /// Sends all of `bytes`; never raises SIGPIPE. With a `timeout` (ms), gives up (returning
    /// `ETIMEDOUT`) when the peer has not taken the data in time; -1 blocks as long as needed.
    /// Returns 0 or the `errno`.
    @discardableResult
    static func sendAll(_ fd: Int32, _ bytes: [UInt8], timeoutMilliseconds timeout: Int32 = -1) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            if timeout >= 0, !waitWritable(fd, timeoutMilliseconds: timeout) { return ETIMEDOUT }
            let sent = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + offset, raw.count - offset, sendFlags)
            }
            if sent > 0 {
                offset += sent
            } else if sent < 0, errno == EINTR {
                continue
            } else {
                return sent < 0 ? errno : EPIPE
            }
        }
        return 0
    }

    /// `shutdown(SHUT_RDWR)`: wakes any thread blocked in `recv`/`send`/`poll` on `fd`
    /// without closing it (closing would let the number be reused under that thread).
    static func shutdownBoth(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }

    static func shutdownWrite(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_WR))
    }

    static func close(_ fd: Int32) {
        #if os(Linux)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }

    /// A close-on-exec pipe, used to wake a thread blocked in `poll`.
    static func makePipe() throws(SocketError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SocketError("pipe") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    /// `(st_dev, st_ino, isSocket)` of `path` without following a symlink; nil if it does not exist.
    static func identity(of path: String) -> (device: UInt64, inode: UInt64, isSocket: Bool)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (UInt64(truncatingIfNeeded: info.st_dev), UInt64(truncatingIfNeeded: info.st_ino),
                (info.st_mode & S_IFMT) == S_IFSOCK)
    }

    static var effectiveUID: uid_t { geteuid() }
}
