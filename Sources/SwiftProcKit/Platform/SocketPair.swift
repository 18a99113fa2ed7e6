// A connected pair of Unix stream sockets for talking to a helper process over its stdin, and a
// send that never blocks and never raises SIGPIPE. The Glibc/Darwin differences (`SOCK_CLOEXEC`
// vs `fcntl`, `MSG_NOSIGNAL` vs `SO_NOSIGPIPE`) are the ones Sockets.swift already handles.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Platform {
    /// A connected `AF_UNIX` stream socket pair, both ends close-on-exec — on Linux set atomically
    /// by `socketpair` itself, so no process started meanwhile by another thread can inherit
    /// either end. nil when out of descriptors.
    static func makeSocketPair() -> (Int32, Int32)? {
        var fds: [Int32] = [-1, -1]
        #if os(Linux)
        guard socketpair(AF_UNIX, Sockets.streamType | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { return nil }
        #else
        guard socketpair(AF_UNIX, Sockets.streamType, 0, &fds) == 0 else { return nil }
        for fd in fds { setCloseOnExec(fd) }
        #endif
        for fd in fds { Sockets.setNoSigPipe(fd) }
        return (fds[0], fds[1])
    }

    static func setNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// What one ``sendSome(_:_:)`` did.
    enum SendOutcome: Equatable {
        /// This many bytes (at least one) went out.
        case sent(Int)
        /// The socket buffer is full: try again later.
        case wouldBlock
        /// The peer is gone (`EPIPE`, `ECONNRESET`) or the descriptor is unusable.
        case closed
    }

    /// One `send` of as much of `bytes` as fits, on a non-blocking socket; never raises SIGPIPE.
    static func sendSome(_ fd: Int32, _ bytes: [UInt8]) -> SendOutcome {
        guard !bytes.isEmpty else { return .sent(0) }
        while true {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Sockets.sendFlags) }
            if n > 0 { return .sent(n) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .wouldBlock }
            return .closed
        }
    }
}
