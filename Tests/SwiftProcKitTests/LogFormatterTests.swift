import Foundation
import Testing
import SwiftProcKit

/// `HH:MM:SS` of `time` in the local zone, computed independently with Calendar.
private func clock(_ time: Double) -> String {
    let c = Calendar.current.dateComponents([.hour, .minute, .second], from: Date(timeIntervalSince1970: time))
    return String(format: "%02d:%02d:%02d", c.hour!, c.minute!, c.second!)
}

private func record(_ source: String, _ group: String, _ color: Int, _ text: String, time: Double = 1_700_000_000.75) -> LogRecord {
    LogRecord(time: time, source: source, group: group, colorIndex: color, text: Array(text.utf8))
}

private func line(_ f: inout LogFormatter, _ r: LogRecord) -> String { String(decoding: f.format(r), as: UTF8.self) }

@Suite struct LogFormatterTests {
    let t = 1_700_000_000.75

    @Test func plainWithTimestamps() {
        var f = LogFormatter(style: LogStyle(color: false))
        #expect(line(&f, record("app.1", "app", 0, "hello")) == "\(clock(t)) app.1  | hello\n")
        #expect(line(&f, record("system", "system", -1, "started")) == "\(clock(t)) system | started\n")
    }

    @Test func plainWithoutTimestamps() {
        var f = LogFormatter(style: LogStyle(color: false, timestamps: false))
        #expect(line(&f, record("app.1", "app", 3, "hello")) == "app.1  | hello\n")
        #expect(line(&f, record("app.1", "app", 3, "")) == "app.1  | \n")
    }

    @Test func colourCoversThePrefixAndIsResetBeforeTheText() {
        var f = LogFormatter(style: LogStyle(color: true))
        #expect(line(&f, record("app.1", "app", 0, "hi \u{1B}[1mbold")) == "\u{1B}[36m\(clock(t)) app.1  |\u{1B}[0m hi \u{1B}[1mbold\n")
        var g = LogFormatter(style: LogStyle(color: true, timestamps: false))
        #expect(line(&g, record("web.1", "web", 1, "x")) == "\u{1B}[33mweb.1  |\u{1B}[0m x\n")
        // system (colorIndex < 0) stays uncoloured.
        #expect(line(&g, record("system", "system", -1, "boot")) == "system | boot\n")
    }

    @Test func coloursCycleInForemanOrderThenBright() {
        let codes = (0..<13).map { LogFormatter.colorCode(for: $0) }
        #expect(codes == [36, 33, 32, 35, 31, 34, 96, 93, 92, 95, 91, 94, 36])
        #expect(LogFormatter.colorCode(for: -1) == nil)
    }

    @Test func paddingGrowsWithWiderNames() {
        var f = LogFormatter(style: LogStyle(color: false, timestamps: false))
        #expect(f.nameWidth == 6)
        #expect(line(&f, record("a.1", "a", 0, "x")) == "a.1    | x\n")
        let grew = f.register(name: "worker.10")
        let grewAgain = f.register(name: "web.2")
        #expect(grew && !grewAgain)
        #expect(f.nameWidth == 9)
        #expect(line(&f, record("a.1", "a", 0, "x")) == "a.1       | x\n")
        // A record with a wider source widens the column itself.
        #expect(line(&f, record("scheduler.12", "scheduler", 2, "y")) == "scheduler.12 | y\n")
        #expect(line(&f, record("system", "system", -1, "z")) == "system       | z\n")
        let g = LogFormatter(style: LogStyle(color: false), names: ["app.1", "background.1"])
        #expect(g.nameWidth == 12)
    }

    @Test func invalidUTF8TextIsCopiedExactly() {
        var f = LogFormatter(style: LogStyle(color: false, timestamps: false))
        let r = LogRecord(time: t, source: "app.1", group: "app", colorIndex: 0, text: [0xFF, 0xC3, 0x28])
        let bytes = f.format(r)
        #expect(bytes == Array("app.1  | ".utf8) + [0xFF, 0xC3, 0x28, 0x0A])
    }

    @Test func clockFollowsEachRecordsSecond() {
        var f = LogFormatter(style: LogStyle(color: false))
        for time in [t, t + 1, t + 3600.2, t - 86_400, t] {
            #expect(line(&f, record("app.1", "app", 0, "x", time: time)) == "\(clock(time)) app.1  | x\n")
        }
    }
}
