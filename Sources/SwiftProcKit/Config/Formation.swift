/// How many instances of each process group run: `app=1,worker=3`.
///
/// Ordered like the configuration's groups, so output and start-up follow the file.
public struct Formation: Sendable, Equatable, Codable {
    /// One group's count.
    public struct Entry: Sendable, Equatable, Codable {
        public var group: String
        public var count: Int

        public init(group: String, count: Int) {
            self.group = group
            self.count = count
        }
    }

    public private(set) var entries: [Entry]

    public init(_ entries: [Entry] = []) {
        self.entries = entries
    }

    /// One instance of each group: what `start` runs when no formation is given (foreman's `all=1`).
    public static func oneOfEach(_ groups: [String]) -> Formation {
        Formation(groups.map { Entry(group: $0, count: 1) })
    }

    /// The count for `group`, 0 when it is not in the formation; setting a new group appends it.
    public subscript(group: String) -> Int {
        get { entries.first { $0.group == group }?.count ?? 0 }
        set {
            if let i = entries.firstIndex(where: { $0.group == group }) {
                entries[i].count = newValue
            } else {
                entries.append(Entry(group: group, count: newValue))
            }
        }
    }

    public var groups: [String] { entries.map(\.group) }
    /// The number of processes the formation runs.
    public var total: Int { entries.reduce(0) { $0 + $1.count } }

    /// `app=1,worker=3` — the spelling foreman's `-m` and the command line use.
    public var description: String { entries.map { "\($0.group)=\($0.count)" }.joined(separator: ",") }

    /// Parses an absolute formation as foreman's `-m` does: `app=3,worker=3`, `app=3 worker=3`
    /// (several argv words are fine, and may be mixed), `all=2`. Counts may be zero.
    ///
    /// The result has every known group in `known` order. A group not mentioned gets the `all=`
    /// count when one was given, else 0 — naming some groups means "run these" (as in foreman).
    /// No words at all means one of each.
    ///
    /// - Throws: ``ConfigError/unknownProcess(_:suggestions:known:at:)`` for a name that is not a
    ///   group, ``ConfigError/invalidFormation(word:reason:known:)`` for a negative, relative or
    ///   non-numeric count or a word without `=`. Both list the known names.
    public static func parse(_ words: [String], known: [String]) throws(ConfigError) -> Formation {
        let tokens = formationTokens(words)
        if tokens.isEmpty { return oneOfEach(known) }
        var allCount: Int?
        var specific: [(String, Int)] = []
        for token in tokens {
            let (name, countText) = try splitToken(token, known: known)
            guard !countText.isEmpty, countText.allSatisfy(\.isASCIIDigit), let count = Int(countText),
                  count <= SupervisorPlan.maximumPerGroup else {
                let reason: String
                if countText.hasPrefix("-"), Int(countText) != nil {
                    reason = "a count cannot be negative"
                } else if countText.hasPrefix("+"), Int(countText.dropFirst()) != nil {
                    reason = "a relative count (+n/-n) only works when scaling a running formation"
                } else if !countText.isEmpty, countText.allSatisfy(\.isASCIIDigit) {
                    reason = "at most \(SupervisorPlan.maximumPerGroup) instances per group (each group has 100 ports)"
                } else {
                    reason = "the count must be a whole number ≥ 0"
                }
                throw .invalidFormation(word: token, reason: reason, known: known)
            }
            if name == "all" && !known.contains("all") {
                allCount = count
            } else {
                try requireKnown(name, known: known)
                specific.append((name, count))
            }
        }
        var formation = Formation(known.map { Entry(group: $0, count: allCount ?? 0) })
        for (name, count) in specific { formation[name] = count }
        return formation
    }
}

/// A change to a running formation, as `fly scale count` spells it: `worker=3` sets a count,
/// `worker=+1` / `app=-1` adjust it, and a bare `3` sets the default group.
public struct FormationChange: Sendable, Equatable, Codable {
    /// What happens to one group's count.
    public enum Adjustment: Sendable, Equatable, Codable {
        /// Set the count to this value.
        case set(Int)
        /// Add this (possibly negative) amount; the result never goes below 0.
        case add(Int)
    }

    public struct Item: Sendable, Equatable, Codable {
        public var group: String
        public var adjustment: Adjustment

        public init(group: String, adjustment: Adjustment) {
            self.group = group
            self.adjustment = adjustment
        }
    }

    public var items: [Item]

    public init(_ items: [Item]) {
        self.items = items
    }

