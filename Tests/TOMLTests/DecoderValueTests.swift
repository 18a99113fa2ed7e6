import Testing
@testable import TOML

@Suite struct StringTests {
    @Test func basicStringEscapes() {
        let t = decode(#"s = "b\bt\tn\nf\fr\rq\"bs\\u\u00e9U\U0001F600""#)
        #expect(t["s"] == .string("b\u{08}t\tn\nf\u{0C}r\rq\"bs\\u\u{E9}U\u{1F600}"))
    }

    @Test func basicStringKeepsNonASCIIAndTab() {
        #expect(decode("s = \"caf\u{E9}\t\u{1F600}\"")["s"] == .string("caf\u{E9}\t\u{1F600}"))
    }

    @Test func literalStringHasNoEscapes() {
        #expect(decode(#"s = 'C:\Users\nodejs\templates'"#)["s"] == .string(#"C:\Users\nodejs\templates"#))
        #expect(decode("s = ''")["s"] == .string(""))
    }

    @Test func multilineBasicTrimsFirstNewlineAndHandlesLineEndingBackslash() {
        let t = decode("s = \"\"\"\nRoses are red\nViolets are blue\"\"\"\nj = \"\"\"\nThe quick brown \\\n\n\n  fox jumps \\   \n    over.\"\"\"\n")
        #expect(t["s"] == .string("Roses are red\nViolets are blue"))
        #expect(t["j"] == .string("The quick brown fox jumps over."))
    }

    @Test func multilineStringsMayEndWithQuotes() {
        let t = decode("a = \"\"\"x\"\"\"\"\nb = \"\"\"x\"\"\"\"\"\nc = '''y''''\nd = '''y'''''\ne = \"\"\"\"\"\"\"\nf = \"\"\"q\"\"q\"\"\"\n")
        #expect(t["a"] == .string("x\""))
        #expect(t["b"] == .string("x\"\""))
        #expect(t["c"] == .string("y'"))
        #expect(t["d"] == .string("y''"))
        #expect(t["e"] == .string("\""))
        #expect(t["f"] == .string("q\"\"q"))
    }

    @Test func multilineLiteral() {
        let t = decode("re = '''\nI [dw]on't need \\d{2} apples\n'''\n")
        #expect(t["re"] == .string("I [dw]on't need \\d{2} apples\n"))
    }

    @Test func crlfInMultilineStringBecomesLF() {
        let t = decode("s = \"\"\"\r\na\r\nb\"\"\"\r\nl = '''\r\nc\r\n'''\r\n")
        #expect(t["s"] == .string("a\nb"))
        #expect(t["l"] == .string("c\n"))
    }

    @Test func escapedLineEndingWithCRLF() {
        #expect(decode("s = \"\"\"a \\\r\n   b\"\"\"")["s"] == .string("a b"))
    }

    @Test(arguments: [
        (#"s = "\q""#, #"invalid escape "\q" in string"#),
        (#"s = "\x41""#, #"invalid escape "\x" in string"#),
        (#"s = "\uD800""#, #"invalid escape "\uD800" in string: not a Unicode scalar value"#),
        (#"s = "\U00110000""#, #"invalid escape "\U00110000" in string: not a Unicode scalar value"#),
        (#"s = "\u12""#, #"invalid escape "\u12" in string: expected 4 hexadecimal digits"#),
    ])
    func invalidEscapes(input: String, message: String) {
        #expect(decodeError(input)?.message == message)
    }

    @Test(arguments: [
        "s = \"a\u{0}b\"", "s = \"a\u{7F}b\"", "s = 'a\u{1F}b'", "s = \"\"\"a\u{0B}\"\"\"", "s = '''\u{7F}'''",
        "s = \"unterminated\n", "s = 'unterminated\n", "s = \"\"\"never closed", "s = '''never closed",
        "s = \"\"\"a\rb\"\"\"", "s = \"\"\"x\"\"\"\"\"\"", "\"\"\"key\"\"\" = 1", "s = \"a\\ b\"",
    ])
    func invalidStrings(input: String) {
        #expect(decodeError(input) != nil)
    }

    @Test func controlCharacterMessage() {
        let e = decodeError("s = \"a\u{7F}b\"")
        #expect(e?.message == "control character U+007F is not allowed in a string; use an escape")
        #expect(e?.location == loc(1, 7))
    }
}

@Suite struct NumberTests {
    @Test func integers() {
        let t = decode("""
            a = 99
            b = +17
            c = -17
            d = 0
            e = -0
            f = 1_000_000
            g = 0xDEAD_beef
            h = 0o755
            i = 0b1101_0110
            j = 9223372036854775807
            k = -9223372036854775808
            l = 0x7FFFFFFFFFFFFFFF
            m = 0x0000_00ff
            """)
        #expect(t["a"] == .integer(99))
        #expect(t["b"] == .integer(17))
        #expect(t["c"] == .integer(-17))
        #expect(t["d"] == .integer(0))
        #expect(t["e"] == .integer(0))
        #expect(t["f"] == .integer(1_000_000))
        #expect(t["g"] == .integer(0xDEAD_BEEF))
        #expect(t["h"] == .integer(0o755))
        #expect(t["i"] == .integer(0b1101_0110))
        #expect(t["j"] == .integer(.max))
        #expect(t["k"] == .integer(.min))
        #expect(t["l"] == .integer(.max))
        #expect(t["m"] == .integer(255))
    }

    @Test func integerOverflowMessages() {
        #expect(decodeError("n = 9223372036854775808")?.message == "integer 9223372036854775808 does not fit in 64 bits")
        #expect(decodeError("n = -9223372036854775809")?.message == "integer -9223372036854775809 does not fit in 64 bits")
        #expect(decodeError("n = 0x8000000000000000")?.message == "integer 0x8000000000000000 does not fit in 64 bits")
        #expect(decodeError("n = 99999999999999999999999")?.location == loc(1, 5))
    }

    @Test(arguments: [
        "n = 01", "n = -01", "n = 1__0", "n = _1", "n = 1_", "n = +0x1", "n = -0b1", "n = 0x", "n = 0x_1",
        "n = 0b2", "n = 0o8", "n = 0xG", "n = 1.", "n = .1", "n = +.1", "n = 1.e5", "n = 1e", "n = 1e+",
        "n = 1._5", "n = 1_.5", "n = 1e_5", "n = 1e5_", "n = 00.1", "n = 1.2.3", "n = 12abc", "n = 0X1F",
        "n = Inf", "n = NaN", "n = infinity", "n = +-1", "n = 1e400", "n = 1_000_", "n = 0_0",
    ])
    func invalidNumbers(input: String) {
        #expect(decodeError(input) != nil)
    }

    @Test func floats() {
        let t = decode("""
            a = +1.0
            b = 3.1415
            c = -0.01
            d = 5e+22
            e = 1e06
            f = -2E-2
            g = 6.626e-34
            h = 224_617.445_991_228
            i = +0.0
            j = -0.0
            k = 0e0
            l = 1.7976931348623157e308
            """)
        #expect(t["a"] == .float(1.0))
        #expect(t["b"] == .float(3.1415))
        #expect(t["c"] == .float(-0.01))
        #expect(t["d"] == .float(5e22))
        #expect(t["e"] == .float(1e6))
        #expect(t["f"] == .float(-2e-2))
        #expect(t["g"] == .float(6.626e-34))
        #expect(t["h"] == .float(224_617.445_991_228))
        #expect(t["i"] == .float(0))
        #expect(t["j"]?.floatValue?.sign == .minus)
        #expect(t["k"] == .float(0))
        #expect(t["l"] == .float(.greatestFiniteMagnitude))
    }

    @Test func infAndNan() {
        let t = decode("a = inf\nb = +inf\nc = -inf\nd = nan\ne = +nan\nf = -nan\ng = [inf, nan]")
        #expect(t["a"] == .float(.infinity))
        #expect(t["b"] == .float(.infinity))
        #expect(t["c"] == .float(-.infinity))
        #expect(t["d"]?.floatValue?.isNaN == true)
        #expect(t["e"]?.floatValue?.isNaN == true)
        #expect(t["f"]?.floatValue?.isNaN == true)
        #expect(t["g"]?.arrayValue?.count == 2)
    }

    @Test func booleans() {
        let t = decode("a = true\nb = false")
        #expect(t["a"] == .boolean(true))
        #expect(t["b"] == .boolean(false))
        #expect(decodeError("a = True")?.message == "invalid value True (strings must be in quotes)")
        #expect(decodeError("a = truex") != nil)
        #expect(decodeError("a = hello")?.message == "invalid value hello (strings must be in quotes)")
    }
}

@Suite struct DateTimeTests {
    let date = TOMLDate(year: 1979, month: 5, day: 27)

    @Test func offsetDateTimes() {
        let t = decode("""
            a = 1979-05-27T07:32:00Z
            b = 1979-05-27T00:32:00-07:00
            c = 1979-05-27T00:32:00.999999+05:30
            d = 1979-05-27 07:32:00z
            e = 1979-05-27t07:32:00-00:00
            """)
        #expect(t["a"] == .dateTime(TOMLDateTime(date: date, time: TOMLTime(hour: 7, minute: 32, second: 0), offset: 0)))
        #expect(t["b"] == .dateTime(TOMLDateTime(date: date, time: TOMLTime(hour: 0, minute: 32, second: 0), offset: -420)))
        #expect(t["c"] == .dateTime(TOMLDateTime(date: date, time: TOMLTime(hour: 0, minute: 32, second: 0, nanosecond: 999_999_000), offset: 330)))
        #expect(t["d"] == t["a"])
        #expect(t["e"] == t["a"])
    }

    @Test func localForms() {
        let t = decode("""
            ldt = 1979-05-27T07:32:00
            ldt2 = 1979-05-27 00:32:00.123456789123
            ld = 1979-05-27
            lt = 07:32:00
            lt2 = 00:32:00.5
            leap = 2024-02-29
            leapsec = 1990-12-31T23:59:60Z
            """)
        #expect(t["ldt"] == .dateTime(TOMLDateTime(date: date, time: TOMLTime(hour: 7, minute: 32, second: 0))))
        #expect(t["ldt2"] == .dateTime(TOMLDateTime(date: date, time: TOMLTime(hour: 0, minute: 32, second: 0, nanosecond: 123_456_789))))
        #expect(t["ld"] == .localDate(date))
        #expect(t["lt"] == .localTime(TOMLTime(hour: 7, minute: 32, second: 0)))
        #expect(t["lt2"] == .localTime(TOMLTime(hour: 0, minute: 32, second: 0, nanosecond: 500_000_000)))
        #expect(t["leap"] == .localDate(TOMLDate(year: 2024, month: 2, day: 29)))
        #expect(t["leapsec"]?.kindDescription == "a date-time")
    }

    @Test func dateFollowedByCommentOrInArray() {
        let t = decode("d = 1979-05-27 # birthday\na = [1979-05-27, 07:32:00 ]")
        #expect(t["d"] == .localDate(date))
        #expect(t["a"] == .array([.localDate(date), .localTime(TOMLTime(hour: 7, minute: 32, second: 0))]))
    }

    @Test(arguments: [
        ("d = 2023-02-29", "day 29 is out of range for that month (01–28)"),
        ("d = 1900-02-29", "day 29 is out of range for that month (01–28)"),
        ("d = 2023-13-01", "month 13 is out of range (01–12)"),
        ("d = 2023-00-01", "month 0 is out of range (01–12)"),
        ("d = 2023-04-31", "day 31 is out of range for that month (01–30)"),
        ("d = 2023-01-01T24:00:00", "hour 24 is out of range (00–23)"),
        ("d = 2023-01-01T23:60:00", "minute 60 is out of range (00–59)"),
        ("t = 23:59:61", "second 61 is out of range (00–60)"),
        ("t = 07:32", "seconds are required (HH:MM:SS)"),
        ("d = 2023-01-01T00:00:00+24:00", "UTC offset is out of range"),
        ("d = 2023-01-01T00:00:00+01:60", "UTC offset is out of range"),
    ])
    func rangeErrors(input: String, reason: String) {
        let e = decodeError(input)
        #expect(e?.message.hasSuffix(reason) == true, "\(e?.message ?? "no error")")
        #expect(e?.location.column == 5)
    }

    @Test(arguments: [
        "d = 1979-5-27", "d = 1979-05-27T", "d = 1979-05-27T07:32", "d = 1979-05-27T07:32:00.", "d = 07:32:00Z",
        "d = 1979-05-27T07:32:00+0700", "d = 1979-05-27X", "d = 10000-01-01", "d = 1979-05-27T7:32:00",
        "d = 1979-05-27 07:32", "t = 07:32:00+01:00",
    ])
    func malformed(input: String) {
        #expect(decodeError(input) != nil)
    }
}
