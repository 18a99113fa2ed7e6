import Foundation

/// Renders `swiftproc status`, in the spirit of `fly status`:
///
/// ```
/// App: myapp (swiftproc pid 4242)
///
/// PROCESS   ID              PID    STATE                CHECKS              RESTARTS  PORT  LAST UPDATED
/// app.1     3d8d9e1c5e6f28  4250   running              1 total, 1 passing  0         8080  12s ago
/// worker.1  91857e3b1c2d04  -      backing-off (in 4s)  -                   3         -     2s ago
/// ```
public enum StatusTable {
    public static let columns = ["PROCESS", "ID", "PID", "STATE", "CHECKS", "RESTARTS", "PORT", "LAST UPDATED"]

    /// The header line, a blank line and the table. `now` is seconds since 1970.
    public static func render(_ snapshot: StatusSnapshot, now: Double = Date().timeIntervalSince1970) -> String {
        var out = "App: \(snapshot.app) (swiftproc pid \(snapshot.pid))\n\n"
        let rows = orderedInstances(snapshot).map { row($0, now: now) }
        out += table([columns] + rows)
        let empty = snapshot.groups.filter { group in !snapshot.instances.contains { $0.group == group.name } }
        for group in empty {
            out += "\(group.name): no instances (scaled to \(group.desired)\(group.failed ? ", failed" : ""))\n"
        }
        return out
    }

    /// Instances grouped by the snapshot's group order (file order), then by index.
    /// Instances of groups the snapshot does not list come last, by name.
    static func orderedInstances(_ snapshot: StatusSnapshot) -> [InstanceStatus] {
        var rank: [String: Int] = [:]
        for (position, group) in snapshot.groups.enumerated() where rank[group.name] == nil {
            rank[group.name] = position
        }
        let unknown = snapshot.groups.count
        return snapshot.instances.enumerated().sorted { a, b in
            let ra = rank[a.element.group] ?? unknown, rb = rank[b.element.group] ?? unknown
            if ra != rb { return ra < rb }
            if a.element.group != b.element.group { return a.element.group < b.element.group }
            if a.element.index != b.element.index { return a.element.index < b.element.index }
            return a.offset < b.offset
        }.map(\.element)
    }

    static func row(_ instance: InstanceStatus, now: Double) -> [String] {
        [
            instance.name.isEmpty ? "\(instance.group).\(instance.index)" : instance.name,
            instance.machineID.isEmpty ? "-" : instance.machineID,
            instance.pid.map(String.init) ?? "-",
            state(instance),
            checks(total: instance.checksTotal, passing: instance.checksPassing),
            String(instance.restarts),
            instance.port.map(String.init) ?? "-",
            lastUpdated(instance.lastUpdated, now: now),
        ]
    }

    /// `running`, `exited(1)`, `backing-off (in 4s)`, `stopped (idle)`.
    public static func state(_ instance: InstanceStatus) -> String {
        guard let detail = instance.detail?.trimmingCharacters(in: .whitespaces), !detail.isEmpty else {
            return instance.state
        }
        if detail.hasPrefix("(") { return instance.state + detail }
        if instance.state == "exited", Int(detail) != nil { return "exited(\(detail))" }
        return "\(instance.state) (\(detail))"
    }

    /// `-` without checks; else `1 total, 1 passing` / `2 total, 1 passing, 1 critical`.
    public static func checks(total: Int, passing: Int) -> String {
        guard total > 0 else { return "-" }
        var parts = ["\(total) total"]
        if passing > 0 { parts.append("\(passing) passing") }
        if total - passing > 0 { parts.append("\(total - passing) critical") }
        return parts.joined(separator: ", ")
    }

    /// `12s ago`, `4m12s ago`, `3h4m ago` within a day; RFC 3339 (UTC) for anything older,
    /// in the future beyond clock skew, or unset (0).
    public static func lastUpdated(_ time: Double, now: Double) -> String {
        let age = now - time
        if time > 0, age > -2, age < 86_400 {
            let seconds = max(0, Int(age))
            if seconds < 60 { return "\(seconds)s ago" }
            if seconds < 3600 {
                return seconds % 60 == 0 ? "\(seconds / 60)m ago" : "\(seconds / 60)m\(seconds % 60)s ago"
            }
            let minutes = (seconds % 3600) / 60
            return minutes == 0 ? "\(seconds / 3600)h ago" : "\(seconds / 3600)h\(minutes)m ago"
        }
        if time <= 0 { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: time))
    }

    /// Left-aligned columns two spaces apart; no trailing spaces.
    public static func table(_ rows: [[String]]) -> String {
        let count = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: count)
        for row in rows {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        var out = ""
        for row in rows {
            var line = ""
            for (column, cell) in row.enumerated() {
                line += cell
                if column < row.count - 1 {
                    line += String(repeating: " ", count: widths[column] - cell.count + 2)
                }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }
}

/// The formation before and after `swiftproc scale`, one line per group:
///
/// ```
/// app: 1 → 1
/// worker: 1 → 3
/// ```
public struct FormationDiff: Sendable, Equatable, CustomStringConvertible {
    public struct Entry: Sendable, Equatable {
        public var group: String
        public var before: Int
        public var after: Int

        public init(group: String, before: Int, after: Int) {
            self.group = group
            self.before = before
            self.after = after
        }

        public var changed: Bool { before != after }
    }

    public var entries: [Entry]

    /// `order` gives the groups' order (file order); groups only in `before`/`after` follow,
    /// by name. A group missing on one side counts 0 there.
    public init(order: [String] = [], before: [String: Int], after: [String: Int]) {
        var names: [String] = []
        var seen = Set<String>()
        for name in order where (before[name] != nil || after[name] != nil) && seen.insert(name).inserted {
            names.append(name)
        }
        for name in Set(before.keys).union(after.keys).sorted() where seen.insert(name).inserted {
            names.append(name)
        }
        entries = names.map { Entry(group: $0, before: before[$0] ?? 0, after: after[$0] ?? 0) }
    }

    /// From the desired counts of two status snapshots (group order from `after`, then `before`).
    public init(before: StatusSnapshot, after: StatusSnapshot) {
        self.init(order: after.groups.map(\.name) + before.groups.map(\.name),
                  before: Dictionary(before.groups.map { ($0.name, $0.desired) }, uniquingKeysWith: { a, _ in a }),
                  after: Dictionary(after.groups.map { ($0.name, $0.desired) }, uniquingKeysWith: { a, _ in a }))
    }

    public var lines: [String] { entries.map { "\($0.group): \($0.before) → \($0.after)" } }

    /// The lines joined with newlines (no trailing newline).
    public var description: String { lines.joined(separator: "\n") }
}
