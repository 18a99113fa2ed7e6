import Foundation
import Testing
@testable import SwiftProcKit

/// Strings that break naive emitters, for every writer's round trip.
private let hostileStrings: [String] = [
    "", " ", "  leading", "trailing  ", "plain", "yes", "No", "ON", "null", "~", "true", "0123", "1e3", "0x1F", "-", "-x",
    ".5", ":", "a: b", "a #b", "#x", "'single'", "\"double\"", "back\\slash", "$HOME ${X} $$", "100% %i %%",
    "line\nbreak", "crlf\r\n", "tab\there", "bell\u{07}", "del\u{7F}", "nel\u{85}", "ls\u{2028}ps\u{2029}", "bom\u{FEFF}",
    "héllo — 日本 ✓ 🚀", "[list]", "{map}", "&anchor", "*alias", "!tag", "|", ">", "%TAG", "@at", "`tick`", "? q", "a,b",
    "---", "...", "=", "k=v",
]

/// Runs python3 with `script`, giving it `input` on a file and returning what it wrote to stdout.
private func python(_ script: String, input: String) throws -> String? {
    // The python3 on PATH: the one .ci/install-validators installed PyYAML for.
    guard let python = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map({ "\($0)/python3" }).first(where: FileManager.default.isExecutableFile) else { return nil }
    let dir = temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let inURL = dir.appendingPathComponent("in"), outURL = dir.appendingPathComponent("out")
    try Data(input.utf8).write(to: inURL)
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = ["-c", script, inURL.path]
    p.standardOutput = try FileHandle(forWritingTo: outURL)
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    return try String(contentsOf: outURL, encoding: .utf8)
}

private let hasPyYAML = (try? python("import yaml; print('ok')", input: "")) == "ok\n"

@Suite struct ExportWriterTests {
    @Test func yamlScalarsArePlainOnlyWhenUnambiguous() {
        #expect(YAMLWriter.scalar("web") == "web")
        #expect(YAMLWriter.scalar("/bin/sh") == "/bin/sh")
        #expect(YAMLWriter.scalar("app.kubernetes.io/name") == "app.kubernetes.io/name")
        for s in ["yes", "No", "true", "null", "~", "0123", "1e3", "-c", "", " x", "a: b", "a #b", "x:1", "5s"] {
            #expect(YAMLWriter.scalar(s).hasPrefix("\""), "\(s) must be quoted")
        }
        #expect(YAMLWriter.doubleQuoted("a\"b\\c\nd\u{07}\u{2028}\u{85}") == "\"a\\\"b\\\\c\\nd\\x07\\u2028\\u0085\"")
    }

