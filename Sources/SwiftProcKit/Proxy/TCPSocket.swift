// Raw TCP calls on 127.0.0.1 for the proxy and the health checks, with every Glibc/Darwin
// difference kept here: `SOCK_STREAM`'s type, `SOCK_CLOEXEC` vs `fcntl(FD_CLOEXEC)`,
// `sockaddr_in.sin_len`, `MSG_NOSIGNAL` vs `SO_NOSIGPIPE`, and accepted sockets inheriting
// `O_NONBLOCK` on Darwin (not on Linux).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How a nonblocking connect ended.
enum TCPConnectResult: Equatable {
    case connected(Int32)
    /// The `errno` of the failed connect (`ECONNREFUSED`, …).
    case failed(Int32)
    case timedOut
}

enum TCPSocket {
    /// A new IPv4 stream socket: close-on-exec, and (on Darwin) never raising SIGPIPE.
    static func make() throws(SocketError) -> Int32 {
        try Sockets.makeStreamSocket(domain: AF_INET)
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    static func setReuseAddress(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    static func setNonBlocking(_ fd: Int32, _ on: Bool) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return }
        _ = fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK))
    }

    /// Runs `body` with a `sockaddr_in` for 127.0.0.1:`port`.
    static func withLoopbackAddress<R>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port)).bigEndian
        address.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    /// A listening socket on 127.0.0.1:`port` (0: an ephemeral port), with `SO_REUSEADDR` so a
    /// restart is not refused by the previous run's TIME_WAIT connections. Throws the failing call.
    static func listen(port: Int, backlog: Int32 = 511) throws(SocketError) -> Int32 {
        let fd = try make()
        setReuseAddress(fd)
        let bound = withLoopbackAddress(port: port) { bind(fd, $0, $1) }
        guard bound == 0 else {
            let error = SocketError("bind")
            close(fd)
            throw error
        }
        #if os(Linux)
        let listening = Glibc.listen(fd, backlog)
        #else
        let listening = Darwin.listen(fd, backlog)
        #endif
        guard listening == 0 else {
            let error = SocketError("listen")
            close(fd)
            throw error
        }
        return fd
    }

    /// The local port `fd` is bound to.
    static func localPort(_ fd: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return 0 }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Accepts one connection: a close-on-exec descriptor (blocking unless `nonBlocking`), or
    /// the `errno` (`EAGAIN` when the nonblocking listener has nothing queued).
    static func accept(_ listener: Int32, nonBlocking: Bool = false) -> Result<Int32, SocketError> {
        while true {
            #if os(Linux)
            let client = Glibc.accept(listener, nil, nil)
            #else
            let client = Darwin.accept(listener, nil, nil)
            #endif
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                Sockets.setNoSigPipe(client)
                setNonBlocking(client, nonBlocking)
                return .success(client)
            }
            if errno == EINTR { continue }
            return .failure(SocketError("accept"))
        }
    }

    /// Starts a nonblocking connect to 127.0.0.1:`port`. Returns the socket (still nonblocking)
    /// and 0 when connected at once, `EINPROGRESS` when the caller must wait for writability,
    /// or throws the failure.
    static func startConnect(port: Int) throws(SocketError) -> (fd: Int32, status: Int32) {
        let fd = try make()
        setNonBlocking(fd, true)
        while true {
            #if os(Linux)
            let result = withLoopbackAddress(port: port) { Glibc.connect(fd, $0, $1) }
            #else
            let result = withLoopbackAddress(port: port) { Darwin.connect(fd, $0, $1) }
            #endif
            if result == 0 { return (fd, 0) }
            if errno == EINTR { continue }
            if errno == EINPROGRESS { return (fd, EINPROGRESS) }
            let error = SocketError("connect")
            close(fd)
            throw error
        }
    }

    /// The pending error of a socket whose nonblocking connect finished (0: connected).
    static func pendingError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else { return errno }
        return code
    }

    /// Connects to 127.0.0.1:`port` within `timeout` seconds. The connected socket is left
    /// blocking, with `TCP_NODELAY` when `noDelay`.
    static func connect(port: Int, timeout: Double, noDelay: Bool = true) -> TCPConnectResult {
        let started: (fd: Int32, status: Int32)
        do {
            started = try startConnect(port: port)
        } catch {
            return .failed(error.code)
        }
        let fd = started.fd
        if started.status == EINPROGRESS {
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let deadline = ProxyClock.now + timeout
            while true {
                let remaining = deadline - ProxyClock.now
                if remaining <= 0 { close(fd); return .timedOut }
                let result = poll(&entry, 1, Int32(min(remaining * 1000 + 1, 3_600_000)))
                if result > 0 { break }
                if result == 0 { continue }
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                return .failed(code)
            }
            let code = pendingError(fd)
            if code != 0 { close(fd); return .failed(code) }
        }
        setNonBlocking(fd, false)
        if noDelay { setNoDelay(fd) }
        return .connected(fd)
    }

    static func close(_ fd: Int32) {
        #if os(Linux)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }

    static func shutdownWrite(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_WR))
    }

    /// Wakes any thread blocked in `recv`/`send` on `fd` without closing it (closing would let
    /// the number be reused under that thread).
    static func shutdownBoth(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }

    /// One `recv`, retried on EINTR: the byte count, 0 at end of file, -1 on error (`errno` set).
    @inline(__always)
    static func receive(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        while true {
            let n = recv(fd, buffer, count, 0)
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    /// Sends all `count` bytes (blocking); false when the peer is gone (or a send timeout hit).
    @inline(__always)
    static func sendAll(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Bool {
        sendSome(fd, buffer, count) == count
    }

    /// Sends what a nonblocking socket takes now: the byte count (0 when its buffer is full),
    /// or -1 when the peer is gone (`errno` set).
    @inline(__always)
    static func sendSome(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
        var offset = 0
        while offset < count {
            let sent = send(fd, buffer + offset, count - offset, Sockets.sendFlags)
            if sent > 0 {
                offset += sent
            } else if sent < 0 && errno == EINTR {
                continue
            } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                break
            } else {
                return -1
            }
        }
        return offset
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { sendAll(fd, $0.baseAddress!, $0.count) }
    }

    /// `strerror`, lowercased the way the health checks report it ("connection refused").
    static func describe(_ code: Int32) -> String {
        String(cString: strerror(code)).lowercased()
    }
}

/// Monotonic seconds (immune to wall-clock changes) for deadlines and idle times.
enum ProxyClock {
    static var now: Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
