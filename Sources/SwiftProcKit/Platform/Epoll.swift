// epoll for the log reader (`ReadinessPoller`, edge-triggered) and the proxy's loops
// (`EventPoller`, level-triggered): one set of looked-up calls and one `epoll_event` layout.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
#if os(Linux)
/// epoll through `dlsym`: Swift's Glibc module does not include `<sys/epoll.h>`. The constants and
/// the `struct epoll_event` layout are the kernel ABI (packed, 12 bytes, on x86-64; 16 elsewhere).
enum Epoll {
    typealias Create1 = @convention(c) (Int32) -> Int32
    typealias Ctl = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    typealias Wait = @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Int32

    struct API {
        let create1: Create1
        let ctl: Ctl
        let wait: Wait
    }

    static let api: API? = {
        let handle = UnsafeMutableRawPointer(bitPattern: 0)
        guard let c = dlsym(handle, "epoll_create1"), let m = dlsym(handle, "epoll_ctl"),
              let w = dlsym(handle, "epoll_wait") else { return nil }
        return API(create1: unsafeBitCast(c, to: Create1.self), ctl: unsafeBitCast(m, to: Ctl.self),
                   wait: unsafeBitCast(w, to: Wait.self))
    }()

    static let cloexec: Int32 = 0o2000000  // EPOLL_CLOEXEC == O_CLOEXEC
    static let ctlAdd: Int32 = 1
    static let ctlDel: Int32 = 2
    static let ctlModify: Int32 = 3
    static let input: UInt32 = 0x001
    static let output: UInt32 = 0x004
    static let error: UInt32 = 0x008
    static let hangup: UInt32 = 0x010
    static let edgeTriggered: UInt32 = 1 << 31

    #if arch(x86_64)
    static let eventSize = 12
    static let dataOffset = 4
    #else
    static let eventSize = 16
    static let dataOffset = 8
    #endif

    /// `epoll_ctl(epfd, operation, fd, …)` with an `epoll_event` whose data is `fd`, built on
    /// the stack (the proxy changes interests on every paused or resumed direction).
    static func control(_ api: API, _ epfd: Int32, _ operation: Int32, _ fd: Int32, events: UInt32) -> Int32 {
        withUnsafeTemporaryAllocation(byteCount: 16, alignment: 8) { raw in
            raw.storeBytes(of: events, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: UInt64(UInt32(bitPattern: fd)), toByteOffset: dataOffset, as: UInt64.self)
            return api.ctl(epfd, operation, fd, raw.baseAddress)
        }
    }

    static func parse(_ p: UnsafeRawPointer) -> (fd: Int32, events: UInt32) {
        let events = p.loadUnaligned(as: UInt32.self)
        let data = p.loadUnaligned(fromByteOffset: dataOffset, as: UInt64.self)
        return (Int32(bitPattern: UInt32(truncatingIfNeeded: data)), events)
    }
}
#endif
