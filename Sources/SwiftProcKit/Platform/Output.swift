#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Platform {
    /// Writes all of `bytes` to `fd` with `write(2)`, retrying `EINTR` and partial writes.
    /// Returns false when the reader has gone (`EPIPE`), the fd is closed, or another error
    /// stopped it — never throws and never traps, unlike `FileHandle.write(_:)`, which raises
    /// an uncatchable error (SIGILL) on a closed pipe: `swiftproc frobnicate 2>&1 | true`.
    /// Needs SIGPIPE caught or ignored (``survivePipeErrors()``), as `main` does first thing.
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            guard var p = buffer.baseAddress else { return true }
            var left = buffer.count
            while left > 0 {
                #if canImport(Glibc)
                let r = Glibc.write(fd, p, left)
                #else
                let r = Darwin.write(fd, p, left)
                #endif
                if r > 0 {
                    p += r
                    left -= r
                } else if r < 0 && errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
        }
    }
}
