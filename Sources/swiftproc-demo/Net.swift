// Raw TCP calls for swiftproc-demo, with the Glibc/Darwin differences kept here:
// `SOCK_STREAM`'s type, `sockaddr_in.sin_len`, `MSG_NOSIGNAL` vs `SO_NOSIGPIPE`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct NetError: Error, CustomStringConvertible {
    var call: String
    var code: Int32
    init(_ call: String, _ code: Int32 = errno) { self.call = call; self.code = code }
    var description: String { "\(call): \(String(cString: strerror(code)))" }
}

enum Net {
    private static var streamType: Int32 {
        #if os(Linux)
        return Int32(SOCK_STREAM.rawValue)
        #else
        return SOCK_STREAM
        #endif
    }

    private static var sendFlags: Int32 {
        #if os(Linux)
        return Int32(MSG_NOSIGNAL)
        #else
        return 0
        #endif
    }

    /// A listening socket on 127.0.0.1:`port` (0: any free port); returns the fd and the bound port.
    static func listen(port: UInt16, backlog: Int32 = 1024) throws(NetError) -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, streamType, 0)
        guard fd >= 0 else { throw NetError("socket") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { let e = NetError("bind", errno); close(fd); throw e }
        #if canImport(Glibc)
        let listened = Glibc.listen(fd, backlog)
        #else
        let listened = Darwin.listen(fd, backlog)
        #endif
        guard listened == 0 else { let e = NetError("listen", errno); close(fd); throw e }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: actual.sin_port))
    }

    /// Accepts one connection; returns its fd and the peer's "ip:port", or nil on a transient error.
    static func accept(_ listener: Int32) -> (fd: Int32, peer: String)? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                #if canImport(Glibc)
                Glibc.accept(listener, $0, &length)
                #else
                Darwin.accept(listener, $0, &length)
                #endif
            }
        }
        guard fd >= 0 else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        #if canImport(Darwin)
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        let ip = UInt32(bigEndian: address.sin_addr.s_addr)
        let peer = "\(ip >> 24).\((ip >> 16) & 0xFF).\((ip >> 8) & 0xFF).\(ip & 0xFF):\(UInt16(bigEndian: address.sin_port))"
        return (fd, peer)
    }

    /// Gives up a blocked `recv` after `seconds` (keep-alive idle timeout).
    static func setReceiveTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval()
        tv.tv_sec = seconds
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends all of `bytes`; false if the peer went away.
    static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard var p = bytes.baseAddress else { return true }
        var left = bytes.count
        while left > 0 {
            let n = send(fd, p, left, sendFlags)
            if n > 0 { p += n; left -= n; continue }
            if n < 0 && errno == EINTR { continue }
            return false
        }
        return true
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { sendAll(fd, $0) }
    }

    /// One `recv` into `buffer`: > 0 bytes, 0 at EOF, -1 on error or timeout.
    static func receive(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }
}

/// Writes whole lines to stdout with one `write(2)` each, so they reach a pipe or pty at once
/// (no stdio buffering) and lines from different threads never interleave.
enum Log {
    static func line(_ text: String, fd: Int32 = 1) {
        var bytes = Array(text.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { raw in
            var p = raw.baseAddress!
            var left = raw.count
            while left > 0 {
                #if canImport(Glibc)
                let n = Glibc.write(fd, p, left)
                #else
                let n = Darwin.write(fd, p, left)
                #endif
                if n > 0 { p += n; left -= n; continue }
                if n < 0 && errno == EINTR { continue }
                return
            }
        }
    }

    static func error(_ text: String) { line(text, fd: 2) }
}
