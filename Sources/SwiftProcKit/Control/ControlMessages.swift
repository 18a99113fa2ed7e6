import Foundation

/// The control protocol between `swiftproc start` and the client commands (`scale`, `status`,
/// `logs`, `restart`, `stop`): one JSON object per line over a Unix-domain socket.
///
/// A client sends one ``ControlRequest`` and reads one ``ControlReply``. For `logs` with
/// `follow`, the connection then carries one ``ControlLogLine`` per line until either side closes.
public enum ControlProtocol {
    /// Bumped on any incompatible change; a server refuses requests of another version.
    public static let version = 1
    /// The longest request line a server reads before it answers with an error and closes.
    public static let maxRequestBytes = 64 * 1024
}

/// After an `attach` request is accepted, the client sends frames — a type byte, a big-endian
/// 16-bit length, the payload — and the server sends the instance's raw output.
public enum AttachFrame {
    /// Keystrokes.
    public static let input: UInt8 = 0x64 // "d"
    /// The window size: rows and columns, each a big-endian UInt16.
    public static let resize: UInt8 = 0x77 // "w"
    /// The client detaches.
    public static let detach: UInt8 = 0x78 // "x"

    public static func encode(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let count = min(payload.count, Int(UInt16.max))
        return [type, UInt8(count >> 8), UInt8(count & 0xff)] + payload.prefix(count)
    }

    public static func resize(rows: UInt16, columns: UInt16) -> [UInt8] {
        encode(resize, [UInt8(rows >> 8), UInt8(rows & 0xff), UInt8(columns >> 8), UInt8(columns & 0xff)])
    }
}

public struct ControlRequest: Codable, Sendable, Equatable {
    public enum Command: String, Codable, Sendable, CaseIterable {
        case ping, status, scale, restart, stop, logs, deploy, attach
    }

    public var version: Int
    public var command: Command
    /// `scale`: formation words as typed (`["worker=3", "app=+1"]`); `restart` / `logs`: names
    /// of groups or instances (`["app", "worker.2"]`); empty for all.
    public var arguments: [String]
    /// `logs`: how many recent lines to send first.
    public var lines: Int?
    /// `logs`: keep the connection open and stream new lines.
    public var follow: Bool?

    public init(command: Command, arguments: [String] = [], lines: Int? = nil, follow: Bool? = nil,
                version: Int = ControlProtocol.version) {
        self.version = version
        self.command = command
        self.arguments = arguments
        self.lines = lines
        self.follow = follow
    }

    private enum CodingKeys: String, CodingKey { case version, command, arguments, lines, follow }

    /// Lenient on optional parts: a hand-written `{"version":1,"command":"status"}` is a request.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        version = try container.decode(Int.self, forKey: .version)
        command = try container.decode(Command.self, forKey: .command)
        arguments = try container.decodeIfPresent([String].self, forKey: .arguments) ?? []
        lines = try container.decodeIfPresent(Int.self, forKey: .lines)
        follow = try container.decodeIfPresent(Bool.self, forKey: .follow)
    }
}

public struct ControlReply: Codable, Sendable, Equatable {
    public var version: Int
    public var ok: Bool
    /// When `ok` is false: one line a person can read (`unknown process group "wrker"; known: app, worker`).
    public var error: String?
    /// Free text for the client to print (e.g. `scale`'s "worker: 1 → 3").
    public var message: String?
    /// `status` (and `scale`, after the change).
    public var status: StatusSnapshot?
    /// `logs`: the backlog, oldest first.
    public var lines: [ControlLogLine]?

    public init(ok: Bool = true, error: String? = nil, message: String? = nil,
                status: StatusSnapshot? = nil, lines: [ControlLogLine]? = nil) {
        self.version = ControlProtocol.version
        self.ok = ok
        self.error = error
        self.message = message
        self.status = status
        self.lines = lines
    }

    public static func failure(_ error: String) -> ControlReply { ControlReply(ok: false, error: error) }
}

/// A log line on the wire. `text` is the line decoded as UTF-8, invalid bytes replaced.
/// `dropped`, when set, is a marker instead of a line: this many lines were skipped because the
/// client read too slowly.
public struct ControlLogLine: Codable, Sendable, Equatable {
    public var time: Double
    public var source: String
    public var group: String
    public var colorIndex: Int
    public var text: String
    public var dropped: Int?

    public init(time: Double, source: String, group: String, colorIndex: Int, text: String, dropped: Int? = nil) {
        self.time = time
        self.source = source
        self.group = group
        self.colorIndex = colorIndex
        self.text = text
        self.dropped = dropped
    }

    public init(_ record: LogRecord) {
        self.init(time: record.time, source: record.source, group: record.group,
                  colorIndex: record.colorIndex, text: String(decoding: record.text, as: UTF8.self))
    }
}

/// What `status` shows: the app, its groups in file order, and one entry per instance.
public struct StatusSnapshot: Codable, Sendable, Equatable {
    public var app: String
    /// The supervisor's own pid.
    public var pid: Int32
    public var groups: [GroupStatus]
    public var instances: [InstanceStatus]
    /// The supervisor's phase: `starting`, `releasing` (the release command runs), `running`,
    /// `stopping`. Optional so that replies of older versions still decode.
    public var phase: String?

    public init(app: String, pid: Int32, groups: [GroupStatus], instances: [InstanceStatus]) {
        self.app = app
        self.pid = pid
        self.groups = groups
        self.instances = instances
    }
}

public struct GroupStatus: Codable, Sendable, Equatable {
    public var name: String
    public var command: String
    /// The desired count (the formation).
    public var desired: Int
    /// `true` once the group exhausted its restart retries.
    public var failed: Bool

    public init(name: String, command: String, desired: Int, failed: Bool) {
        self.name = name
        self.command = command
        self.desired = desired
        self.failed = failed
    }
}

public struct InstanceStatus: Codable, Sendable, Equatable {
    public var group: String
    public var index: Int
    /// `group.index`, e.g. `app.2`.
    public var name: String
    /// The instance's `FLY_MACHINE_ID`.
    public var machineID: String
    /// The process id (= process group id) while a process exists.
    public var pid: Int32?
    /// `starting`, `running`, `backing-off`, `stopping`, `exited`, `failed`, `stopped`.
    public var state: String
    /// Extra words for the state: `exited(1)`'s code, `backing-off`'s "in 4s", `stopped (idle)`.
    public var detail: String?
    public var restarts: Int
    public var port: Int?
    public var checksTotal: Int
    public var checksPassing: Int
    /// Seconds since 1970 of the last state change.
    public var lastUpdated: Double

    public init(group: String, index: Int, name: String, machineID: String, pid: Int32?, state: String,
                detail: String?, restarts: Int, port: Int?, checksTotal: Int = 0, checksPassing: Int = 0,
                lastUpdated: Double) {
        self.group = group
        self.index = index
        self.name = name
        self.machineID = machineID
        self.pid = pid
        self.state = state
        self.detail = detail
        self.restarts = restarts
        self.port = port
        self.checksTotal = checksTotal
        self.checksPassing = checksPassing
        self.lastUpdated = lastUpdated
    }
}
