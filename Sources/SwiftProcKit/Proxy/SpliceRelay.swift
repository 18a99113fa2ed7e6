// Zero-copy relaying on Linux: `splice(2)` moves data socket → pipe → socket inside the kernel
// (page references, not copies), so the proxy's own cost per byte nearly vanishes. Elsewhere,
// or when `splice` is unavailable, the proxy copies through a 64 KiB buffer instead.
#if os(Linux)
import Glibc

enum SpliceRelay {
    private typealias SpliceFunction = @convention(c) (
        Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32
    ) -> Int
    private typealias Pipe2Function = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32

    /// `splice` and `pipe2` are behind _GNU_SOURCE in Swift's Glibc module; look them up at run time.
    private static let splice: SpliceFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "splice") else { return nil }
        return unsafeBitCast(symbol, to: SpliceFunction.self)
    }()

    private static let pipe2: Pipe2Function? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2") else { return nil }
        return unsafeBitCast(symbol, to: Pipe2Function.self)
    }()

    private static let moveFlag: UInt32 = 1 // SPLICE_F_MOVE
    private static let setPipeSize: Int32 = 1031 // F_SETPIPE_SZ
    static let pipeSize = 256 * 1024

    /// How a relay ended.
    enum Ending {
        /// End of file from the source; the destination was half-closed.
        case endOfFile
        /// An error on either side; the connection was aborted.
        case aborted
        /// `splice` cannot be used (no pipe, or the kernel refused it before any byte moved):
        /// the caller relays by copying instead.
        case unsupported
    }

    /// Each spliced connection holds 4 more descriptors (a pipe per direction): splice only while
    /// the connections open stay well within half the descriptor limit, copy beyond that.
    static let connectionBudget: Int = {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        let soft = Int(min(limit.rlim_cur, 1 << 20))
        return max(0, (soft / 2 - 64) / 6)
    }()

    /// A close-on-exec pipe sized for big moves, or nil.
    private static func makePipe() -> (read: Int32, write: Int32)? {
        guard let pipe2 else { return nil }
        var fds: [Int32] = [-1, -1]
        guard pipe2(&fds, Int32(O_CLOEXEC)) == 0 else { return nil }
        _ = fcntl(fds[1], setPipeSize, Int32(pipeSize))
        return (fds[0], fds[1])
    }

    /// Relays `source` to `destination` through a pipe until end of file or an error.
    static func relay(from source: Int32, to destination: Int32, _ connection: ProxyConnection) -> Ending {
        guard let splice, let pipe = makePipe() else { return .unsupported }
        defer {
            TCPSocket.close(pipe.read)
            TCPSocket.close(pipe.write)
        }
        var movedAny = false
        while true {
            let count = splice(source, nil, pipe.write, nil, pipeSize, moveFlag)
            if count > 0 {
                movedAny = true
                var left = count
                while left > 0 {
                    let sent = splice(pipe.read, nil, destination, nil, left, moveFlag)
                    if sent > 0 {
                        left -= sent
                    } else if sent < 0 && errno == EINTR {
                        continue
                    } else {
                        connection.abort()
                        return .aborted
                    }
                }
            } else if count == 0 {
                TCPSocket.shutdownWrite(destination)
                return .endOfFile
            } else if errno == EINTR {
                continue
            } else if !movedAny && (errno == EINVAL || errno == ENOSYS) {
                return .unsupported
            } else {
                connection.abort()
                return .aborted
            }
        }
    }
}
#endif
