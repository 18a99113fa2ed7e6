import Testing
@testable import TOML

@Suite struct StructureTests {
    @Test func arrays() {
        let t = decode("""
            a = []
            b = [ 1, 2, 3, ]
            c = [ "x", 1, 2.5, [true], { k = 1 } ]
            d = [
              1, # one
              # just a comment
              2
              ,3
            ]
            e = [[1, 2], [3]]
            """)
        #expect(t["a"] == .array([]))
        #expect(t["b"] == .array([.integer(1), .integer(2), .integer(3)]))
        var k = TOMLTable()
        k.set(.integer(1), for: "k", keyLocation: loc(1, 1), valueLocation: loc(1, 1))
        #expect(t["c"] == .array([.string("x"), .integer(1), .float(2.5), .array([.boolean(true)]), .table(k)]))
        #expect(t["d"] == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(t["e"] == .array([.array([.integer(1), .integer(2)]), .array([.integer(3)])]))
    }

    @Test(arguments: ["a = [1 2]", "a = [,]", "a = [1,,2]", "a = [1", "a = [1,\n", "a = [1 # c ]"])
    func invalidArrays(input: String) {
        #expect(decodeError(input) != nil)
    }

    @Test func inlineTables() {
        let t = decode(#"name = { first = "Tom", last = "Preston-Werner", a.b = 1, a.c = [1,\#n2] }"# + "\nempty = {}")
        #expect(value(t, "name.first") == .string("Tom"))
        #expect(value(t, "name.a.b") == .integer(1))
        #expect(value(t, "name.a.c") == .array([.integer(1), .integer(2)]))
        #expect(t["name"]?.tableValue?.keys == ["first", "last", "a"])
        #expect(t["empty"] == .table(TOMLTable()))
    }

    @Test(arguments: [
        "a = {b = 1,}", "a = {b = 1\n}", "a = {\nb = 1}", "a = {b = 1, b = 2}", "a = {b.c = 1, b = 2}",
        "a = {b = {c = 1}, b.d = 2}", "a = {b = 1}\na.c = 2", "a = {b = 1}\n[a]", "a = {b = 1}\n[a.c]",
        "a = {b = 1 c = 2}", "a = {,}", "a = {b = }", "a = {b = 1", "a = {b = 1} # ok\n[[a]]",
    ])
    func invalidInlineTables(input: String) {
        #expect(decodeError(input) != nil)
    }

    @Test func trailingCommaMessage() {
        #expect(decodeError("a = {b = 1,}")?.message == "a trailing comma is not allowed in an inline table")
    }

    @Test func arraysOfTables() {
        let t = decode("""
            [[fruits]]
            name = "apple"

            [fruits.physical]
            color = "red"

            [[fruits.varieties]]
            name = "red delicious"

            [[fruits.varieties]]
            name = "granny smith"

            [[fruits]]
            name = "banana"

            [[fruits.varieties]]
            name = "plantain"
            """)
        let fruits = t["fruits"]?.arrayValue ?? []
        #expect(fruits.count == 2)
        guard fruits.count == 2, case .table(let apple) = fruits[0], case .table(let banana) = fruits[1] else { return }
        #expect(value(apple, "physical.color") == .string("red"))
        #expect(apple["varieties"]?.arrayValue?.count == 2)
        #expect(banana["varieties"]?.arrayValue?.count == 1)
        #expect(banana["name"] == .string("banana"))
        #expect(apple.location == loc(1, 1))
        #expect(banana.location == loc(13, 1))
    }

    @Test func dottedKeysAndQuotedKeys() {
        let t = decode("""
            name = "Orange"
            physical.color = "orange"
            physical.shape = "round"
            site."google.com" = true
            "quoted key" = 1
            'literal key' = 2
            "" = 3
            fruit . flavor = "sweet"
            1234 = "bare digits"
            a-b_c = 4
            3.14159 = "pi"
            """)
        #expect(value(t, "physical.color") == .string("orange"))
        #expect(t["site"]?.tableValue?["google.com"] == .boolean(true))
        #expect(t["quoted key"] == .integer(1))
        #expect(t["literal key"] == .integer(2))
        #expect(t[""] == .integer(3))
        #expect(value(t, "fruit.flavor") == .string("sweet"))
        #expect(t["1234"] == .string("bare digits"))
        #expect(t["a-b_c"] == .integer(4))
        #expect(value(t, "3.14159") == .string("pi"))
    }

    @Test func subTablesUnderDottedKeys() {
        let t = decode("""
            [fruit]
            apple.color = "red"
            apple.taste.sweet = true

            [fruit.apple.texture]
            smooth = true
            """)
        #expect(value(t, "fruit.apple.texture.smooth") == .boolean(true))
        #expect(value(t, "fruit.apple.taste.sweet") == .boolean(true))
    }

    @Test func implicitTableDefinedLater() {
        let t = decode("[x.y.z.w]\na = 1\n[x]\nb = 2")
        #expect(value(t, "x.y.z.w.a") == .integer(1))
        #expect(value(t, "x.b") == .integer(2))
        #expect(t["x"]?.tableValue?.keys == ["y", "b"])
        #expect(t.entry("x")?.valueLocation == loc(3, 1))
    }

    @Test func keyOrderIsDocumentOrder() {
        let t = decode("zeta = 1\nalpha = 2\nmid.x = 3\n[beta]\n[aardvark]\n[[omega]]\n[gamma]")
        #expect(t.keys == ["zeta", "alpha", "mid", "beta", "aardvark", "omega", "gamma"])
        let many = decode((0..<50).reversed().map { "k\($0) = \($0)" }.joined(separator: "\n"))
        #expect(many.keys == (0..<50).reversed().map { "k\($0)" })
        #expect(many["k7"] == .integer(7))
    }

    @Test func keyAndValueLocations() {
        let t = decode("# comment\n  port = 8080\n[http_service]\n\"é\" = \"ü\"\na.b = 1\n")
        #expect(t.entry("port")?.keyLocation == loc(2, 3))
        #expect(t.entry("port")?.valueLocation == loc(2, 10))
        let http = t["http_service"]?.tableValue
        #expect(http?.location == loc(3, 1))
        #expect(t.entry("http_service")?.keyLocation == loc(3, 2))
        #expect(http?.entry("é")?.valueLocation == loc(4, 7))
        #expect(http?.entry("a")?.keyLocation == loc(5, 1))
        #expect(http?["a"]?.tableValue?.entry("b")?.keyLocation == loc(5, 3))
        #expect(http?["a"]?.tableValue?.entry("b")?.valueLocation == loc(5, 7))
        #expect(t.location == nil)
    }

    @Test(arguments: [
        ("a = 1\na = 2", "duplicate key \"a\" (first defined at 1:1)"),
        ("[t]\nport = 1\n\n  port = 2", "duplicate key \"port\" (first defined at 2:1)"),
        ("[processes]\n[processes]", "table [processes] is defined twice (first defined at 1:1)"),
        ("a.b.c = 1\n[a.b]", "table [a.b] was already defined by dotted keys at 1:3"),
        ("a.b = 1\n[a.b]", "[a.b] cannot be defined: key \"a.b\" is already an integer (defined at 1:3)"),
    ])
    func redefinitionMessages(input: String, message: String) {
        #expect(decodeError(input)?.message == message)
    }

    @Test(arguments: [
        "a = 1\na = 2",                          // duplicate key
        "a = 1\na.b = 2",                         // key is not a table
        "a.b = 1\na = 2",                         // table by dotted keys, then a value
        "a.b = 1\na.b = 2",                       // duplicate dotted key
        "a.b.c = 1\na.b = 2",
        "[a]\n[a]",                               // table twice
        "[a]\nb = 1\n[a.b]",                      // [a.b] after a.b = 1
        "a.b = 1\n[a]",                           // [a] after dotted keys defined it
        "[a]\nb.c = 1\n[a.b]",
        "[a.b.c]\nz = 9\n[a]\nb.c.t = 1",         // dotted keys extending header-defined tables
        "[[a.b]]\n[a]\nb.y = 2",
        "[a.b]\n[a]\n[a]",
        "a = {}\n[a.b]",                          // extending an inline table
        "a = {b = 1}\na.c = 2",
        "a = []\n[[a]]",                          // appending to a static array
        "a = [{b = 1}]\n[[a]]",
        "a = [{b = 1}]\n[a.c]",
        "[a]\n[[a]]",                             // array of tables over a table
        "[[a]]\n[a]",                             // table over an array of tables
        "[[a.b]]\n[[a]]",                         // implicit table, then array of tables
        "a = 1\n[a.b]",
        "[a]\nb = 1\n[[a.b]]",
        "a = true\n[[a]]",
        "[a]\n\"a\".b = 1\n[a.a]",
    ])
    func redefinitions(input: String) {
        #expect(decodeError(input) != nil)
    }

    @Test func validRedefinitionLookalikes() {
        let t = decode("[a.b]\nc = 1\n[a]\nd = 2\n[[x]]\ny.z = 1\n[[x]]\ny.z = 2\n[x.w]\nq = 1")
        #expect(value(t, "a.b.c") == .integer(1))
        #expect(value(t, "a.d") == .integer(2))
        #expect(t["x"]?.arrayValue?.count == 2)
        guard case .table(let second)? = t["x"]?.arrayValue?.last else { Issue.record("no x"); return }
        #expect(value(second, "w.q") == .integer(1))
        #expect(value(second, "y.z") == .integer(2))
    }

    @Test func headerWhitespaceAndQuotedParts() {
        let t = decode("[ a . \"b c\" . 'd' ]\nx = 1\n[[ e ]]\n")
        #expect(value(t, "a.b c.d.x") == .integer(1))
        #expect(t["e"]?.arrayValue?.count == 1)
        #expect(decodeError("[[a] ]") != nil)
        #expect(decodeError("[ [a]]") != nil)
        #expect(decodeError("[a]b = 1") != nil)
        #expect(decodeError("[]") != nil)
        #expect(decodeError("[a.]") != nil)
    }
}

@Suite struct SyntaxTests {
    @Test func missingEqualsAtKnownPosition() {
        let text = String(repeating: "# line\n", count: 11) + "app \"x\"\n"
        let e = decodeError(text)
        #expect(e?.message == "expected '=' after key \"app\"")
        #expect(e?.location == loc(12, 5))
        #expect(e?.sourceLine == "app \"x\"")
        #expect(e?.rendered(path: "fly.toml") == "fly.toml:12:5: expected '=' after key \"app\"\n    app \"x\"\n        ^")
    }

