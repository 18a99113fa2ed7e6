import Foundation
import Testing
@testable import SwiftProcKit

/// The validators the export tests use. CI installs them (`.ci/run`); where one is missing
/// locally, the tests that need it are skipped with a message saying what to install.
enum ExportTools {
    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Runs a short tool synchronously (only to decide whether a test runs).
    static func succeeds(_ argv: [String]) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    static let systemdAnalyze = which("systemd-analyze")
    static let kubernetesValidate = which("kubernetes-validate")
    static let python = which("python3")
    static let pythonYAML = python.map { succeeds([$0, "-c", "import yaml"]) } ?? false
    static let pythonJSONSchema = python.map { succeeds([$0, "-c", "import yaml, jsonschema"]) } ?? false
    /// The Compose specification's JSON schema: `$SWIFTPROC_COMPOSE_SCHEMA`, else where `.ci/run` puts it.
    static let composeSchema: String? = {
        let env = ProcessInfo.processInfo.environment
        let candidates = [env["SWIFTPROC_COMPOSE_SCHEMA"],
                          env["HOME"].map { "\($0)/.cache/swiftproc-validators/compose_spec.json" }].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }()
}

/// Runs a tool to completion with captured output.
func runTool(_ argv: [String], in directory: URL? = nil, environment: [String: String]? = nil,
             timeout: Double = 120) async throws -> (status: Int32?, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0])
    p.arguments = Array(argv.dropFirst())
    if let directory { p.currentDirectoryURL = directory }
    if let environment { p.environment = environment }
    let (out, err) = try runCapturingOutput(p)
    guard await eventually(timeout: timeout, { !p.isRunning }) else {
        p.terminate()
        return (nil, out.text, err.text)
    }
    _ = await eventually(timeout: 5) { out.isClosed && err.isClosed }
    return (p.terminationStatus, out.text, err.text)
}

/// Values that break naive emitters: quotes, `$`, `%` (systemd specifiers), line breaks,
/// `: `, `#`, leading spaces, backslashes, Unicode, YAML's booleans and numbers, empty.
let hostileEnv: [(String, String)] = [
    ("QUOTES", "she said \"hi\" and 'bye'"),
    ("DOLLAR", "$HOME and ${PATH} and $$ and $(date)"),
    ("PERCENT", "100% %i %n %%"),
    ("NEWLINE", "line one\nline two\n"),
    ("COLON_HASH", "key: value # not a comment"),
    ("LEADING", "  two leading spaces"),
    ("UNICODE", "héllo — 日本 ✓ \u{2028}"),
    ("BACKSLASH", "C:\\path\\n \\\\ `tick`"),
    ("EMPTY", ""),
    ("YES", "yes"),
    ("NUMBER", "0123"),
    ("TAB", "a\tb"),
]

/// `hostileEnv` as a fly.toml `[env]` table.
func tomlEnvTable(_ pairs: [(String, String)]) -> String {
    "[env]\n" + pairs.map { "  \($0.0) = \(tomlString($0.1))\n" }.joined()
}

/// An app whose every value is hard to write: the fixture of the export tests.
func hostileApp(extraFiles: [String: String] = [:]) throws -> URL {
    let web = #"printf '%s|%s|%s|%s|%s\n' "$PORT" "$PS" "$FLY_PROCESS_GROUP" "$FLY_APP_NAME" 'lit: 100% "q" $HOME #x ü \\ `no`'"#
    let worker = #"echo "$DOLLAR" '50% #x: y' && echo   "  spaced""#
    let fly = """
    app = "hostile-app"
    kill_signal = "SIGQUIT"
    kill_timeout = 7

    [build]
      image = "registry.example.com/hostile:v1"

    [deploy]
      release_command = \(tomlString("echo 'release: 100% done' \"$RELEASE_COMMAND\""))

    \(tomlEnvTable(hostileEnv))
    [processes]
      web = \(tomlString(web))
      worker = \(tomlString(worker))
      clock = "sleep 1000"
      idle = ""

    [http_service]
      internal_port = 8080
      processes = ["web"]

      [[http_service.checks]]
        grace_period = "3s"
        interval = "10s"
        timeout = "2s"
        method = "GET"
        path = "/health?x=1&y=$z"

    [[services]]
      internal_port = 9000
      protocol = "tcp"
      processes = ["worker"]

      [[services.ports]]
        port = 9443

      [[services.tcp_checks]]
        interval = "15s"
        timeout = "1s"

    [[restart]]
      policy = "always"
      processes = ["clock"]

    [[restart]]
      policy = "never"
      processes = ["worker"]

    [[restart]]
      policy = "on-failure"
      retries = 3
      processes = ["web"]
    """
    let dotenv = """
    SECRET_QUOTES="a \\"quoted\\" secret"
    SECRET_DOLLAR='$not_expanded %i'
    SECRET_MULTI="first\\nsecond"
    QUOTES=overridden by .env

    """
    var files = ["fly.toml": fly, ".env": dotenv]
    for (k, v) in extraFiles { files[k] = v }
    return try makeApp(files)
}

