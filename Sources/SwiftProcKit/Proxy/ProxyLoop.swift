import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Something a ``ProxyLoop`` calls back on its own thread: a listener or a connection.
protocol LoopHandler: AnyObject {
    /// `event.fd` is ready.
    func handle(_ event: PollEvent)
    /// A deadline this handler asked for (``ProxyLoop/wake(_:at:)``) may have passed: act on
    /// what expired, and return the next deadline (``ProxyClock`` seconds), or `.infinity`.
    func deadlineReached(now: Double) -> Double
}

/// One thread running an event loop for the proxies: it owns an ``EventPoller``, the handlers
/// registered on it, and the connections those handlers relay. Everything a handler does runs
/// on this thread, so a connection's state needs no lock; other threads reach it only through
/// ``execute(_:)``.
///
/// **Why a few loops instead of a thread per connection:** idle connections then cost two
/// descriptors and a few hundred bytes, not two threads; the thread count is fixed whatever
/// clients do (see ``shared``); and a slow or silent peer holds no thread. Deadlines (connect,
/// idle, silent backend, waiting for an instance) are exact, without a periodic tick: the loop
/// sleeps until the earliest one, forever when there is none, so an idle proxy uses no CPU.
final class ProxyLoop: @unchecked Sendable {
    /// The process's loops: one per core, at most four — a byte-transparent relay that splices
    /// is bound by the kernel's copying, not by the loop — started on first use and kept.
    static let shared: [ProxyLoop] = {
        let count = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
        return (0..<count).map { ProxyLoop(name: "swiftproc proxy \($0)") }
    }()

    private static let rotation = NSLock()
    nonisolated(unsafe) private static var nextIndex = 0

    /// The loop the next connection goes to (round-robin).
    static func next() -> ProxyLoop {
        rotation.lock()
        defer { rotation.unlock() }
        let loop = shared[nextIndex % shared.count]
        nextIndex &+= 1
        return loop
    }

    /// Bytes moved per read (or per `splice` into the loop's pipe). Also the most a direction
    /// ever keeps in memory while its destination cannot take more.
    static let chunkSize = 64 * 1024

    private let poller: EventPoller?
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var thread: Thread?

    // Loop thread only.
    private var handlers: [Int32: (handler: any LoopHandler, interest: EventPoller.Interest)] = [:]
    private var timed: [ObjectIdentifier: any LoopHandler] = [:]
    private var nextDeadline = Double.infinity
    /// Scratch space for copying, shared by every connection of this loop (one at a time).
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: ProxyLoop.chunkSize, alignment: 16)
    /// The pipe every spliced move of this loop goes through; empty between moves.
    let splicePipe: SplicePipe?

    // Guarded by `lock`.
    private let lock = NSLock()
    private var tasks: [@Sendable () -> Void] = []
    private var woken = false

    private init(name: String) {
        poller = try? EventPoller()
        let wake = (try? Sockets.makePipe()) ?? (read: -1, write: -1)
        if wake.read >= 0 {
            TCPSocket.setNonBlocking(wake.read, true)
            TCPSocket.setNonBlocking(wake.write, true)
        }
        (wakeRead, wakeWrite) = wake
        splicePipe = SplicePipe.make()
        if let poller, wakeRead >= 0 {
            poller.update(wakeRead, from: .init(), to: .init(read: true, write: false))
        }
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.stackSize = 512 * 1024
        self.thread = thread
        thread.start()
    }

    /// Whether this loop can run handlers (its poller and wake pipe were created).
    var isUsable: Bool { poller != nil && wakeRead >= 0 }

    /// Runs `task` on the loop's thread, soon (in order with other tasks).
    func execute(_ task: @escaping @Sendable () -> Void) {
        lock.lock()
        tasks.append(task)
        let mustWake = !woken
        woken = true
        lock.unlock()
        if mustWake {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
    }

    var isCurrent: Bool { Thread.current === thread }

    // MARK: - For handlers, on the loop thread

    /// Sets what `fd` is watched for (nothing: not watched). `fd` must stay open until
    /// ``forget(_:)``.
    func watch(_ fd: Int32, by handler: any LoopHandler, read: Bool, write: Bool) {
        let new = EventPoller.Interest(read: read, write: write)
        let old = handlers[fd]?.interest ?? .init()
        guard old != new || handlers[fd] == nil else { return }
        handlers[fd] = (handler, new)
        poller?.update(fd, from: old, to: new)
    }

    /// Stops watching `fd`; call before closing it.
    func forget(_ fd: Int32) {
        guard let entry = handlers.removeValue(forKey: fd) else { return }
        poller?.update(fd, from: entry.interest, to: .init())
    }

    /// Calls `handler.deadlineReached` at `deadline` (or soon after), and from then on at the
    /// deadlines it returns, until it returns `.infinity` or ``cancelDeadlines(_:)``.
    func wake(_ handler: any LoopHandler, at deadline: Double) {
        timed[ObjectIdentifier(handler)] = handler
        if deadline < nextDeadline { nextDeadline = deadline }
    }

    func cancelDeadlines(_ handler: any LoopHandler) {
        timed[ObjectIdentifier(handler)] = nil
    }

    // MARK: - The loop

    private func run() {
        guard let poller else { return }
        while true {
            let now = ProxyClock.now
            if nextDeadline <= now { runDeadlines(now) }
            let timeout: Double? = nextDeadline == .infinity ? nil : max(0, nextDeadline - ProxyClock.now) + 0.0005
            poller.wait(timeout: timeout) { event in
                if event.fd == wakeRead {
                    runTasks()
                } else if let entry = handlers[event.fd] {
                    entry.handler.handle(event)
                }
            }
        }
    }

    private func runTasks() {
        while read(wakeRead, scratch, 64) > 0 {}
        lock.lock()
        let pending = tasks
        tasks.removeAll(keepingCapacity: true)
        woken = false
        lock.unlock()
        for task in pending { task() }
    }

    private func runDeadlines(_ now: Double) {
        nextDeadline = .infinity
        for (key, handler) in timed {
            let next = handler.deadlineReached(now: now)
            // The handler may have cancelled (or re-armed) itself meanwhile.
            guard timed[key] != nil else { continue }
            if next == .infinity {
                timed[key] = nil
            } else if next < nextDeadline {
                nextDeadline = next
            }
        }
    }
}

