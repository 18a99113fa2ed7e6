import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a client command could not talk to the supervisor. `description` is exactly one line,
/// for the CLI to print before exiting 1.
public enum ControlClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No socket file: nothing runs here.
    case notRunning(path: String)
    /// A socket file nobody listens on (a swiftproc that died without cleaning up).
    case staleSocket(path: String)
    /// The socket or its directory belongs to someone else.
    case permissionDenied(path: String)
    case pathTooLong(path: String, limit: Int)
    case timedOut(path: String, seconds: Double)
    /// The supervisor closed the connection without a (complete) reply.
    case closedWithoutReply(path: String)
    /// The reply line was not a ``ControlReply``.
    case badReply(String)
    /// The supervisor answered `ok: false` to a request that has no other way to report it
    /// (``ControlClient/followLogs(_:onLine:)``); the message is the server's.
    case failed(String)
    case io(path: String, message: String)
    /// The process listening on the socket runs as another user: not a swiftproc of ours.
    case foreignServer(path: String, uid: UInt32?)

    public var description: String {
        switch self {
        case let .notRunning(path):
            return "no swiftproc is running here (no control socket at \(ControlSocket.display(path)))"
        case let .staleSocket(path):
            return "no swiftproc is running here (stale control socket at \(ControlSocket.display(path)): connection refused)"
        case let .permissionDenied(path):
            return "permission denied on the control socket at \(ControlSocket.display(path)) (is swiftproc running as another user?)"
        case let .pathTooLong(path, limit):
            return "control socket path is too long (\(path.utf8.count) bytes; the limit is \(limit)): \(path)"
        case let .timedOut(path, seconds):
            return "swiftproc did not answer within \(Int(seconds.rounded(.up)))s (control socket at \(ControlSocket.display(path)))"
        case let .closedWithoutReply(path):
            return "swiftproc closed the connection without answering (control socket at \(ControlSocket.display(path)))"
        case let .badReply(detail):
            return "unreadable reply from swiftproc: \(detail)"
        case let .failed(message):
            return message
        case let .io(path, message):
            return "cannot talk to swiftproc at \(ControlSocket.display(path)): \(message)"
        case let .foreignServer(path, uid):
            let who = uid.map { "uid \($0)" } ?? "an unknown user"
            return "refusing to talk to the control socket at \(ControlSocket.display(path)): it is served by \(who), not by you (uid \(Sockets.effectiveUID))"
        }
    }
}

/// The client side of the control protocol, for `swiftproc status`, `scale`, `logs`, ….
///
/// Each call opens its own connection. ``cancel()`` (from any thread) ends a
/// ``followLogs(_:onLine:)`` in progress.
public final class ControlClient: @unchecked Sendable {
    public let path: String
    /// How long to wait for a reply (not for followed lines, which may be far apart).
    public let timeout: TimeInterval

    private let lock = NSLock()
    private var activeFD: Int32 = -1
    private var cancelled = false

    /// The longest reply line accepted (a large `logs` backlog is one line).
    static let maxReplyBytes = 512 * 1024 * 1024

    public init(path: String, timeout: TimeInterval = 60) {
        self.path = path
        self.timeout = timeout
    }

    /// Sends one request and returns the reply. A reply with `ok == false` is returned, not
    /// thrown: its `error` is the server's message.
    public func send(_ request: ControlRequest) throws(ControlClientError) -> ControlReply {
        let fd = try connect()
        defer { release(fd) }
        var reader = LineReader(fd: fd)
        return try exchange(request, fd: fd, reader: &reader)
    }

    /// Sends an `attach` request for `name`; on success returns the connected socket (the
    /// caller owns it: frames to it, raw output from it) and the output that already followed
    /// the reply. Throws ``ControlClientError/failed(_:)`` with the server's refusal.
    public func openAttach(_ name: String, rows: UInt16, columns: UInt16) throws(ControlClientError) -> (fd: Int32, initial: [UInt8]) {
        let fd = try connect()
        var reader = LineReader(fd: fd)
        let reply: ControlReply
        do {
            reply = try exchange(ControlRequest(command: .attach, arguments: [name, String(rows), String(columns)]),
                                 fd: fd, reader: &reader)
        } catch {
            release(fd)
            throw error
        }
        guard reply.ok else {
            release(fd)
            throw .failed(reply.error ?? "swiftproc refused to attach")
        }
        lock.lock()
        if activeFD == fd { activeFD = -1 }
        lock.unlock()
        return (fd, reader.unread)
    }