    /// Parses `worker=3`, `worker=+1 app=-1`, `all=+1`, or a bare count (`3`, `+1`, `-1`) for
    /// `defaultGroup` (when given), in words separated by spaces or commas. Items apply in the
    /// order written. Amounts above ``SupervisorPlan/maximumPerGroup`` are refused here, so no
    /// arithmetic on them can overflow.
    ///
    /// - Throws: ``ConfigError/unknownProcess(_:suggestions:known:at:)`` for a name that is not a
    ///   group; ``ConfigError/invalidFormation(word:reason:known:)`` for a malformed word, a
    ///   negative absolute count, or no words at all.
    public static func parse(_ words: [String], known: [String], defaultGroup: String? = nil) throws(ConfigError) -> FormationChange {
        let tokens = formationTokens(words)
        if tokens.isEmpty {
            throw .invalidFormation(word: "", reason: "give at least one name=count (or name=+n, name=-n)", known: known)
        }
        var items: [Item] = []
        for token in tokens {
            let name: String, countText: String
            if let defaultGroup, let first = token.first, first == "+" || first == "-" || first.isASCIIDigit,
               token.dropFirst().allSatisfy(\.isASCIIDigit) {
                (name, countText) = (defaultGroup, token)
            } else {
                (name, countText) = try splitToken(token, known: known)
            }
            let adjustment: Adjustment
            let sign = countText.first
            let digits = (sign == "+" || sign == "-") ? String(countText.dropFirst()) : countText
            guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else {
                throw .invalidFormation(word: token, reason: "the count must be a whole number, or +n / -n to change it", known: known)
            }
            guard let amount = Int(digits), amount <= SupervisorPlan.maximumPerGroup else {
                throw .invalidFormation(word: token, reason: "at most \(SupervisorPlan.maximumPerGroup) instances per group", known: known)
            }
            switch sign {
            case "+": adjustment = .add(amount)
            case "-": adjustment = .add(-amount)
            default: adjustment = .set(amount)
            }
            if name == "all" && !known.contains("all") {
                items += known.map { Item(group: $0, adjustment: adjustment) }
            } else {
                try requireKnown(name, known: known)
                items.append(Item(group: name, adjustment: adjustment))
            }
        }
        return FormationChange(items)
    }

    /// The formation after this change; counts never go below 0, and a group the formation did
    /// not list starts from 0. Sums are clamped, so repeated `+N` never overflows; whether the
    /// result may run is ``SupervisorPlan/validate(_:proxyPorts:)``'s call.
    public func applied(to formation: Formation) -> Formation {
        var result = formation
        for item in items {
            switch item.adjustment {
            case .set(let n): result[item.group] = max(0, n)
            case .add(let d):
                let (sum, overflow) = result[item.group].addingReportingOverflow(d)
                result[item.group] = overflow ? (d > 0 ? Int.max : 0) : max(0, sum)
            }
        }
        return result
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

/// The `name=count` pieces of argv words split on commas and whitespace.
private func formationTokens(_ words: [String]) -> [String] {
    words.flatMap { word in
        word.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
    }
}

private func splitToken(_ token: String, known: [String]) throws(ConfigError) -> (String, String) {
    guard let eq = token.firstIndex(of: "="), eq != token.startIndex else {
        throw .invalidFormation(word: token, reason: "expected name=count, like app=2", known: known)
    }
    return (String(token[..<eq]), String(token[token.index(after: eq)...]))
}

private func requireKnown(_ name: String, known: [String]) throws(ConfigError) {
    guard known.contains(name) else {
        throw .unknownProcess(name, suggestions: Suggestions.closest(to: name, among: known), known: known)
    }
}

/// Foreman's port scheme: each group gets a block of 100 ports from `base` in file order, and
/// each instance the next port in its block (web.1 = 5000, web.2 = 5001, worker.1 = 5100).
///
/// Predictable ports are the point: a developer can bookmark `localhost:5000` and know it is
/// `web.1` on every start.
public struct PortPlan: Sendable, Equatable {
    /// Foreman's and honcho's default.
    public static let defaultBase = 5000

    public var base: Int
    /// Group names in file order; a group's position picks its block.
    public var groups: [String]

    public init(base: Int = PortPlan.defaultBase, groups: [String]) {
        self.base = base
        self.groups = groups
    }

    /// The port for instance `instance` (1-based, as in `web.1`) of `group`, or `nil` for a group
    /// the plan does not know.
    public func port(group: String, instance: Int) -> Int? {
        guard let position = groups.firstIndex(of: group) else { return nil }
        return PortPlan.port(base: base, groupPosition: position, instance: instance)
    }

    /// The ports of the first `count` instances of `group`.
    public func ports(group: String, count: Int) -> [Int] {
        guard count > 0 else { return [] }
        return (1...count).compactMap { port(group: group, instance: $0) }
    }

    /// The pure rule: `base + 100 × groupPosition + (instance − 1)`.
    public static func port(base: Int, groupPosition: Int, instance: Int) -> Int {
        base + 100 * groupPosition + (instance - 1)
    }
}