#if os(Linux)
/// The loop's pipe for `splice(2)`: socket → pipe → socket inside the kernel (page references,
/// not copies). Shared by every connection of a loop because it is empty between moves: what a
/// destination cannot take at once is read back out into that direction's own small buffer.
/// One pipe per loop instead of two per connection keeps a connection at two descriptors.
final class SplicePipe {
    private typealias SpliceFunction = @convention(c) (
        Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32
    ) -> Int
    private typealias Pipe2Function = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32

    /// `splice` and `pipe2` are behind _GNU_SOURCE in Swift's Glibc module; look them up at run time.
    private static let spliceCall: SpliceFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "splice") else { return nil }
        return unsafeBitCast(symbol, to: SpliceFunction.self)
    }()

    private static let pipe2Call: Pipe2Function? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2") else { return nil }
        return unsafeBitCast(symbol, to: Pipe2Function.self)
    }()

    private static let flags: UInt32 = 1 | 2 // SPLICE_F_MOVE | SPLICE_F_NONBLOCK
    private static let setPipeSize: Int32 = 1031 // F_SETPIPE_SZ

    let read: Int32
    let write: Int32
    /// Cleared when the kernel refuses `splice` on these sockets: the loop copies from then on.
    var works = true

    private init(read: Int32, write: Int32) {
        self.read = read
        self.write = write
    }

    static func make() -> SplicePipe? {
        guard spliceCall != nil, let pipe2Call else { return nil }
        var fds: [Int32] = [-1, -1]
        guard pipe2Call(&fds, Int32(O_CLOEXEC | O_NONBLOCK)) == 0 else { return nil }
        _ = fcntl(fds[1], setPipeSize, Int32(ProxyLoop.chunkSize))
        return SplicePipe(read: fds[0], write: fds[1])
    }

    /// One `splice` call, retried on EINTR: bytes moved, 0 at end of file, -1 with `errno`.
    func splice(from source: Int32, to destination: Int32, count: Int) -> Int {
        guard let call = Self.spliceCall else {
            errno = ENOSYS
            return -1
        }
        while true {
            let moved = call(source, nil, destination, nil, count, Self.flags)
            if moved < 0 && errno == EINTR { continue }
            return moved
        }
    }
}
#else
/// No `splice` outside Linux: the loops copy.
final class SplicePipe {
    var works = false
    let read: Int32 = -1
    let write: Int32 = -1
    static func make() -> SplicePipe? { nil }
    func splice(from source: Int32, to destination: Int32, count: Int) -> Int { -1 }
}
#endif
