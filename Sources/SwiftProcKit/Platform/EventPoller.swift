// Readiness of many descriptors at once, for the proxy's event loops: epoll on Linux, kqueue on
// Darwin, with every difference kept in this file.
//
// On Linux the calls and `struct epoll_event`'s layout come from `Epoll` (Epoll.swift), shared
// with the log reader's `ReadinessPoller`.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What one descriptor is ready for.
struct PollEvent {
    var fd: Int32
    var readable: Bool
    var writable: Bool
    /// An error or hang-up: the next read or write on it reports what happened.
    var failed: Bool
}

/// A level-triggered readiness set (epoll or kqueue). Used by one thread at a time: the loop
/// that owns it.
///
/// A descriptor is registered only while it has an interest (read, write or both), so a peer's
/// hang-up on a descriptor nobody is reading never wakes the loop in a spin; ``update(_:read:write:)``
/// adds, changes or removes the registration from the old and new interests.
final class EventPoller {
    private let fd: Int32
    private let capacity = 256
    #if os(Linux)
    private let buffer: UnsafeMutableRawPointer
    #else
    private let buffer: UnsafeMutablePointer<kevent>
    #endif

    init() throws(SocketError) {
        #if os(Linux)
        guard let api = Epoll.api else { throw SocketError("epoll_create1", ENOSYS) }
        let fd = api.create1(Epoll.cloexec)
        guard fd >= 0 else { throw SocketError("epoll_create1") }
        self.fd = fd
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity * Epoll.eventSize, alignment: 8)
        #else
        let fd = kqueue()
        guard fd >= 0 else { throw SocketError("kqueue") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        self.fd = fd
        buffer = UnsafeMutablePointer<kevent>.allocate(capacity: capacity)
        #endif
    }

    deinit {
        _ = close(fd)
        buffer.deallocate()
    }

    /// The interest registered for a descriptor.
    struct Interest: Equatable {
        var read = false
        var write = false
        var isEmpty: Bool { !read && !write }
    }

    /// Changes `fd`'s registration from `old` to `new` (either may be empty). False when the
    /// kernel refused (the descriptor is then not watched).
    @discardableResult
    func update(_ target: Int32, from old: Interest, to new: Interest) -> Bool {
        guard old != new else { return true }
        #if os(Linux)
        guard let api = Epoll.api else { return false }
        let operation: Int32 = old.isEmpty ? Epoll.ctlAdd : (new.isEmpty ? Epoll.ctlDel : Epoll.ctlModify)
        return Epoll.control(api, fd, operation, target, events: (new.read ? Epoll.input : 0) | (new.write ? Epoll.output : 0)) == 0
        #else
        var changes: [kevent] = []
        func change(_ filter: Int16, _ was: Bool, _ now: Bool) {
            guard was != now else { return }
            changes.append(kevent(ident: UInt(target), filter: filter, flags: UInt16(now ? EV_ADD : EV_DELETE),
                                  fflags: 0, data: 0, udata: nil))
        }
        change(Int16(EVFILT_READ), old.read, new.read)
        change(Int16(EVFILT_WRITE), old.write, new.write)
        return kevent(fd, changes, Int32(changes.count), nil, 0, nil) == 0
        #endif
    }

    /// Waits up to `timeout` seconds (nil: until something happens) and calls `body` for each
    /// ready descriptor. Returns how many events there were (0 on timeout or EINTR).
    @discardableResult
    func wait(timeout: Double?, _ body: (PollEvent) -> Void) -> Int {
        #if os(Linux)
        guard let api = Epoll.api else { return 0 }
        let milliseconds: Int32 = timeout.map { Int32(min(max(($0 * 1000).rounded(.up), 0), 3_600_000)) } ?? -1
        let count = api.wait(fd, buffer, Int32(capacity), milliseconds)
        guard count > 0 else { return 0 }
        for index in 0..<Int(count) {
            let (target, mask) = Epoll.parse(buffer + index * Epoll.eventSize)
            body(PollEvent(fd: target,
                           readable: mask & Epoll.input != 0,
                           writable: mask & Epoll.output != 0,
                           failed: mask & (Epoll.error | Epoll.hangup) != 0))
        }
        return Int(count)
        #else
        var spec = timespec()
        let count: Int32
        if let timeout {
            let clamped = min(max(timeout, 0), 3600)
            spec.tv_sec = Int(clamped)
            spec.tv_nsec = Int((clamped - Double(Int(clamped))) * 1e9)
            count = kevent(fd, nil, 0, buffer, Int32(capacity), &spec)
        } else {
            count = kevent(fd, nil, 0, buffer, Int32(capacity), nil)
        }
        guard count > 0 else { return 0 }
        for index in 0..<Int(count) {
            let event = buffer[index]
            let isRead = event.filter == Int16(EVFILT_READ)
            // EV_EOF on the read filter: the peer closed; reading tells end of file (or the error).
            body(PollEvent(fd: Int32(truncatingIfNeeded: event.ident),
                           readable: isRead,
                           writable: !isRead,
                           failed: event.flags & UInt16(EV_ERROR) != 0))
        }
        return Int(count)
        #endif
    }
}
