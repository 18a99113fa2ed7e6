import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why ``ControlServer/start()`` could not listen. `description` is one line for a person.
public enum ControlServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another swiftproc answers on the socket (`pid` when it told us).
    case alreadyRunning(path: String, pid: Int32?)
    case pathTooLong(path: String, limit: Int)
    /// Something that is not a socket is in the way; never removed.
    case notASocket(path: String)
    case directory(path: String, message: String)
    case socket(path: String, message: String)
    case alreadyStarted

    public var description: String {
        switch self {
        case let .alreadyRunning(path, pid):
            let who = pid.map { "pid \($0), " } ?? ""
            return "swiftproc is already running in this directory (\(who)socket \(ControlSocket.display(path))); use `swiftproc stop` or another --socket"
        case let .pathTooLong(path, limit):
            return "control socket path is too long (\(path.utf8.count) bytes; the limit is \(limit)): \(path); use --socket or \(ControlSocket.environmentVariable) with a shorter path"
        case let .notASocket(path):
            return "\(ControlSocket.display(path)) exists and is not a socket; refusing to replace it"
        case let .directory(path, message):
            return message.hasPrefix("refusing") ? message : "cannot create the control socket directory \(path): \(message)"
        case let .socket(path, message):
            return "cannot create the control socket \(ControlSocket.display(path)): \(message)"
        case .alreadyStarted:
            return "the control server is already started"
        }
    }
}

/// Serves the control protocol on a Unix-domain socket for `swiftproc start`.
///
/// ## Threading
/// One thread runs the accept loop (`poll` on the listening socket and a wake pipe, so ``stop()``
/// can end it); every accepted connection gets its own thread, and a following `logs` client a
/// second one (the writer). Blocking I/O on a dedicated thread per connection keeps the code
/// straight-line (read a line with a deadline, answer, close) and means that a silent, slow,
/// half-closed or SIGSTOPped client can only ever block its own threads — never the accept loop,
/// the supervisor, or another client. Control connections are few and short-lived (one per CLI
/// invocation, plus followers), and ``Options/maxConnections`` bounds the thread count.
/// Service calls are `async`; a connection thread waits for them on a semaphore, which is fine
/// because it is a thread of its own, never one of Swift concurrency's cooperative pool.
///
/// The log path only ever touches a ``FollowSubscriber``'s bounded queue (an append under a lock
/// never held across I/O).
public final class ControlServer: @unchecked Sendable {
    public struct Options: Sendable {
        /// How long a client may take to send its request line before it is disconnected.
        /// The CLI sends its request as soon as it connects, so a few seconds is plenty.
        public var requestTimeout: TimeInterval = 3
        /// Connections served at once. When all are taken, the oldest one that has not sent its
        /// request yet is closed to make room, so silent connections never lock a real client
        /// out; only when every slot is busy answering or following are newcomers told so.
        public var maxConnections = 64
        /// Bounds of a follower's queue; beyond them lines are dropped (and counted).
        public var followQueueRecords = 10_000
        public var followQueueBytes = 4 * 1024 * 1024
        /// `logs` backlog size when the request names none.
        public var defaultLogLines = 100
        /// How long a reply may wait for a client that does not read it.
        public var replyTimeout: TimeInterval = 10

        public init() {}
    }

    public let path: String
    public let options: Options
    let service: any ControlService

    private let lock = NSLock()
    private var listenFD: Int32 = -1
    private var wakePipe: (read: Int32, write: Int32) = (-1, -1)
    private var acceptDone: DispatchSemaphore?
    private var socketIdentity: (device: UInt64, inode: UInt64)?
    private var connections: [ObjectIdentifier: ControlConnection] = [:]
    private var started = false
    private var stopping = false

    public init(path: String, service: any ControlService, options: Options = Options()) {
        self.path = path
        self.service = service
        self.options = options
    }

    deinit {
        stop()
    }

    /// Creates the socket's directory (0700) if missing, replaces a stale socket, refuses a live
    /// one, binds (socket mode 0600), and starts accepting.
    public func start() throws(ControlServerError) {
        lock.lock()
        defer { lock.unlock() }
        guard !started else { throw .alreadyStarted }
        guard Sockets.pathFits(path) else { throw .pathTooLong(path: path, limit: ControlSocket.maxPathBytes) }

        try Self.makeParentDirectory(of: path)
        try Self.removeStaleSocket(at: path)

        let fd: Int32
        let pipe: (read: Int32, write: Int32)
        do {
            fd = try Sockets.makeStreamSocket()
        } catch {
            throw .socket(path: path, message: error.description)
        }
        do throws(SocketError) {
            try Sockets.bind(fd, path: path, mode: 0o600)
            guard chmod(path, 0o600) == 0 else { throw SocketError("chmod") }
            try Sockets.listen(fd)
            pipe = try Sockets.makePipe()
        } catch {
            Sockets.close(fd)
            if error.call != "bind" { unlink(path) }
            if error.call == "bind", error.code == EADDRINUSE {
                throw .alreadyRunning(path: path, pid: nil)
            }
            throw .socket(path: path, message: error.description)
        }
        if let identity = Sockets.identity(of: path) {
            socketIdentity = (identity.device, identity.inode)
        }
        listenFD = fd
        wakePipe = pipe
        started = true
        let done = DispatchSemaphore(value: 0)
        acceptDone = done
        let thread = Thread { [self] in
            acceptLoop(listenFD: fd, wakeFD: pipe.read)
            done.signal()
        }
        thread.name = "swiftproc-control-accept"
        thread.start()
    }

