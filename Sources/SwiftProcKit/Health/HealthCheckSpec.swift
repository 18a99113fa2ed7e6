import Foundation

/// One health check as the monitor runs it: every duration resolved to seconds, every default
/// filled in.
///
/// Defaults where fly.toml leaves a value out: `interval` 15 s, `timeout` 2 s, `grace_period` 0,
/// `method` GET, `path` `/`, `protocol` http.
///
/// `protocol = "https"`: the app's TLS is not verified locally (no TLS stack without
/// dependencies). Such a check is neither failed nor skipped: it runs as a **TCP connect** to its
/// port, so a dead instance is still noticed without taking a healthy one out of rotation, and
/// its detail says so.
public struct HealthCheckSpec: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case http, tcp
    }

    public static let defaultInterval = 15.0
    public static let defaultTimeout = 2.0
    public static let defaultGracePeriod = 0.0

    public var name: String
    public var kind: Kind
    /// On 127.0.0.1.
    public var port: Int
    /// HTTP only.
    public var path: String
    public var method: String
    /// Extra request headers, in order (a `Host` here replaces the default `Host: localhost`).
    public var headers: [(name: String, value: String)]
    /// Seconds between the start of one probe and the next.
    public var interval: Double
    /// Seconds a probe may take (connect, and for HTTP the status line).
    public var timeout: Double
    /// Seconds after ``HealthMonitor/start()`` during which failures are not reported.
    public var gracePeriod: Double
    /// `http` or `https` (see the type's notes).
    public var `protocol`: String

    public init(name: String, kind: Kind, port: Int, path: String = "/", method: String = "GET",
                headers: [(name: String, value: String)] = [], interval: Double = defaultInterval,
                timeout: Double = defaultTimeout, gracePeriod: Double = defaultGracePeriod,
                protocol: String = "http") {
        self.name = name
        self.kind = kind
        self.port = port
        self.path = path
        self.method = method
        self.headers = headers
        self.interval = interval
        self.timeout = timeout
        self.gracePeriod = gracePeriod
        self.protocol = `protocol`
    }

    /// From a check in fly.toml, with the defaults above for what it leaves out.
    public init(_ check: HealthCheck) {
        self.init(name: check.name,
                  kind: check.kind == .http ? .http : .tcp,
                  port: check.port,
                  path: check.path ?? "/",
                  method: check.method ?? "GET",
                  headers: check.headers.map { (name: $0.name, value: $0.value) },
                  interval: check.interval.map(Self.seconds) ?? Self.defaultInterval,
                  timeout: check.timeout.map(Self.seconds) ?? Self.defaultTimeout,
                  gracePeriod: check.gracePeriod.map(Self.seconds) ?? Self.defaultGracePeriod,
                  protocol: check.protocol ?? "http")
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    /// Whether the probe is a plain TCP connect (a TCP check, or an HTTPS one; see above).
    var probesByConnectOnly: Bool {
        kind == .tcp || self.protocol.lowercased() == "https"
    }

    /// The HTTP request an HTTP check sends.
    var request: [UInt8] {
        let target = path.hasPrefix("/") ? path : "/" + path
        var text = "\(method.isEmpty ? "GET" : method.uppercased()) \(target) HTTP/1.1\r\n"
        if !headers.contains(where: { $0.name.lowercased() == "host" }) {
            text += "Host: localhost\r\n"
        }
        for header in headers where header.name.lowercased() != "connection" {
            text += "\(header.name): \(header.value)\r\n"
        }
        text += "Connection: close\r\n\r\n"
        return Array(text.utf8)
    }

    public static func == (lhs: HealthCheckSpec, rhs: HealthCheckSpec) -> Bool {
        lhs.name == rhs.name && lhs.kind == rhs.kind && lhs.port == rhs.port && lhs.path == rhs.path
            && lhs.method == rhs.method && lhs.interval == rhs.interval && lhs.timeout == rhs.timeout
            && lhs.gracePeriod == rhs.gracePeriod && lhs.protocol == rhs.protocol
            && lhs.headers.elementsEqual(rhs.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// The state of one check of one instance.
public struct HealthResult: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        /// No result reported yet: not probed yet, or failing within the grace period.
        case pending
        case passing
        case failing
    }

    /// The instance checked (`app.2`).
    public var instance: String
    /// The check's name.
    public var name: String
    public var status: Status
    /// What the last probe saw: `HTTP 200`, `HTTP 500`, `connection refused`,
    /// `timed out after 2s`, `connected`…
    public var detail: String

    public var passing: Bool { status == .passing }

    public init(instance: String, name: String, status: Status, detail: String) {
        self.instance = instance
        self.name = name
        self.status = status
        self.detail = detail
    }
}

/// `2s`, `1.5s`, `500ms`.
func formatCheckDuration(_ seconds: Double) -> String {
    if seconds >= 1 {
        if seconds == seconds.rounded() { return "\(Int(seconds))s" }
        return String(format: "%.1fs", seconds)
    }
    return "\(Int((seconds * 1000).rounded()))ms"
}
