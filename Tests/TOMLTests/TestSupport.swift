import Testing
@testable import TOML

/// Decodes `text`, recording an issue (and returning an empty table) if it fails.
func decode(_ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> TOMLTable {
    do {
        return try TOMLTable(parsing: text)
    } catch {
        Issue.record("unexpected error: \(error.rendered(path: "test.toml"))", sourceLocation: sourceLocation)
        return TOMLTable()
    }
}

/// The error decoding `bytes` produces, or nil (recording an issue) if it decodes.
func decodeError(_ bytes: [UInt8], sourceLocation: Testing.SourceLocation = #_sourceLocation) -> TOMLError? {
    do {
        _ = try TOMLTable(parsing: bytes)
        Issue.record("expected a decoding error", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

func decodeError(_ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> TOMLError? {
    decodeError(Array(text.utf8), sourceLocation: sourceLocation)
}

/// The value at a dotted path of plain keys (`"a.b.c"`), following tables only.
func value(_ table: TOMLTable, _ path: String) -> TOMLValue? {
    var current: TOMLValue = .table(table)
    for part in path.split(separator: ".", omittingEmptySubsequences: false) {
        guard case .table(let t) = current, let next = t[String(part)] else { return nil }
        current = next
    }
    return current
}

func loc(_ line: Int, _ column: Int) -> TOML.SourceLocation {
    TOML.SourceLocation(line: line, column: column)
}