    /// Stops accepting, unlinks the socket (only if it is still the one this server bound), and
    /// ends idle and following connections. A connection in the middle of a reply finishes it,
    /// so the service may call `stop()` while answering (e.g. the `stop` command) without
    /// waiting on itself. Idempotent.
    public func stop() {
        lock.lock()
        guard started, !stopping else {
            lock.unlock()
            return
        }
        stopping = true
        let done = acceptDone
        let pipe = wakePipe
        let open = Array(connections.values)
        lock.unlock()

        var byte: UInt8 = 1
        _ = write(pipe.write, &byte, 1)
        done?.wait()
        for connection in open { connection.serverStopping() }

        lock.lock()
        Sockets.close(listenFD)
        Sockets.close(pipe.read)
        Sockets.close(pipe.write)
        listenFD = -1
        if let ours = socketIdentity, let now = Sockets.identity(of: path),
           now.device == ours.device, now.inode == ours.inode {
            unlink(path)
        }
        socketIdentity = nil
        lock.unlock()
    }

    /// Connections open right now (for tests).
    var connectionCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return connections.count
    }

    // MARK: - Start-up

    private static func makeParentDirectory(of path: String) throws(ControlServerError) {
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty else { return }
        // The app's own `.swiftproc` must be ours alone and never a symlink (a socket planted
        // in another user's directory would be trusted by every client).
        if (parent as NSString).lastPathComponent == StateDirectory.name {
            do {
                try StateDirectory.prepare(path: parent)
            } catch {
                throw .directory(path: parent, message: error.description)
            }
            return
        }
        var info = stat()
        if stat(parent, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw .directory(path: parent, message: "not a directory")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: (parent as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
        } catch {
            // mkdir below reports it
        }
        if mkdir(parent, 0o700) != 0, errno != EEXIST {
            throw .directory(path: parent, message: String(cString: strerror(errno)))
        }
        _ = chmod(parent, 0o700) // mkdir's mode is narrowed by the umask; make it exactly 0700
    }

    /// A socket file nobody answers on is left over from a swiftproc that died: remove it.
    /// One that answers belongs to a running swiftproc: refuse, naming its pid if it says.
    private static func removeStaleSocket(at path: String) throws(ControlServerError) {
        guard let existing = Sockets.identity(of: path) else { return }
        guard existing.isSocket else { throw .notASocket(path: path) }
        let fd: Int32
        do {
            fd = try Sockets.makeStreamSocket()
        } catch {
            throw .socket(path: path, message: error.description)
        }
        let result = Sockets.connect(fd, path: path)
        Sockets.close(fd)
        switch result {
        case 0:
            let client = ControlClient(path: path, timeout: 5)
            let pid = (try? client.send(ControlRequest(command: .status)))?.status?.pid
            throw .alreadyRunning(path: path, pid: pid)
        case ECONNREFUSED, ENOENT:
            if unlink(path) != 0, errno != ENOENT {
                throw .socket(path: path, message: "cannot remove the stale socket: \(String(cString: strerror(errno)))")
            }
        default:
            throw .socket(path: path, message: "connect: \(String(cString: strerror(result)))")
        }
    }

    // MARK: - Accepting

    private func acceptLoop(listenFD: Int32, wakeFD: Int32) {
        while true {
            let ready = Sockets.waitReadable([listenFD, wakeFD], timeoutMilliseconds: -1)
            if ready.contains(1) { return }
            guard ready.contains(0) else { continue }
            switch Sockets.accept(listenFD) {
            case .success(let fd):
                admit(fd)
            case .failure(let error):
                if error.code == EMFILE || error.code == ENFILE || error.code == ENOBUFS || error.code == ENOMEM {
                    // Out of descriptors: back off instead of spinning on a pending connection.
                    _ = Sockets.waitReadable([wakeFD], timeoutMilliseconds: 100)
                }
            }
        }
    }

    /// Connections counted against the cap: all but those already evicted. Under `lock`.
    private func activeLocked() -> Int {
        connections.values.reduce(0) { $0 + ($1.isEvicted ? 0 : 1) }
    }

    private func admit(_ fd: Int32) {
        lock.lock()
        // Full: make room by evicting the oldest connection still waiting for its request.
        // Evicted ones leave the table only when their thread ends, so they do not count.
        if !stopping, activeLocked() >= options.maxConnections {
            _ = connections.values.sorted { $0.acceptedAt < $1.acceptedAt }.first { $0.evictIfWaiting() }
        }
        if stopping || activeLocked() >= options.maxConnections {
            lock.unlock()
            let reply = ControlReply.failure("too many control connections; try again")
            Sockets.sendAll(fd, ControlConnection.encodeLine(reply), timeoutMilliseconds: 0)
            Sockets.close(fd)
            return
        }
        let connection = ControlConnection(fd: fd, server: self)
        let key = ObjectIdentifier(connection)
        connections[key] = connection
        lock.unlock()

        let thread = Thread { [self] in
            connection.run()
            lock.lock()
            connections[key] = nil
            lock.unlock()
        }
        thread.name = "swiftproc-control-connection"
        thread.start()
    }
}

/// Waits, on the calling (non-cooperative) thread, for an async operation.
func runBlocking<T: Sendable>(_ operation: @escaping @Sendable () async -> T) -> T {
    let box = BlockingBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await operation()
        done.signal()
    }
    done.wait()
    return box.value!
}

private final class BlockingBox<T: Sendable>: @unchecked Sendable {
    var value: T?
}