    @Test func errorColumnsCountUnicodeScalars() {
        let e = decodeError("\"ключ\" = 1 x")
        #expect(e?.location == loc(1, 12))
        #expect(e?.message == "expected a newline after the value, found 'x'")
    }

    @Test func valueOnSameLineAsAnother() {
        #expect(decodeError("a = 1 b = 2")?.location == loc(1, 7))
        #expect(decodeError("a = \n1")?.message == "expected a value after '=', found a newline")
        #expect(decodeError("= 1")?.message == "expected a key, found '='")
    }

    @Test func crlfLineEndings() {
        let t = decode("a = 1\r\n[b]\r\nc = \"x\" # comment\r\n\r\nd = [\r\n1,\r\n]\r\n")
        #expect(t["a"] == .integer(1))
        #expect(value(t, "b.c") == .string("x"))
        #expect(value(t, "b.d") == .array([.integer(1)]))
        #expect(t["b"]?.tableValue?.entry("d")?.keyLocation == loc(5, 1))
    }

    @Test func loneCarriageReturnIsAnError() {
        let e = decodeError("a = 1\rb = 2")
        #expect(e?.location == loc(1, 6))
        #expect(decodeError("# comment\r") != nil)
        #expect(decodeError("a = [1,\r2]") != nil)
    }

