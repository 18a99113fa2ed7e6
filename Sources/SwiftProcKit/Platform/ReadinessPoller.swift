#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Platform {
    /// Waits for any of many file descriptors to become readable, for one thread (the log reader).
    ///
    /// On Linux this is **edge-triggered epoll**: an fd is reported when new input arrives (or it
    /// hangs up), not again until more arrives, so the owner must read until a short read (the fd
    /// is drained for now) or until EOF after a hang-up. The reason is the pty: `poll(2)` on a pty
    /// master whose input buffer is empty waits, inside the kernel, for the pty's pending
    /// `flush_to_ldisc` work (`n_tty_poll` → `tty_buffer_flush_work`), so one `poll` over many busy
    /// ptys sleeps in turn on each of their kworkers. epoll asks only the fds that signalled.
    ///
    /// Elsewhere (and on Linux if epoll is unavailable) it falls back to level-triggered `poll(2)`;
    /// the owner's read-until-short-read loop is correct with either.
    ///
    /// Not thread-safe: one owner thread. Readiness is reported per fd.
    final class ReadinessPoller {
        struct Event {
            var fd: Int32
            /// The other end is gone (`EPOLLHUP`/`POLLHUP`) or an error is pending: read to EOF.
            var hangup: Bool
        }

        /// Whether readiness is edge-triggered (epoll) rather than level-triggered (poll).
        let isEdgeTriggered: Bool

        #if os(Linux)
        private let epollFD: Int32
        private var eventBuffer: UnsafeMutableRawPointer
        private var eventCapacity = 0
        /// Fds epoll refuses (`EPERM`: regular files, which never block): reported every time.
        private var alwaysReady: [Int32] = []
        #endif
        /// The poll(2) fallback's set.
        private var pollfds: [pollfd] = []

        init() {
            #if os(Linux)
            if let api = Epoll.api {
                let fd = api.create1(Epoll.cloexec)
                if fd >= 0 {
                    epollFD = fd
                    isEdgeTriggered = true
                    eventCapacity = 256
                    eventBuffer = .allocate(byteCount: eventCapacity * Epoll.eventSize, alignment: 8)
                    return
                }
            }
            epollFD = -1
            eventBuffer = .allocate(byteCount: 1, alignment: 8)
            #endif
            isEdgeTriggered = false
        }

        deinit {
            #if os(Linux)
            if epollFD >= 0 { close(epollFD) }
            eventBuffer.deallocate()
            #endif
        }

        /// Starts watching `fd` for input. Edge-triggered: input already waiting is reported by
        /// the next ``wait(timeoutMilliseconds:into:)``.
        func add(_ fd: Int32) {
            #if os(Linux)
            if epollFD >= 0, let api = Epoll.api {
                var event = Epoll.event(fd: fd, events: Epoll.input | Epoll.edgeTriggered)
                if event.withUnsafeMutableBytes({ api.ctl(epollFD, Epoll.ctlAdd, fd, $0.baseAddress) }) != 0 {
                    alwaysReady.append(fd)
                }
                return
            }
            #endif
            pollfds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
        }

        /// Stops watching `fd`. Call before closing it: with epoll, a registration lives as long
        /// as the open file, and others (the supervisor's copy of a pty master) may hold it open.
        func remove(_ fd: Int32) {
            pollfds.removeAll { $0.fd == fd }
            #if os(Linux)
            alwaysReady.removeAll { $0 == fd }
            if epollFD >= 0, let api = Epoll.api {
                var event = Epoll.event(fd: fd, events: 0)
                _ = event.withUnsafeMutableBytes { api.ctl(epollFD, Epoll.ctlDel, fd, $0.baseAddress) }
            }
            #endif
        }

        /// Waits up to `timeout` ms (-1: forever, 0: not at all) and replaces `events` with the
        /// fds that are ready. `EINTR` returns with no events.
        func wait(timeoutMilliseconds timeout: Int32, into events: inout [Event]) {
            events.removeAll(keepingCapacity: true)
            #if os(Linux)
            if epollFD >= 0, let api = Epoll.api {
                let n = api.wait(epollFD, eventBuffer, Int32(eventCapacity), alwaysReady.isEmpty ? timeout : 0)
                if n < 0 && errno != EINTR {
                    // Cannot happen with a valid epoll fd and buffer; back off rather than spin.
                    _ = poll(nil, 0, 10)
                }
                if n > 0 {
                    for i in 0..<Int(n) {
                        let (fd, flags) = Epoll.parse(eventBuffer + i * Epoll.eventSize)
                        events.append(Event(fd: fd, hangup: flags & (Epoll.hangup | Epoll.error) != 0))
                    }
                    if Int(n) == eventCapacity { growEventBuffer() }
                }
                for fd in alwaysReady { events.append(Event(fd: fd, hangup: false)) }
                return
            }
            #endif
            let r = poll(&pollfds, nfds_t(pollfds.count), timeout)
            if r < 0 && errno != EINTR {
                // ENOMEM and the like: back off instead of spinning.
                _ = poll(nil, 0, 10)
            }
            guard r > 0 else { return }
            for p in pollfds where p.revents != 0 {
                let gone = Int32(p.revents) & Int32(POLLHUP | POLLERR | POLLNVAL) != 0
                events.append(Event(fd: p.fd, hangup: gone))
            }
        }

        #if os(Linux)
        /// A full buffer leaves the rest on epoll's ready list for the next wait; more room just
        /// means fewer rounds when many fds are busy.
        private func growEventBuffer() {
            guard eventCapacity < 16384 else { return }
            eventBuffer.deallocate()
            eventCapacity *= 2
            eventBuffer = .allocate(byteCount: eventCapacity * Epoll.eventSize, alignment: 8)
        }
        #endif
    }
}

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
    static let input: UInt32 = 0x001
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

    /// A `struct epoll_event` whose data is the fd, as bytes.
    static func event(fd: Int32, events: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: eventSize)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: events, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: UInt64(UInt32(bitPattern: fd)), toByteOffset: dataOffset, as: UInt64.self)
        }
        return bytes
    }

    static func parse(_ p: UnsafeRawPointer) -> (fd: Int32, events: UInt32) {
        let events = p.loadUnaligned(as: UInt32.self)
        let data = p.loadUnaligned(fromByteOffset: dataOffset, as: UInt64.self)
        return (Int32(bitPattern: UInt32(truncatingIfNeeded: data)), events)
    }
}
#endif
