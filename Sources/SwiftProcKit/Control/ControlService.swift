/// What the control server needs from whoever answers requests — the supervisor in
/// `swiftproc start`, a fake in tests. Keeping it a protocol keeps the socket code
/// (framing, limits, peer checks, slow clients) apart from supervisor state.
public protocol ControlService: Sendable {
    /// Answers every command but `logs`. Never throws: failures are `ControlReply.failure`.
    func reply(to request: ControlRequest) async -> ControlReply

    /// For `logs`: checks the names (`app`, `worker.2`; empty = all) and returns the last
    /// `lines` matching records, oldest first. When `subscriber` is given it is registered, in
    /// the same step, to receive every later matching record — no line is lost or repeated between
    /// the backlog and the live stream. Throws a message for a person on an unknown name.
    func logs(names: [String], lines: Int, subscriber: (any LogSubscriber)?) async throws(ControlServiceError) -> [LogRecord]

    /// Stops delivering to a subscriber registered by ``logs(names:lines:subscriber:)``.
    func unsubscribe(_ subscriber: any LogSubscriber) async

    /// For `attach`: connects to instance `name`'s pseudo-terminal, sized `rows`×`columns`
    /// (0: leave as is). Throws a message for a person (unknown, not running, on pipes, taken).
    func attach(_ name: String, rows: UInt16, columns: UInt16) async throws(ControlServiceError) -> AttachSession

    /// The attached client left (detached, or its terminal closed): the instance keeps running.
    func detach(_ session: AttachSession) async
}

extension ControlService {
    public func attach(_ name: String, rows: UInt16, columns: UInt16) async throws(ControlServiceError) -> AttachSession {
        throw ControlServiceError("attach is not available here")
    }

    public func detach(_ session: AttachSession) async {}
}

public struct ControlServiceError: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}