    @Test func byteOrderMarkIsSkipped() {
        let t = try? TOMLTable(parsing: [0xEF, 0xBB, 0xBF] + Array("a = 1\nb c".utf8))
        #expect(t == nil)
        let e = decodeError([0xEF, 0xBB, 0xBF] + Array("a = 1\nb c".utf8))
        #expect(e?.location == loc(2, 3))
        let ok = (try? TOMLTable(parsing: [0xEF, 0xBB, 0xBF] + Array("a = 1".utf8)))?["a"]
        #expect(ok == .integer(1))
    }

    @Test func invalidUTF8HasLocation() {
        let e = decodeError(Array("a = 1\nb = \"x".utf8) + [0xC3, 0x28] + Array("\"\n".utf8))
        #expect(e?.location == loc(2, 7))
        #expect(e?.message.contains("invalid UTF-8") == true)
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80]] {
            #expect(decodeError(Array("# ".utf8) + bad) != nil)
        }
    }

    @Test func controlCharactersInComments() {
        #expect(decodeError("# a\u{0}b")?.message == "control character U+0000 is not allowed in a comment")
        #expect(decodeError("# \u{7F}") != nil)
        #expect(decode("# tab\tand é are fine\na = 1")["a"] == .integer(1))
    }

    @Test func emptyAndWhitespaceDocuments() {
        #expect(decode("").isEmpty)
        #expect(decode(" \t\n\r\n# only a comment").isEmpty)
    }

    @Test func stringEntryPointMatchesBytes() throws {
        let text = "a = \"é\"\n[b]\nc = 1"
        #expect(try TOMLTable(parsing: text) == TOMLTable(parsing: Array(text.utf8)))
    }
}
