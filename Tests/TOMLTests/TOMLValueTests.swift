import Testing
@testable import TOML

@Suite struct TOMLValueTests {
    @Test func dateTimeDescriptions() {
        let d = TOMLDate(year: 1979, month: 5, day: 27)
        #expect(d.description == "1979-05-27")
        #expect(TOMLTime(hour: 7, minute: 32, second: 0, nanosecond: 999_000_000).description == "07:32:00.999")
        #expect(TOMLDateTime(date: d, time: TOMLTime(hour: 0, minute: 32, second: 0), offset: -420).description
                == "1979-05-27T00:32:00-07:00")
        #expect(TOMLDateTime(date: d, time: TOMLTime(hour: 7, minute: 32, second: 0), offset: 0).description
                == "1979-05-27T07:32:00Z")
    }

    @Test func tableKeepsOrderAndLocations() {
        var t = TOMLTable()
        let here = SourceLocation(line: 2, column: 1)
        t.set(.string("b"), for: "zeta", keyLocation: here, valueLocation: SourceLocation(line: 2, column: 8))
        t.set(.integer(1), for: "alpha", keyLocation: SourceLocation(line: 3, column: 1), valueLocation: here)
        #expect(t.keys == ["zeta", "alpha"])
        #expect(t.entry("zeta")?.valueLocation == SourceLocation(line: 2, column: 8))
        #expect(t["alpha"] == .integer(1))
    }

    @Test func errorRendersWithCaret() {
        let e = TOMLError("expected '=' after key \"app\"", at: SourceLocation(line: 12, column: 5), sourceLine: "app \"x\"")
        #expect(e.rendered(path: "fly.toml") == "fly.toml:12:5: expected '=' after key \"app\"\n    app \"x\"\n        ^")
    }
}
