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
                if Epoll.control(api, epollFD, Epoll.ctlAdd, fd, events: Epoll.input | Epoll.edgeTriggered) != 0 {
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
                _ = Epoll.control(api, epollFD, Epoll.ctlDel, fd, events: 0)
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