    @Test(.enabled(if: hasPyYAML, "python3 with PyYAML not found; skipped"))
    func yamlRoundTripsEveryHostileString() throws {
        let doc = YAMLNode.object([
            ("values", .list(hostileStrings.map(YAMLNode.string))),
            ("map", .map(hostileStrings.filter { !$0.isEmpty }.enumerated().map { YAMLPair($1, .int($0)) })),
            ("nested", .list([.object([("a", .strings(["x", "y"])), ("b", .list([])), ("c", .map([]))]), .list([.int(1), .bool(false)])])),
        ])
        let text = YAMLWriter.render(comment: ["header: with # and ---"], documents: [doc, .object([("second", .bool(true))])])
        let json = try #require(try python("import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')))))",
                                           input: text))
        let docs = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        #expect(docs.count == 2)
        #expect(docs[0]["values"] as? [String] == hostileStrings)
        let map = try #require(docs[0]["map"] as? [String: Int])
        for (i, key) in hostileStrings.filter({ !$0.isEmpty }).enumerated() { #expect(map[key] == i, "key \(key.debugDescription)") }
        let nested = try #require(docs[0]["nested"] as? [Any])
        let first = try #require(nested.first as? [String: Any])
        #expect(first["a"] as? [String] == ["x", "y"] && (first["b"] as? [Any])?.isEmpty == true)
        #expect(docs[1]["second"] as? Bool == true)
    }

    @Test func systemdQuoting() {
        #expect(SystemdUnit.execArgument("echo \"$HOME\" 100% \\n\n") == #""echo \"$$HOME\" 100%% \\n\n""#)
        #expect(SystemdUnit.environmentAssignment(name: "A", value: "x $y 5%\t") == #""A=x $y 5%%\t""#)
        #expect(SystemdUnit.plainValue("/srv/100%\napp") == "/srv/100%% app")
        #expect(SystemdUnit.environmentFileLine(name: "S", value: "a\"b\\c`d$e\nf") == "S=\"a\\\"b\\\\c\\`d\\$e\nf\"\n")
    }

    @Test(.enabled(if: (try? python("import plistlib; print('ok')", input: "")) == "ok\n", "python3 not found; skipped"))
    func plistRoundTripsEveryRepresentableString() throws {
        let strings = hostileStrings.filter(PlistWriter.canRepresent)
        #expect(!PlistWriter.canRepresent("bell\u{07}") && PlistWriter.canRepresent("crlf\r\n"))
        let root = PlistNode.dict([("values", .array(strings.map(PlistNode.string))),
                                   ("n", .int(-3)), ("t", .bool(true)), ("empty", .dict([])), ("<&>", .string("<&>"))])
        let text = PlistWriter.render(root, comment: ["a -- comment", "with\nnewline"])
        let json = try #require(try python("import sys, json, plistlib; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))", input: text))
        let value = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(value["values"] as? [String] == strings)
        #expect(value["n"] as? Int == -3 && value["t"] as? Bool == true && value["<&>"] as? String == "<&>")
    }

    @Test func tomlStringsRoundTripThroughSwiftprocsOwnDecoder() throws {
        let text = "app = \"x\"\n[env]\n" + hostileStrings.enumerated().map { "  K\($0) = \(tomlString($1))\n" }.joined()
            + "  \(tomlKey("A B.c")) = \"odd key\"\n[processes]\n  \(tomlKey("web")) = \"sleep 1\"\n"
        let config = try ConfigLoader.parseFlyToml(text, path: "fly.toml", directory: "/app")
        #expect(config.env.map(\.value) == hostileStrings + ["odd key"])
        #expect(config.env.last?.name == "A B.c" && config.groupNames == ["web"])
    }

    @Test func flyExportNamesGroupsAsFlyAllows() throws {
        let model = ExportModel(sourceKind: .procfile, sourcePath: "Procfile", appName: "My App", directory: "/srv/my app",
                                groups: [.init(name: "Web", command: "run", count: 1, basePort: 5000),
                                         .init(name: "web", command: "other", count: 1, basePort: 5100),
                                         .init(name: "Mail.er", command: "mail", count: 1, basePort: 5200)])
        let result = try Exporter.render(.fly, model, options: ExportOptions(outputDirectory: "/out"))
        let config = try ConfigLoader.parseFlyToml(result.files[0].contents, path: "fly.toml", directory: "/app")
        #expect(config.appName == "my-app")
        #expect(config.groups.map(\.name) == ["web", "mail-er"] && config.groups.map(\.command) == ["run", "mail"])
        #expect(result.warnings.contains { $0.contains("\"web\"") && $0.contains("left out") }, "\(result.warnings)")
        #expect(result.warnings.contains { $0.contains("Mail.er") && $0.contains("mail-er") }, "\(result.warnings)")
        #expect(config.httpService?.processes == ["web"])
    }

    @Test func shellQuotingSurvivesSh() async throws {
        for s in hostileStrings where !s.contains("\0") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "printf '%s' " + shellQuoted(s)]
            let dir = temporaryDirectory()
            let out = dir.appendingPathComponent("out")
            _ = FileManager.default.createFile(atPath: out.path, contents: nil)
            p.standardOutput = try FileHandle(forWritingTo: out)
            try p.run()
            p.waitUntilExit()
            #expect(try String(contentsOf: out, encoding: .utf8) == s, "\(s.debugDescription)")
            try? FileManager.default.removeItem(at: dir)
        }
    }

    @Test func adapterReadsWhatStartUses() throws {
        let config = try flyConfig("""
        app = "shop"
        kill_signal = "SIGTERM"
        kill_timeout = "1m30s"
        [build]
          image = "ignored/here:1"
        [deploy]
          release_command = "bin/migrate"
          release_command_timeout = "2m"
        [env]
          A = "1"
        [processes]
          web = "bin/web"
          worker = "bin/worker"
          empty = ""
        [http_service]
          internal_port = 3000
          processes = ["web"]
          [[http_service.checks]]
            path = "/up"
            interval = 5000
        [checks.alive]
          type = "tcp"
          port = 3000
          processes = ["web", "worker"]
        [[services]]
          internal_port = 7000
          processes = ["worker"]
          [[services.ports]]
            port = 70
          [[services.ports]]
            start_port = 100
            end_port = 110
        [[restart]]
          policy = "never"
          processes = ["worker"]
        """)
        var formation = Formation.oneOfEach(config.groupNames)
        formation["web"] = 3
        let model = ExportModel(config: config, formation: formation, ports: PortPlan(base: 6000, groups: config.groupNames),
                                image: "given/image:2", workingDirectory: "/work")
        #expect(model.appName == "shop" && model.directory == "/app" && model.image == "given/image:2")
        #expect(model.groups.map(\.name) == ["web", "worker"] && model.skippedGroups == ["empty"])
        #expect(model.groups.map(\.count) == [3, 1] && model.groups.map(\.basePort) == [6000, 6100])
        #expect(model.groups[1].restart == .never)
        #expect(model.killSignal == "SIGTERM" && model.killTimeout == 90)
        #expect(model.releaseCommand == "bin/migrate" && model.releaseTimeout == 120)
        #expect(model.services.map(\.name) == ["http_service", "services-1"])
        #expect(model.services[1].publicPorts == [70] && model.services[1].internalPort == 7000)
        // Service checks first (they gate traffic), then top-level checks; intervals in seconds.
        #expect(model.groups[0].checks.map(\.name).last == "alive")
        #expect(model.groups[0].checks.first?.gatesTraffic == true && model.groups[0].checks.first?.interval == 5)
        #expect(model.groups[0].checks.first?.path == "/up")
        #expect(model.groups[1].checks.map(\.isHTTP) == [false])
        let result = try Exporter.render(.procfile, model, options: ExportOptions(outputDirectory: "/out"))
        #expect(result.warnings.first?.contains("\"empty\" has no command") == true)
    }

    @Test func composeBuildsTheAppDirectoryWithoutAnImage() throws {
        let model = ExportModel(appName: "a", directory: "/srv/app", groups: [.init(name: "web", command: "run", count: 2, basePort: 5000)],
                                dotenv: [EnvVariable("S", "1")], envFiles: ["/srv/app/.env"])
        let text = try Exporter.render(.compose, model, options: ExportOptions(outputDirectory: "/srv/app/deploy")).files[0].contents
        #expect(text.contains("    build: \"..\"\n"), "\(text)")
        #expect(text.contains("    env_file:\n      - \"../.env\"\n"), "\(text)")
        #expect(relativePath(from: "/a/b", to: "/a/b") == "." && relativePath(from: "/a/b", to: "/a/c/d") == "../c/d")
    }

    @Test func renderingIsDeterministic() throws {
        let model = ExportModel(appName: "a b/c", directory: "/srv/app",
                                groups: [.init(name: "web", command: "run $PORT", count: 2, basePort: 5000),
                                         .init(name: "w_2", command: "x | y", count: 0, basePort: 5100)],
                                env: [EnvVariable("Z", "1"), EnvVariable("A", "2")], dotenv: [EnvVariable("S", "%i")],
                                envFiles: ["/srv/app/.env"], releaseCommand: "m", image: "i",
                                services: [.init(name: "http_service", isHTTPService: true, internalPort: 8080, publicPorts: [80], groups: ["web"])])
        for format in ExportFormat.allCases where format != .fly {
            let options = ExportOptions(outputDirectory: "/out", userUnits: format == .systemd)
            let a = try Exporter.render(format, model, options: options)
            let b = try Exporter.render(format, model, options: options)
            #expect(a == b && !a.files.isEmpty)
        }
        let systemd = try Exporter.render(.systemd, model, options: ExportOptions(outputDirectory: "/out"))
        #expect(systemd.files.map(\.name) == ["a-b-c.env", "a-b-c.target", "a-b-c-release.service", "a-b-c-web@.service", "a-b-c-w_2@.service"])
        #expect(systemd.files.filter(\.isPrivate).map(\.name) == ["a-b-c.env"])
    }
}
