import Foundation
import Testing
@testable import SwiftProcKit

@Suite struct ConfigPlanTests {
    static let rails = """
    app = "shop"
    primary_region = "ord"
    kill_signal = "SIGTERM"
    kill_timeout = "30s"
    [deploy]
      release_command = "bin/rails db:prepare"
    [env]
      RAILS_ENV = "production"
      PORT = 8080
    [processes]
      app = "bin/rails server"
      worker = "bundle exec sidekiq"
    [http_service]
      internal_port = 8080
      auto_stop_machines = "suspend"
      processes = ["app"]
      [[http_service.checks]]
        path = "/up"
        interval = "10s"
        timeout = 2000
    [[restart]]
      policy = "always"
      processes = ["worker"]
    [checks.sidekiq]
      type = "tcp"
      port = 7433
      processes = ["worker"]
    """

    func config() throws -> AppConfig {
        var c = try flyConfig(Self.rails)
        c.dotenv = [EnvVariable("SECRET_KEY_BASE", "s3cret"), EnvVariable("RAILS_ENV", "development")]
        c.envFiles = [".env"]
        return c
    }

    @Test func textPlan() throws {
        let text = renderPlan(try report(config(), ["app=1,worker=2"]))
        #expect(text == """
        app "shop" from fly.toml (primary region ord)
          directory  /app

        processes (default group: app)
          app     × 1  port 5000  restart on-failure (10 retries)
                  bin/rails server
                  from fly.toml:11 [processes]
          worker  × 2  ports 5100-5101  restart always
                  bundle exec sidekiq
                  from fly.toml:12 [processes]

        stop       SIGTERM, then SIGKILL after 30s
        http       tcp :8080 → app; public 80, 443; auto_stop_machines = suspend
        check      sidekiq: tcp on :7433 → worker
        check      servicecheck-00-http-8080: http GET /up on :8080 → app (every 10s, timeout 2s)
        release    bin/rails db:prepare (timeout 5m)
        env files  .env
        env        [env] PORT; .env RAILS_ENV, SECRET_KEY_BASE (values hidden)

        notes
          - http_service: auto_stop_machines = "suspend" behaves as "stop" locally

        """)
        #expect(!text.contains("s3cret"))
    }

    @Test func showEnvRevealsValuesWithTheirSource() throws {
        let text = renderPlan(try report(config(), showEnv: true), showEnv: true)
        #expect(text.contains("  RAILS_ENV=development  (.env)\n"))
        #expect(text.contains("app.1 (machine \(machineID(app: "shop", group: "app", index: 1))) also gets\n"))
        #expect(text.contains("  PORT=5000\n  PRIMARY_REGION=ord\n  PS=app.1\n"))
        #expect(text.contains("  FLY_REGION=ord\n"))
        #expect(text.contains("  PORT=8080  ([env])\n"))
        #expect(text.contains("  SECRET_KEY_BASE=s3cret  (.env)\n"))
    }

    @Test func jsonPlanRoundTripsAndHidesValues() throws {
        let plan = try report(config())
        let decoded = try JSONDecoder().decode(Plan.self, from: Data(plan.jsonText().utf8))
        #expect(decoded == plan)
        #expect(plan.groups.map(\.name) == ["app", "worker"])
        #expect(plan.groups[1].restart == "always" && plan.groups[1].retries == nil && plan.groups[1].ports == [5100])
        #expect(plan.groups[0].retries == 10 && plan.groups[0].isDefault)
        #expect(plan.killSignal == Plan.Signal(name: "SIGTERM", number: SIGTERM))
        #expect(plan.killTimeoutSeconds == 30)
        #expect(plan.releaseCommandTimeoutSeconds == 300)
        #expect(plan.routes.map(\.processes) == [["app"]])
        #expect(plan.checks.map(\.timeoutSeconds) == [nil, 2])
        #expect(plan.env.map(\.name) == ["RAILS_ENV", "PORT", "SECRET_KEY_BASE"])
        #expect(plan.env.allSatisfy { $0.value == nil })
        #expect(plan.env[0].source == "dotenv")
        #expect(!plan.jsonText().contains("s3cret"))
        #expect(try report(config(), showEnv: true).env[0].value == "development")
        #expect(plan.instances.map(\.name) == ["app.1", "worker.1"] && plan.instances.allSatisfy { $0.env == nil })
        // Keys in a stable (sorted) order.
        let json = plan.jsonText()
        #expect(json.range(of: "\"app\"")!.lowerBound < json.range(of: "\"checks\"")!.lowerBound)
    }

    @Test func notesForProcfileProcessesMissingCommandsAndDefaultRouting() throws {
        let procfile = try Procfile.parse("web: w\nworker: k\n", path: "Procfile")
        let fromProcfile = try ConfigLoader.parseFlyToml("[[services]]\ninternal_port = 3000\n", path: "fly.toml", directory: "/app",
                                                         procfile: procfile, procfilePath: "Procfile")
        let notes = try report(fromProcfile, ["web=1", "worker=0"]).notes
        #expect(notes == [
            "processes come from Procfile; everything else from fly.toml",
            "[[services]] #1 names no processes, so it routes to the default group \"web\" only, as on Fly",
            "group \"worker\" is scaled to 0 and will not start",
        ])

        let partly = try flyConfig("app = \"phx\"\n[processes]\napp = ''\nworker = 'bin/work'\n")
        let text = renderPlan(try report(partly))
        #expect(text.contains("  app     × 0  no port  restart on-failure (10 retries)\n          (no command)\n"))
        #expect(try report(partly).notes == ["group \"app\" has no command and will not start"])
        #expect(partly.warnings.map(\.description) == ["fly.toml:3:1: warning: process group \"app\" has no command: on Fly it "
            + "runs the image's command, which swiftproc looks for in a Dockerfile (there is none); give it one in [processes] "
            + "(app = \"...\") or a Procfile next to fly.toml"])
    }

    @Test func procfilePlan() throws {
        let c = AppConfig(procfile: try Procfile.parse("web: bin/web\nrelease: bin/migrate\n", path: "Procfile"),
                          path: "Procfile", directory: "/srv/app")
        var options = RunOptions()
        options.portBase = "3000"
        let text = renderPlan(Plan(c, plan: try SupervisorPlan(config: c, options: options)))
        #expect(text.hasPrefix("app from Procfile\n  directory  /srv/app\n"))
        #expect(text.contains("  web  × 1  port 3000  restart on-failure (10 retries)\n"))
        #expect(text.contains("release    bin/migrate (timeout 5m)\n"))
        #expect(!text.contains("notes"))
    }
}

/// `check`'s report of the one plan for `config` with `-m words`.
func report(_ config: AppConfig, _ words: [String] = [], showEnv: Bool = false) throws -> Plan {
    var options = RunOptions()
    options.formation = words
    return Plan(config, plan: try SupervisorPlan(config: config, options: options), showEnv: showEnv)
}

@Suite struct ConfigDurationTests {
    @Test func goDurationSyntax() {
        #expect(DurationText.parse("30s") == .seconds(30))
        #expect(DurationText.parse("1m") == .seconds(60))
        #expect(DurationText.parse("1m30s") == .seconds(90))
        #expect(DurationText.parse("500ms") == .milliseconds(500))
        #expect(DurationText.parse("1.5h") == .seconds(5400))
        #expect(DurationText.parse("250us") == .microseconds(250))
        #expect(DurationText.parse("0") == .zero)
        #expect(DurationText.parse("-2s") == .seconds(-2))
        for bad in ["", "30", "s", "1x", "1m30", "1.2.3s", " 5s", "5 s"] {
            #expect(DurationText.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func formatting() {
        #expect(DurationText.format(.seconds(5)) == "5s")
        #expect(DurationText.format(.seconds(90)) == "1m30s")
        #expect(DurationText.format(.seconds(300)) == "5m")
        #expect(DurationText.format(.seconds(3600)) == "1h")
        #expect(DurationText.format(.milliseconds(500)) == "500ms")
        #expect(DurationText.format(.milliseconds(2500)) == "2.5s")
        #expect(DurationText.format(.zero) == "0s")
        #expect(DurationText.seconds(.milliseconds(1500)) == 1.5)
    }

    @Test func errorWithoutPositionRendersAsItsMessage() {
        let e = ConfigError.unreadable("fly.toml", reason: "not valid UTF-8")
        #expect(e.position == nil)
        #expect(e.rendered == "cannot read fly.toml: not valid UTF-8")
        #expect(e.description == e.rendered)
        let positioned = ConfigError.invalid("bad", at: FilePosition(path: "f", line: 2, column: 3))
        #expect(positioned.description == "f:2:3: bad")
        #expect(positioned.rendered == "f:2:3: bad")
    }
}
