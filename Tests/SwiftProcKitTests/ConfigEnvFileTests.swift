import Testing
@testable import SwiftProcKit

@Suite struct ConfigEnvFileTests {
    @Test func theCommonForms() throws {
        let text = """
        # secrets for local runs
        DATABASE_URL=postgres://localhost/shop_dev
        export SECRET_KEY_BASE=abc123

        SINGLE='literal $HOME \\n stays'
        DOUBLE="line1\\nline2 \\"quoted\\" back\\\\slash"
        SPACED = value with spaces   # a comment
        HASH=a#b
        EMPTY=
        QUOTED_COMMENT="x" # trailing comment
        """
        let vars = try EnvFile.parse(text, path: ".env")
        let dict = Dictionary(uniqueKeysWithValues: vars.map { ($0.name, $0.value) })
        #expect(vars.map(\.name) == ["DATABASE_URL", "SECRET_KEY_BASE", "SINGLE", "DOUBLE", "SPACED", "HASH", "EMPTY", "QUOTED_COMMENT"])
        #expect(dict["DATABASE_URL"] == "postgres://localhost/shop_dev")
        #expect(dict["SECRET_KEY_BASE"] == "abc123")
        #expect(dict["SINGLE"] == "literal $HOME \\n stays")
        #expect(dict["DOUBLE"] == "line1\nline2 \"quoted\" back\\slash")
        #expect(dict["SPACED"] == "value with spaces")
        #expect(dict["HASH"] == "a#b")
        #expect(dict["EMPTY"] == "")
        #expect(dict["QUOTED_COMMENT"] == "x")
    }

    @Test func multiLineQuotedValueAndCRLF() throws {
        let vars = try EnvFile.parse("KEY=\"-----BEGIN\nabc\n-----END\"\r\nNEXT=1\r\n", path: ".env")
        #expect(vars == [EnvVariable("KEY", "-----BEGIN\nabc\n-----END"), EnvVariable("NEXT", "1")])
    }

    @Test func laterDuplicateWinsInPlace() throws {
        let vars = try EnvFile.parse("A=1\nB=2\nA=3\n", path: ".env")
        #expect(vars == [EnvVariable("A", "3"), EnvVariable("B", "2")])
    }

    @Test func lineWithoutEqualsIsAnErrorWithColumn() {
        let error = configError { _ = try EnvFile.parse("A=1\nJUST_A_NAME\n", path: ".env") }
        #expect(error?.position?.description == ".env:2:12")
        #expect(error?.rendered == ".env:2:12: expected \"=\" after JUST_A_NAME (write JUST_A_NAME= for an empty value)\n    JUST_A_NAME\n               ^")
    }

    @Test func badNameUnterminatedQuoteAndTrailingGarbageAreErrors() {
        #expect(configError { _ = try EnvFile.parse("1BAD=x\n", path: "a.env") }?.position?.description == "a.env:1:1")
        let unterminated = configError { _ = try EnvFile.parse("OK=1\nKEY='open\n", path: ".env") }
        #expect(unterminated?.position?.description == ".env:2:5")
        #expect(unterminated?.message.contains("unterminated single-quoted") == true)
        #expect(configError { _ = try EnvFile.parse("K=\"v\" extra\n", path: ".env") }?.position?.description == ".env:1:7")
    }

    @Test func severalFilesLoadInOrderLaterWinning() throws {
        let app = try TempApp(["a.env": "A=1\nB=1\n", "b.env": "B=2\nC=2\n"])
        defer { app.cleanUp() }
        let vars = try EnvFile.load(["a.env", "b.env"], relativeTo: app.directory, required: true)
        #expect(vars == [EnvVariable("A", "1"), EnvVariable("B", "2"), EnvVariable("C", "2")])
    }

    @Test func missingNamedFileIsAnErrorButOptionalOneIsSkipped() throws {
        let app = try TempApp([:])
        defer { app.cleanUp() }
        #expect(configError { _ = try EnvFile.load(["nope.env"], relativeTo: app.directory, required: true) }
                == .fileNotFound("nope.env", role: "env file"))
        #expect(try EnvFile.load([".env"], relativeTo: app.directory, required: false) == [])
    }

    @Test func precedenceInheritedThenConfigThenDotenv() {
        let merged = Environment.merged(
            inherited: ["PATH": "/bin", "RAILS_ENV": "development", "PORT": "1"],
            config: [EnvVariable("RAILS_ENV", "production"), EnvVariable("PORT", "8080")],
            dotenv: [EnvVariable("PORT", "3000"), EnvVariable("SECRET", "s")])
        #expect(merged == ["PATH": "/bin", "RAILS_ENV": "production", "PORT": "3000", "SECRET": "s"])
    }
}
