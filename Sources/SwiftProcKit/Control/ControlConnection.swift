import Foundation

/// One accepted control connection, run on its own thread by ``ControlServer``.
///
/// Life: check the peer's uid → read one request line (limit, deadline) → answer → close.
/// A following `logs` connection instead hands the socket to a writer thread draining a
/// ``FollowSubscriber`` while this thread waits for the client to go away.
///
/// The descriptor is closed only by ``run()``, at its very end, after the writer has finished;
/// other threads only ever `shutdown` it (under `lock`, while it is known open), so a number
/// is never closed under a thread still using it.
final class ControlConnection: @unchecked Sendable {
    enum Phase {
        /// Waiting for the request: ended at once by the server's stop.
        case reading
        /// The service is answering: left to finish.
        case replying
        /// Streaming logs: ended at once by the server's stop.
        case following
        case closed
    }

    let fd: Int32
    private let service: any ControlService
    private let options: ControlServer.Options
    private let lock = NSLock()
    private var phase = Phase.reading
    private var serverStopped = false

    /// When the server accepted it; the oldest silent connection is the first evicted.
    let acceptedAt = DispatchTime.now().uptimeNanoseconds

    /// If this connection is still waiting for its request, ends it (its thread then finishes
    /// and leaves the server's table) and returns true; a connection being answered or following
    /// logs is left alone.
    func evictIfWaiting() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard phase == .reading, !evicted else { return false }
        evicted = true
        Sockets.shutdownBoth(fd)
        return true
    }

    private var evicted = false

    var isEvicted: Bool {
        lock.lock()
        defer { lock.unlock() }
        return evicted
    }

    init(fd: Int32, server: ControlServer) {
        self.fd = fd
        self.service = server.service
        self.options = server.options
    }

    /// The server is stopping: wake this connection's blocked reads and writes unless it is
    /// in the middle of a reply.
    func serverStopping() {
        lock.lock()
        defer { lock.unlock() }
        serverStopped = true
        if phase == .reading || phase == .following { Sockets.shutdownBoth(fd) }
    }

    /// Moves to `next`; false if the server stopped meanwhile (the caller then closes).
    private func enter(_ next: Phase) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        phase = next
        if serverStopped, next == .reading || next == .following {
            Sockets.shutdownBoth(fd)
            return false
        }
        return true
    }

    func run() {
        defer {
            lock.lock()
            phase = .closed
            Sockets.close(fd)
            lock.unlock()
        }
        let ownUID = Sockets.effectiveUID
        guard let peer = Sockets.peerUID(fd) else {
            finish(with: .failure("permission denied: cannot tell which user is connecting"))
            return
        }
        guard peer == ownUID else {
            finish(with: .failure("permission denied: this swiftproc runs as uid \(ownUID); uid \(peer) may not control it"))
            return
        }
        guard enter(.reading) else { return }

        var reader = LineReader(fd: fd)
        let limit = ControlProtocol.maxRequestBytes
        switch reader.next(limit: limit, deadline: deadline(after: options.requestTimeout)) {
        case .line(let line):
            guard enter(.replying) else { return }
            switch ControlRequestParser.parse(line) {
            case .failure(let error):
                finish(with: .failure(error.message))
            case .success(let request) where request.command == .logs:
                serveLogs(request)
            case .success(let request) where request.command == .attach:
                serveAttach(request)
            case .success(let request):
                let service = self.service
                let reply = runBlocking { await service.reply(to: request) }
                finish(with: reply)
            }
        case .tooLong:
            finish(with: .failure("request too large (the limit is \(limit) bytes)"))
        case .timedOut:
            finish(with: .failure("no request within \(Self.seconds(options.requestTimeout)); closing"))
        case .endOfFile, .failed:
            return
        }
    }

    /// Sends `reply`, then closes gracefully: stop writing, and read (and discard) whatever the
    /// client still sends for a moment, so that closing with unread input does not reset the
    /// connection and destroy the reply before the client reads it.
    private func finish(with reply: ControlReply) {
        guard send(reply) else { return }
        Sockets.shutdownWrite(fd)
        var sink = [UInt8](repeating: 0, count: 16 * 1024)
        let end = deadline(after: 1)
        var drained = 0
        while drained < 16 * 1024 * 1024 {
            let now = DispatchTime.now().uptimeNanoseconds
            guard end.uptimeNanoseconds > now else { return }
            let remaining = Int32(clamping: (end.uptimeNanoseconds - now) / 1_000_000 + 1)
            guard case .bytes(let count) = Sockets.receive(fd, into: &sink, timeoutMilliseconds: remaining) else { return }
            drained += count
        }
    }

    @discardableResult
    private func send(_ reply: ControlReply) -> Bool {
        let timeout = Int32(clamping: Int(options.replyTimeout * 1000))
        return Sockets.sendAll(fd, Self.encodeLine(reply), timeoutMilliseconds: timeout) == 0
    }

    private func serveLogs(_ request: ControlRequest) {
        let following = request.follow ?? false
        let count = max(0, request.lines ?? options.defaultLogLines)
        let subscriber = following
            ? FollowSubscriber(maxRecords: options.followQueueRecords, maxBytes: options.followQueueBytes)
            : nil
        let service = self.service
        let names = request.arguments
        let result: Result<[LogRecord], ControlServiceError> = runBlocking {
            do throws(ControlServiceError) {
                return .success(try await service.logs(names: names, lines: count, subscriber: subscriber))
            } catch {
                return .failure(error)
            }
        }
        let backlog: [LogRecord]
        switch result {
        case .failure(let error):
            finish(with: .failure(error.message))
            return
        case .success(let records):
            backlog = records
        }
        guard let subscriber else {
            finish(with: ControlReply(lines: backlog.map(ControlLogLine.init)))
            return
        }
        defer {
            subscriber.close()
            runBlocking { await service.unsubscribe(subscriber) }
        }
        guard send(ControlReply(lines: backlog.map(ControlLogLine.init))), enter(.following) else { return }

        let fd = self.fd
        let writerDone = DispatchSemaphore(value: 0)
        let writer = Thread {
            Self.drain(subscriber, to: fd)
            // Wakes the reading side below if the client went away mid-write.
            Sockets.shutdownBoth(fd)
            writerDone.signal()
        }
        writer.name = "swiftproc-control-follow"
        writer.start()

        // The client sends nothing more; EOF (or an error) means it left.
        var sink = [UInt8](repeating: 0, count: 4096)
        while case .bytes = Sockets.receive(fd, into: &sink, timeoutMilliseconds: -1) {}
        subscriber.close()
        Sockets.shutdownBoth(fd)
        writerDone.wait()
    }

    /// `attach`: after the reply, the instance's output flows to the client (a writer thread
    /// pumping the session) while this thread reads the client's frames (``AttachFrame``) until
    /// it detaches or goes away — either way the instance keeps running.
    private func serveAttach(_ request: ControlRequest) {
        guard let name = request.arguments.first else {
            finish(with: .failure("attach needs an instance, like app.1"))
            return
        }
        let rows = request.arguments.count > 1 ? UInt16(request.arguments[1]) ?? 0 : 0
        let columns = request.arguments.count > 2 ? UInt16(request.arguments[2]) ?? 0 : 0
        let service = self.service
        let result: Result<AttachSession, ControlServiceError> = runBlocking {
            do throws(ControlServiceError) {
                return .success(try await service.attach(name, rows: rows, columns: columns))
            } catch {
                return .failure(error)
            }
        }
        let session: AttachSession
        switch result {
        case .failure(let error):
            finish(with: .failure(error.message))
            return
        case .success(let s):
            session = s
        }
        defer {
            session.end()
            runBlocking { await service.detach(session) }
        }
        guard send(ControlReply(message: "attached to \(session.instance)")), enter(.following) else { return }

        let fd = self.fd
        let writerDone = DispatchSemaphore(value: 0)
        let writer = Thread {
            session.pump(to: fd)
            Sockets.shutdownBoth(fd)
            writerDone.signal()
        }
        writer.name = "swiftproc-control-attach"
        writer.start()

        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        reading: while case .bytes(let count) = Sockets.receive(fd, into: &chunk, timeoutMilliseconds: -1) {
            buffer += chunk[0..<count]
            while buffer.count >= 3 {
                let length = Int(buffer[1]) << 8 | Int(buffer[2])
                guard buffer.count >= 3 + length else { break }
                let payload = Array(buffer[3..<(3 + length)])
                let type = buffer[0]
                buffer.removeFirst(3 + length)
                switch type {
                case AttachFrame.input: session.type(payload)
                case AttachFrame.resize where payload.count == 4:
                    session.resize(rows: UInt16(payload[0]) << 8 | UInt16(payload[1]),
                                   columns: UInt16(payload[2]) << 8 | UInt16(payload[3]))
                case AttachFrame.detach: break reading
                default: break reading // not our protocol: end the session
                }
            }
            if buffer.count > 1 << 20 { break }
        }
        session.end()
        Sockets.shutdownBoth(fd)
        writerDone.wait()
    }

    /// The follow writer: one JSON line per record, `dropped` markers in place of lost lines.
    private static func drain(_ subscriber: FollowSubscriber, to fd: Int32) {
        let encoder = JSONEncoder()
        var out: [UInt8] = []
        while let batch = subscriber.next() {
            out.removeAll(keepingCapacity: true)
            for item in batch {
                let line: ControlLogLine
                switch item {
                case .record(let record): line = ControlLogLine(record)
                case .dropped(let count): line = .droppedMarker(count)
                }
                guard let data = try? encoder.encode(line) else { continue }
                out.append(contentsOf: data)
                out.append(UInt8(ascii: "\n"))
                if out.count >= 256 * 1024 {
                    guard Sockets.sendAll(fd, out) == 0 else { return }
                    out.removeAll(keepingCapacity: true)
                }
            }
            guard Sockets.sendAll(fd, out) == 0 else { return }
        }
    }

    static func encodeLine(_ reply: ControlReply) -> [UInt8] {
        var bytes = (try? JSONEncoder().encode(reply)).map { Array($0) }
            ?? Array(#"{"ok":false,"error":"internal error: cannot encode the reply","version":1}"#.utf8)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    private static func seconds(_ interval: TimeInterval) -> String {
        interval == interval.rounded() ? "\(Int(interval))s" : "\(interval)s"
    }
}
