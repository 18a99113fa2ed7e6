import Testing
@testable import SwiftProcKit

@Suite struct ConfigProcfileTests {
    @Test func railsProcfileWithCommentsBlankLinesAndRelease() throws {
        let text = """
        # Procfile for the shop
        web: bundle exec puma -C config/puma.rb

        worker:   bundle exec sidekiq -q default -q mailers
        release: bin/rails db:migrate
          indented: not an entry
        #disabled: rake something
        this line is prose
        """
        let p = try Procfile.parse(text, path: "Procfile")
        #expect(p.entries.map(\.name) == ["web", "worker"])
        #expect(p.entries[0].command == "bundle exec puma -C config/puma.rb")
        #expect(p.entries[1].command == "bundle exec sidekiq -q default -q mailers")
        #expect(p.entries[1].line == 4)
        #expect(p.releaseCommand == "bin/rails db:migrate")
    }

    @Test func weirdWhitespaceCRLFAndTabs() throws {
        let p = try Procfile.parse("web:\tnode server.js  \r\nclock:python clock.py\r\nUPPER_case-1: ./run\r\n", path: "Procfile")
        #expect(p.entries.map(\.name) == ["web", "clock", "UPPER_case-1"])
        #expect(p.entries.map(\.command) == ["node server.js", "python clock.py", "./run"])
    }

    @Test func nameWithoutCommandAndOddNamesAreIgnored() throws {
        let p = try Procfile.parse("web: rackup\nworker:\nempty:    \nweb.2: nope\n: nothing\n", path: "Procfile")
        #expect(p.entries.map(\.name) == ["web"])
    }

    @Test func commandKeepsColonsAndHashes() throws {
        let p = try Procfile.parse("web: bin/server --bind 0.0.0.0:$PORT # not a comment\n", path: "Procfile")
        #expect(p.entries[0].command == "bin/server --bind 0.0.0.0:$PORT # not a comment")
    }

    @Test func duplicateNameIsAnErrorAtTheSecondLine() {
        let error = configError { _ = try Procfile.parse("web: a\nworker: b\nweb: c\n", path: "Procfile") }
        #expect(error?.position == FilePosition(path: "Procfile", line: 3, column: 1, sourceLine: "web: c"))
        #expect(error?.rendered == "Procfile:3:1: duplicate process name \"web\" (first defined on line 1)\n    web: c\n    ^")
    }

    @Test func emptyProcfileIsAnError() {
        #expect(configError { _ = try Procfile.parse("", path: "Procfile") } == .emptyProcfile("Procfile"))
        #expect(configError { _ = try Procfile.parse("# only comments\n\n", path: "Procfile") } == .emptyProcfile("Procfile"))
        #expect(configError { _ = try Procfile.parse("release: rake db:migrate\n", path: "Procfile") } == .emptyProcfile("Procfile"))
    }
}