/// The environment values the hostile app's processes see: `[env]`, then `.env` on top.
let hostileDotenv: [(String, String)] = [
    ("SECRET_QUOTES", "a \"quoted\" secret"), ("SECRET_DOLLAR", "$not_expanded %i"),
    ("SECRET_MULTI", "first\nsecond"), ("QUOTES", "overridden by .env"),
]

/// Every regular file under `dir`, name → bytes.
func filesIn(_ dir: URL) throws -> [String: Data] {
    var out: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
        out[name] = try Data(contentsOf: dir.appendingPathComponent(name))
    }
    return out
}

/// A JSON value printed by a python one-liner.
func pythonJSON(_ script: String, _ args: [String]) async throws -> Any? {
    guard let python = ExportTools.python else { return nil }
    let r = try await runTool([python, "-c", script] + args)
    #expect(r.status == 0, "python: \(r.err)")
    return try JSONSerialization.jsonObject(with: Data(r.out.utf8), options: [.fragmentsAllowed])
}

let yamlToJSON = "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')))))"

@Suite(.serialized) struct ExportTests {
    // MARK: systemd

    @Test(.enabled(if: ExportTools.systemdAnalyze != nil, "systemd-analyze not installed (apt-get install systemd); skipped"))
    func systemdUnitsPassSystemdAnalyzeVerify() async throws {
        let app = try hostileApp()
        // A user manager needs a runtime directory, which a container or CI shell may lack.
        let runtime = app.appendingPathComponent("runtime")
        try FileManager.default.createDirectory(at: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var env = ProcessInfo.processInfo.environment
        env["XDG_RUNTIME_DIR"] = runtime.path
        // The check can fail: a unit with an unknown setting is reported.
        try Data("[Service]\nExecStart=/bin/sh -c true\nKillSignall=SIGINT\n".utf8).write(to: app.appendingPathComponent("broken.service"))
        let broken = try await runTool([ExportTools.systemdAnalyze!, "verify", "--man=no", app.appendingPathComponent("broken.service").path],
                                       in: app, environment: env)
        #expect(broken.err.contains("Unknown key"), "\(broken.err)")
        for user in [false, true] {
            let out = app.appendingPathComponent(user ? "units-user" : "units")
            let r = try await runSwiftProc(["export", "systemd", out.path, "-m", "web=2,worker=1,clock=1"] + (user ? ["--user"] : []), in: app)
            #expect(r.status == 0, "\(r.err)")
            var units = ["hostile-app.target", "hostile-app-release.service"]
            units += ["web", "worker", "clock"].map { "hostile-app-\($0)@1.service" } + ["hostile-app-web@2.service"]
            for unit in units {
                let v = try await runTool([ExportTools.systemdAnalyze!, "verify", "--man=no"] + (user ? ["--user"] : [])
                                          + [out.appendingPathComponent(unit).path], in: out, environment: env)
                #expect(v.status == 0, "\(unit): \(v.err)")
                #expect(v.err.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(unit) (user: \(user)): \(v.err)")
            }
        }
    }

    @Test func systemdUnitsRunTheCommandsAsStartDoes() async throws {
        let app = try hostileApp()
        let out = app.appendingPathComponent("units")
        let r = try await runSwiftProc(["export", "systemd", out.path, "-p", "7000"], in: app)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("group \"idle\" has no command"), "\(r.err)")
        let files = try filesIn(out)
        #expect(files.keys.sorted() == ["hostile-app-clock@.service", "hostile-app-release.service", "hostile-app-web@.service",
                                        "hostile-app-worker@.service", "hostile-app.env", "hostile-app.target"])
        let web = String(decoding: files["hostile-app-web@.service"]!, as: UTF8.self)
        let unit = SystemdUnitReader(web, instance: "3")
        #expect(unit.values("Restart") == ["on-failure"] && unit.values("StartLimitBurst") == ["4"])
        #expect(unit.values("KillSignal") == ["SIGQUIT"] && unit.values("TimeoutStopSec") == ["7"])
        #expect(unit.values("KillMode") == ["control-group"])
        #expect(unit.values("Requires") == ["hostile-app-release.service"])
        #expect(unit.values("WorkingDirectory") == [app.standardizedFileURL.path])
        // [env] exactly, via Environment=.
        let env = unit.environment
        for (k, v) in hostileEnv { #expect(env[k] == v, "\(k)") }
        // .env via EnvironmentFile=, which systemd reads after Environment= (so it wins, as in start).
        let envFilePath = try #require(unit.values("EnvironmentFile").first)
        #expect(envFilePath == out.appendingPathComponent("hostile-app.env").standardizedFileURL.path)
        let envFileText = try String(contentsOfFile: envFilePath, encoding: .utf8)
        let fromFile = SystemdUnitReader.environmentFile(envFileText)
        for (k, v) in hostileDotenv { #expect(fromFile[k] == v, "\(k)") }
        let attributes = try FileManager.default.attributesOfItem(atPath: envFilePath)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        // Run ExecStart as systemd would hand it to the kernel, with the environment it would build.
        let argv = try #require(unit.execStart)
        #expect(argv.count == 3 && argv[0] == "/bin/sh" && argv[1] == "-c")
        var processEnv = env
        for (k, v) in fromFile { processEnv[k] = v }
        processEnv["PATH"] = "/usr/bin:/bin"
        processEnv["HOME"] = "/home/x"
        let run = try await runTool(argv, in: app, environment: processEnv)
        #expect(run.status == 0, "\(run.err)")
        // web is the first group: ports 7000…; instance 3 → 7002.
        #expect(run.out == "7002|web.3|web|hostile-app|lit: 100% \"q\" $HOME #x ü \\\\ `no`\n", "\(run.out)")

        let worker = SystemdUnitReader(String(decoding: files["hostile-app-worker@.service"]!, as: UTF8.self), instance: "1")
        #expect(worker.values("Restart") == ["no"])
        let workerRun = try await runTool(try #require(worker.execStart), in: app, environment: processEnv)
        #expect(workerRun.out == "$HOME and ${PATH} and $$ and $(date) 50% #x: y\n  spaced\n", "\(workerRun.out)")
        let clock = SystemdUnitReader(String(decoding: files["hostile-app-clock@.service"]!, as: UTF8.self), instance: "1")
        #expect(clock.values("Restart") == ["always"] && clock.values("StartLimitIntervalSec") == ["0"])

        let release = SystemdUnitReader(String(decoding: files["hostile-app-release.service"]!, as: UTF8.self), instance: "")
        #expect(release.values("Type") == ["oneshot"])
        let releaseRun = try await runTool(try #require(release.execStart), in: app, environment: processEnv)
        #expect(releaseRun.out == "release: 100% done 1\n", "\(releaseRun.out)")

        let target = String(decoding: files["hostile-app.target"]!, as: UTF8.self)
        #expect(target.contains("Wants=hostile-app-web@1.service hostile-app-worker@1.service hostile-app-clock@1.service\n"))
        #expect(target.hasPrefix("# Generated by `swiftproc export systemd` from fly.toml."))
    }

    // MARK: Kubernetes

    @Test(.enabled(if: ExportTools.kubernetesValidate != nil, "kubernetes-validate not installed (pip install kubernetes-validate); skipped"))
    func kubernetesManifestsPassKubernetesValidateStrict() async throws {
        let app = try hostileApp()
        let out = app.appendingPathComponent("k8s")
        let r = try await runSwiftProc(["export", "kubernetes", out.path, "-m", "web=3,worker=2"], in: app)
        #expect(r.status == 0, "\(r.err)")
        let file = out.appendingPathComponent("hostile-app.yaml").path
        let v = try await runTool([ExportTools.kubernetesValidate!, "--strict", file])
        #expect(v.status == 0, "\(v.out)\(v.err)")
        // Eight objects: ConfigMap, Secret, Job, three Deployments, two Services; each one "passed".
        #expect(v.out.components(separatedBy: " passed for resource ").count - 1 == 8, "\(v.out)")
        #expect(!v.out.contains("failed") && !v.err.contains("ERROR"), "\(v.out)\(v.err)")
    }

    @Test(.enabled(if: ExportTools.pythonYAML, "python3 with PyYAML not found; skipped"))
    func kubernetesManifestsCarryTheAppExactly() async throws {
        let app = try hostileApp()
        let out = app.appendingPathComponent("k8s")
        let r = try await runSwiftProc(["export", "kubernetes", out.path, "-m", "web=3,worker=2", "--image", "example/img:2"], in: app)
        #expect(r.status == 0, "\(r.err)")
        let docs = try #require(try await pythonJSON(yamlToJSON, [out.appendingPathComponent("hostile-app.yaml").path]) as? [[String: Any]])
        func object(_ kind: String, _ name: String) -> [String: Any]? {
            docs.first { $0["kind"] as? String == kind && ($0["metadata"] as? [String: Any])?["name"] as? String == name }
        }
        let configMap = try #require(object("ConfigMap", "hostile-app-env")?["data"] as? [String: String])
        for (k, v) in hostileEnv { #expect(configMap[k] == v, "\(k)") }
        let secret = try #require(object("Secret", "hostile-app-secrets")?["stringData"] as? [String: String])
        for (k, v) in hostileDotenv { #expect(secret[k] == v, "\(k)") }
        let web = try #require(object("Deployment", "hostile-app-web"))
        let spec = try #require(web["spec"] as? [String: Any])
        #expect(spec["replicas"] as? Int == 3)
        let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        #expect(pod["terminationGracePeriodSeconds"] as? Int == 7)
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        #expect(container["image"] as? String == "example/img:2")
        let command = try #require(container["command"] as? [String])
        #expect(command == ["/bin/sh", "-c", ShellCommand.execPrefixed(#"printf '%s|%s|%s|%s|%s\n' "$PORT" "$PS" "$FLY_PROCESS_GROUP" "$FLY_APP_NAME" 'lit: 100% "q" $HOME #x ü \\ `no`'"#)])
        let env = try #require(container["env"] as? [[String: Any]])
        #expect(env.first { $0["name"] as? String == "PORT" }?["value"] as? String == "8080")
        let readiness = try #require(container["readinessProbe"] as? [String: Any])
        let httpGet = try #require(readiness["httpGet"] as? [String: Any])
        #expect(httpGet["path"] as? String == "/health?x=1&y=$z" && httpGet["port"] as? Int == 8080)
        #expect(readiness["initialDelaySeconds"] as? Int == 3 && readiness["periodSeconds"] as? Int == 10
                && readiness["timeoutSeconds"] as? Int == 2)
        #expect(container["livenessProbe"] != nil)
        let preStop = try #require(((container["lifecycle"] as? [String: Any])?["preStop"] as? [String: Any])?["exec"] as? [String: Any])
        #expect((preStop["command"] as? [String])?.last?.hasPrefix("kill -QUIT 1;") == true)
        let worker = try #require(object("Deployment", "hostile-app-worker"))
        let workerContainer = try #require((((worker["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"]
                                            as? [String: Any])?["containers"] as? [[String: Any]])
        #expect(((workerContainer.first?["readinessProbe"] as? [String: Any])?["tcpSocket"] as? [String: Any])?["port"] as? Int == 9000)
        let job = try #require(object("Job", "hostile-app-release"))
        #expect(((job["spec"] as? [String: Any])?["activeDeadlineSeconds"] as? Int) == 300)
        let service = try #require(object("Service", "hostile-app")?["spec"] as? [String: Any])
        let port = try #require((service["ports"] as? [[String: Any]])?.first)
        #expect(port["port"] as? Int == 80 && port["targetPort"] as? Int == 8080)
        #expect((service["selector"] as? [String: String])?["swiftproc.dev/http-service"] == "true")
        let podLabels = (((spec["template"] as? [String: Any])?["metadata"] as? [String: Any])?["labels"] as? [String: String]) ?? [:]
        #expect(podLabels["swiftproc.dev/http-service"] == "true" && podLabels["swiftproc.dev/process-group"] == "web")
        #expect(object("Service", "hostile-app-services-1") != nil)
    }

    @Test func kubernetesNeedsAnImage() async throws {
        let app = try makeApp(["Procfile": "web: sleep 1\n"])
        let r = try await runSwiftProc(["export", "kubernetes"], in: app)
        #expect(r.status == 1)
        #expect(r.err.contains("--image"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: app.appendingPathComponent("kubernetes").path))
    }

    // MARK: Compose

    @Test(.enabled(if: ExportTools.pythonJSONSchema && ExportTools.composeSchema != nil,
                   "python3 with PyYAML and jsonschema, or the Compose schema (~/.cache/swiftproc-validators/compose_spec.json, see .ci/run), not found; skipped"))
    func composeFileMatchesTheComposeSpecification() async throws {
        let app = try hostileApp()
        for formation in [["-m", "web=2,worker=1,clock=0"], ["-m", "web=1"]] {
            let r = try await runSwiftProc(["export", "compose", "--force"] + formation, in: app)
            #expect(r.status == 0, "\(r.err)")
            let script = """
            import sys, json, yaml, jsonschema
            schema = json.load(open(sys.argv[1]))
            doc = yaml.safe_load(open(sys.argv[2], encoding='utf-8'))
            errors = [e.message for e in jsonschema.Draft201909Validator(schema).iter_errors(doc)]
            print(json.dumps({"errors": errors, "doc": doc}))
            """
            let result = try #require(try await pythonJSON(script, [ExportTools.composeSchema!, app.appendingPathComponent("compose.yaml").path])
                                      as? [String: Any])
            #expect((result["errors"] as? [String]) == [], "\(result["errors"] ?? "")")
            let services = try #require((result["doc"] as? [String: Any])?["services"] as? [String: [String: Any]])
            #expect(services.keys.sorted() == ["clock", "release", "web", "worker"])
            func unescaped(_ s: String) -> String { s.replacingOccurrences(of: "$$", with: "$") }
            let web = try #require(services["web"])
            let env = try #require(web["environment"] as? [String: String])
            for (k, v) in hostileEnv where k != "QUOTES" { #expect(env[k].map(unescaped) == v, "\(k)") }
            #expect(env["QUOTES"] == nil, "QUOTES comes from .env, which must win")
            #expect(web["env_file"] as? [String] == [".env"])
            #expect((web["command"] as? [String])?.map(unescaped) == ["/bin/sh", "-c", ShellCommand.execPrefixed(#"printf '%s|%s|%s|%s|%s\n' "$PORT" "$PS" "$FLY_PROCESS_GROUP" "$FLY_APP_NAME" 'lit: 100% "q" $HOME #x ü \\ `no`'"#)])
            #expect(web["stop_signal"] as? String == "SIGQUIT" && web["stop_grace_period"] as? String == "7s")
            #expect(web["restart"] as? String == "on-failure:3")
            #expect(services["worker"]?["restart"] as? String == "no" && services["clock"]?["restart"] as? String == "always")
            #expect(((web["depends_on"] as? [String: Any])?["release"] as? [String: String])?["condition"] == "service_completed_successfully")
            let health = try #require(web["healthcheck"] as? [String: Any])
            #expect(health["interval"] as? String == "10s" && health["start_period"] as? String == "3s")
            #expect(web["image"] as? String == "registry.example.com/hostile:v1")
        }
    }

    // MARK: launchd

    @Test(.enabled(if: ExportTools.python != nil, "python3 not found (plistlib); skipped"))
    func launchdPlistsParseWithTheAppsValues() async throws {
        let app = try hostileApp()
        let out = app.appendingPathComponent("agents")
        let r = try await runSwiftProc(["export", "launchd", out.path, "-m", "web=2", "-p", "6000"], in: app)
        #expect(r.status == 0, "\(r.err)")
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(names == ["swiftproc.hostile-app.clock.1.plist", "swiftproc.hostile-app.release.plist",
                          "swiftproc.hostile-app.web.1.plist", "swiftproc.hostile-app.web.2.plist",
                          "swiftproc.hostile-app.worker.1.plist"])
        let script = "import sys, json, plistlib; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))"
        let plist = try #require(try await pythonJSON(script, [out.appendingPathComponent("swiftproc.hostile-app.web.2.plist").path])
                                 as? [String: Any])
        #expect(plist["Label"] as? String == "swiftproc.hostile-app.web.2")
        #expect(plist["WorkingDirectory"] as? String == app.standardizedFileURL.path)
        let env = try #require(plist["EnvironmentVariables"] as? [String: String])
        for (k, v) in hostileEnv where k != "QUOTES" { #expect(env[k] == v, "\(k)") }
        for (k, v) in hostileDotenv { #expect(env[k] == v, "\(k)") }
        #expect(env["PORT"] == "6001" && env["PS"] == "web.2" && env["FLY_PROCESS_GROUP"] == "web")
        #expect((plist["KeepAlive"] as? [String: Bool]) == ["SuccessfulExit": false])
        #expect(plist["ExitTimeOut"] as? Int == 7)
        let argv = try #require(plist["ProgramArguments"] as? [String])
        var runEnv = env
        runEnv["PATH"] = "/usr/bin:/bin"
        runEnv["HOME"] = "/home/x"
        let run = try await runTool(argv, in: app, environment: runEnv)
        #expect(run.out == "6001|web.2|web|hostile-app|lit: 100% \"q\" $HOME #x ü \\\\ `no`\n", "\(run.out)")
        let attributes = try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent("swiftproc.hostile-app.web.2.plist").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "a plist holding .env values is private")
        let clock = try #require(try await pythonJSON(script, [out.appendingPathComponent("swiftproc.hostile-app.clock.1.plist").path])
                                 as? [String: Any])
        #expect(clock["KeepAlive"] as? Bool == true)
    }

    // MARK: Procfile and fly.toml

    @Test func procfileFromFlyTomlRunsTheSameCommands() async throws {
        let app = try hostileApp()
        let r = try await runSwiftProc(["export", "procfile", "out"], in: app)
        #expect(r.status == 0, "\(r.err)")
        let check = try await runSwiftProc(["check", "--json", "-f", "out/Procfile"], in: app)
        #expect(check.status == 0, "\(check.err)")
        let plan = try JSONDecoder().decode(Plan.self, from: Data(check.out.utf8))
        let config = try ConfigLoader.load(in: app.path)
        #expect(plan.groups.map(\.name) == ["web", "worker", "clock"])
        for g in plan.groups { #expect(g.command == config.group(named: g.name)?.command, "\(g.name)") }
        #expect(plan.releaseCommand == config.releaseCommand)
        let text = try String(contentsOf: app.appendingPathComponent("out/Procfile"), encoding: .utf8)
        #expect(text.hasPrefix("# Generated by `swiftproc export procfile` from fly.toml."))
    }

    @Test func flyTomlFromProcfilePassesCheckAndRunsTheSameCommands() async throws {
        let procfile = """
        release: echo "migrate $RELEASE_COMMAND" 'it''s'
        web: printf '%s\\n' "port $PORT" '100% #x: y'
        worker: echo   plain words
        clock: a=1; echo "tick $a" | tr a-z A-Z
        """
        let app = try makeApp(["Procfile": procfile, ".env": "SECRET=1\n"])
        let r = try await runSwiftProc(["export", "fly"], in: app)
        #expect(r.status == 0, "\(r.err)")
        let text = try String(contentsOf: app.appendingPathComponent("fly.toml"), encoding: .utf8)
        #expect(text.hasPrefix("# Generated by `swiftproc export fly` from Procfile."))
        #expect(text.contains("fly secrets import"))
        let check = try await runSwiftProc(["check", "--json", "-c", "fly.toml"], in: app)
        #expect(check.status == 0, "\(check.err)")
        let plan = try JSONDecoder().decode(Plan.self, from: Data(check.out.utf8))
        #expect(plan.source == "fly.toml" && plan.procfilePath == nil)
        #expect(plan.groups.map(\.name) == ["web", "worker", "clock"])
        #expect(plan.routes.map(\.processes) == [["web"]] && plan.routes.first?.internalPort == 8080)
        #expect(plan.groups.first { $0.name == "worker" }?.command == "echo   plain words")
        // Each command, run by sh as start runs it, prints what the Procfile's line prints.
        let original = try Procfile.parse(procfile, path: "Procfile")
        let pairs = original.entries.map { e in (e.command, plan.groups.first { g in g.name == e.name }?.command) }
            + [(original.releaseCommand!, plan.releaseCommand)]
        for (before, after) in pairs {
            let after = try #require(after)
            let env = ["PATH": "/usr/bin:/bin", "PORT": "8080", "RELEASE_COMMAND": "1"]
            let a = try await runTool(["/bin/sh", "-c", before], in: app, environment: env)
            let b = try await runTool(["/bin/sh", "-c", after], in: app, environment: env)
            #expect(a.out == b.out && !a.out.isEmpty, "\(before) → \(after): \(a.out) vs \(b.out)")
        }
        // A Procfile is never exported over itself, even with --force.
        let own = try await runSwiftProc(["export", "procfile", "-f", "Procfile", "--force"], in: app)
        #expect(own.status == 1 && own.err.contains("which the app was read from"), "\(own.err)")
        #expect(try String(contentsOf: app.appendingPathComponent("Procfile"), encoding: .utf8) == procfile)
        // From a fly.toml there is nothing to do.
        let again = try await runSwiftProc(["export", "fly", "other"], in: app)
        #expect(again.status == 1 && again.err.contains("already a fly.toml"), "\(again.err)")
    }

    // MARK: every format

    @Test func outputsAreDeterministicAndNeverOverwrittenSilently() async throws {
        let app = try hostileApp()
        for format in ExportFormat.allCases where format != .fly {
            let first = try await runSwiftProc(["export", format.rawValue, "a-\(format)"], in: app)
            let second = try await runSwiftProc(["export", format.rawValue, "b-\(format)"], in: app)
            #expect(first.status == 0 && second.status == 0, "\(format): \(first.err)")
            let a = try filesIn(app.appendingPathComponent("a-\(format)"))
            let b = try filesIn(app.appendingPathComponent("b-\(format)"))
            #expect(!a.isEmpty)
            if format == .systemd {
                // The unit names its EnvironmentFile by absolute path, which differs between the two.
                #expect(a.keys.sorted() == b.keys.sorted())
            } else {
                #expect(a == b, "\(format) output differs between two runs")
            }
            for (name, data) in a {
                let text = String(decoding: data, as: UTF8.self)
                #expect(text.contains("Generated by `swiftproc export \(format.rawValue)` from fly.toml"), "\(name) has no header")
            }
            // Again into the same directory: refused, naming the file, nothing changed.
            let name = try #require(a.keys.sorted().first)
            let path = app.appendingPathComponent("a-\(format)/\(name)")
            try Data("edited by hand\n".utf8).write(to: path)
            let refused = try await runSwiftProc(["export", format.rawValue, "a-\(format)"], in: app)
            #expect(refused.status == 1)
            #expect(refused.err.contains(path.lastPathComponent) && refused.err.contains("--force"), "\(refused.err)")
            #expect(try String(contentsOf: path, encoding: .utf8) == "edited by hand\n")
            let forced = try await runSwiftProc(["export", format.rawValue, "a-\(format)", "--force"], in: app)
            #expect(forced.status == 0, "\(forced.err)")
            #expect(try Data(contentsOf: path) == a[name])
        }
        // The same input with the same output directory gives the same bytes for systemd too.
        let s1 = try await runSwiftProc(["export", "systemd", "s", "--force"], in: app)
        let before = try filesIn(app.appendingPathComponent("s"))
        let s2 = try await runSwiftProc(["export", "systemd", "s", "--force"], in: app)
        #expect(s1.status == 0 && s2.status == 0)
        #expect(try filesIn(app.appendingPathComponent("s")) == before)
    }

    @Test func commandLineMistakes() async throws {
        let app = try hostileApp()
        let typo = try await runSwiftProc(["export", "kubernets"], in: app)
        #expect(typo.status == 2 && typo.err.contains("did you mean kubernetes?"), "\(typo.err)")
        let none = try await runSwiftProc(["export"], in: app)
        #expect(none.status == 2 && none.err.contains("systemd, launchd, kubernetes, compose, procfile, fly"), "\(none.err)")
        let user = try await runSwiftProc(["export", "compose", "--user"], in: app)
        #expect(user.status == 2 && user.err.contains("--user is for systemd"))
        let group = try await runSwiftProc(["export", "compose", "-m", "wbe=2"], in: app)
        #expect(group.status == 1 && group.err.contains("wbe"), "\(group.err)")
        let help = try await runSwiftProc(["export", "--help"], in: app)
        #expect(help.status == 0)
        for format in ExportFormat.allCases { #expect(help.out.contains("swiftproc export \(format.rawValue)"), "\(format) example") }
        let main = try await runSwiftProc(["--help"], in: app)
        #expect(main.out.contains("\n  export "))
        #expect(!FileManager.default.fileExists(atPath: app.appendingPathComponent("compose.yaml").path))
    }
}

/// Reads a unit file the way systemd does, for the settings the tests look at: C escapes
/// inside double quotes, `%%` and `%i` specifiers, `$$` in `ExecStart=`.
struct SystemdUnitReader {
    let lines: [(key: String, value: String)]
    let instance: String

    init(_ text: String, instance: String) {
        self.instance = instance
        lines = text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), !line.hasPrefix("["), let eq = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        }
    }

    func values(_ key: String) -> [String] {
        lines.filter { $0.key == key }.map { specifiers($0.value) }
    }

    private func specifiers(_ text: String) -> String {
        var out = ""
        var percent = false
        for c in text {
            if percent {
                out += c == "%" ? "%" : (c == "i" ? instance : "<%\(c)>")
                percent = false
            } else if c == "%" {
                percent = true
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Splits a setting into words: double-quoted words with C escapes, bare words.
    private func words(_ text: String) -> [String] {
        var result: [String] = []
        var chars = Array(text.unicodeScalars)[...]
        while let c = chars.first {
            if c == " " { chars.removeFirst(); continue }
            var word = ""
            if c == "\"" {
                chars.removeFirst()
                while let d = chars.popFirst(), d != "\"" {
                    guard d == "\\", let e = chars.popFirst() else { word.unicodeScalars.append(d); continue }
                    switch e {
                    case "n": word += "\n"
                    case "t": word += "\t"
                    case "r": word += "\r"
                    case "x":
                        let hex = String(String.UnicodeScalarView(chars.prefix(2)))
                        chars.removeFirst(2)
                        word.unicodeScalars.append(Unicode.Scalar(UInt8(hex, radix: 16)!))
                    default: word.unicodeScalars.append(e)
                    }
                }
            } else {
                while let d = chars.first, d != " " { word.unicodeScalars.append(d); chars.removeFirst() }
            }
            result.append(word)
        }
        return result
    }

    /// `Environment=` assignments in order (later ones win).
    var environment: [String: String] {
        var env: [String: String] = [:]
        for line in lines where line.key == "Environment" {
            for word in words(line.value) {
                let value = specifiers(word)
                guard let eq = value.firstIndex(of: "=") else { continue }
                env[String(value[..<eq])] = String(value[value.index(after: eq)...])
            }
        }
        return env
    }

    /// `ExecStart=` as the argv systemd would exec.
    var execStart: [String]? {
        guard let line = lines.first(where: { $0.key == "ExecStart" }) else { return nil }
        return words(line.value).map { specifiers($0).replacingOccurrences(of: "$$", with: "$") }
    }

    /// An `EnvironmentFile=` in the form swiftproc writes: `NAME="value"` with `\` escapes.
    static func environmentFile(_ text: String) -> [String: String] {
        var env: [String: String] = [:]
        var chars = Array(text.unicodeScalars)[...]
        while !chars.isEmpty {
            if chars.first == "#" {
                while let c = chars.popFirst(), c != "\n" {}
                continue
            }
            var name = ""
            while let c = chars.popFirst(), c != "=" { name.unicodeScalars.append(c) }
            guard chars.popFirst() == "\"" else { break }
            var value = ""
            while let c = chars.popFirst(), c != "\"" {
                if c == "\\", let e = chars.popFirst() { value.unicodeScalars.append(e) } else { value.unicodeScalars.append(c) }
            }
            _ = chars.popFirst()  // the newline
            env[name] = value
        }
        return env
    }
}