    /// Sends a `logs` request (`follow` is forced on) and calls `onLine` for each backlog line,
    /// then for each live line, until the server closes, `onLine` returns false, or
    /// ``cancel()`` is called. `dropped` markers arrive as lines with `dropped` set.
    /// Throws ``ControlClientError/failed(_:)`` when the server refuses (e.g. an unknown name).
    /// `onBacklog`, if given, sees the whole backlog first (e.g. to size a name column).
    public func followLogs(_ request: ControlRequest, onBacklog: (([ControlLogLine]) -> Void)? = nil,
                           onLine: (ControlLogLine) -> Bool) throws(ControlClientError) {
        var request = request
        request.command = .logs
        request.follow = true
        let fd = try connect()
        defer { release(fd) }
        var reader = LineReader(fd: fd)
        let reply = try exchange(request, fd: fd, reader: &reader)
        guard reply.ok else { throw .failed(reply.error ?? "swiftproc refused the request") }
        onBacklog?(reply.lines ?? [])
        for line in reply.lines ?? [] {
            guard onLine(line) else { return }
        }
        let decoder = JSONDecoder()
        while true {
            switch reader.next(limit: Self.maxReplyBytes) {
            case .line(let bytes):
                guard let line = try? decoder.decode(ControlLogLine.self, from: Data(bytes)) else {
                    throw .badReply("not a log line: \(Self.preview(bytes))")
                }
                guard onLine(line) else { return }
            case .endOfFile, .timedOut:
                return
            case .tooLong:
                throw .badReply("a log line over \(Self.maxReplyBytes) bytes")
            case .failed(let code):
                if isCancelled { return }
                if code == ECONNRESET { return }
                throw .io(path: path, message: String(cString: strerror(code)))
            }
        }
    }

    /// Ends a ``followLogs(_:onLine:)`` in progress (and any later one at once).
    public func cancel() {
        lock.lock()
        defer { lock.unlock() }
        cancelled = true
        if activeFD >= 0 { Sockets.shutdownBoth(activeFD) }
    }

    private var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }

    // MARK: -

    private func connect() throws(ControlClientError) -> Int32 {
        guard Sockets.pathFits(path) else { throw .pathTooLong(path: path, limit: ControlSocket.maxPathBytes) }
        let fd: Int32
        do {
            fd = try Sockets.makeStreamSocket()
        } catch {
            throw .io(path: path, message: error.description)
        }
        let result = Sockets.connect(fd, path: path)
        guard result == 0 else {
            Sockets.close(fd)
            switch result {
            case ENOENT, ENOTDIR: throw .notRunning(path: path)
            case ECONNREFUSED: throw .staleSocket(path: path)
            case EACCES, EPERM: throw .permissionDenied(path: path)
            default: throw .io(path: path, message: String(cString: strerror(result)))
            }
        }
        // Only a supervisor of our own user is trusted with requests and believed in its replies.
        let server = Sockets.peerUID(fd)
        guard server == Sockets.effectiveUID else {
            Sockets.close(fd)
            throw .foreignServer(path: path, uid: server.map { UInt32($0) })
        }
        lock.lock()
        activeFD = fd
        if cancelled { Sockets.shutdownBoth(fd) }
        lock.unlock()
        return fd
    }

    private func release(_ fd: Int32) {
        lock.lock()
        if activeFD == fd { activeFD = -1 }
        Sockets.close(fd)
        lock.unlock()
    }

    private func exchange(_ request: ControlRequest, fd: Int32, reader: inout LineReader) throws(ControlClientError) -> ControlReply {
        var line: [UInt8]
        do {
            line = Array(try JSONEncoder().encode(request))
        } catch {
            throw .badReply("cannot encode the request: \(error)")
        }
        line.append(UInt8(ascii: "\n"))
        let end = deadline(after: timeout)
        let sent = Sockets.sendAll(fd, line, timeoutMilliseconds: Int32(clamping: Int(timeout * 1000)))
        // A server that refuses (e.g. another user's) may answer and close before reading:
        // still try to read its reply.
        if sent != 0, sent != EPIPE, sent != ECONNRESET {
            if sent == ETIMEDOUT { throw .timedOut(path: path, seconds: timeout) }
            throw .io(path: path, message: String(cString: strerror(sent)))
        }
        switch reader.next(limit: Self.maxReplyBytes, deadline: end) {
        case .line(let bytes):
            do {
                return try JSONDecoder().decode(ControlReply.self, from: Data(bytes))
            } catch {
                throw .badReply(Self.preview(bytes))
            }
        case .timedOut:
            throw .timedOut(path: path, seconds: timeout)
        case .endOfFile:
            throw .closedWithoutReply(path: path)
        case .tooLong:
            throw .badReply("reply over \(Self.maxReplyBytes) bytes")
        case .failed(let code):
            if code == ECONNRESET { throw .closedWithoutReply(path: path) }
            throw .io(path: path, message: String(cString: strerror(code)))
        }
    }

    private static func preview(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(80), as: UTF8.self)
        return bytes.count > 80 ? text + "…" : text
    }
}
