import Foundation
import Testing
import TOML
@testable import SwiftProcKit

@Suite struct ConfigFlyTomlTests {
    @Test func railsWithSidekiqFromTheGuide() throws {
        let c = try flyConfig("""
        # fly.toml app configuration file generated for shop on 2024-01-01T00:00:00Z
        app = 'shop'
        primary_region = 'ord'
        console_command = '/rails/bin/rails console'

        [build]

        [deploy]
          release_command = './bin/rails db:prepare'

        [env]
          PORT = '8080'
          RAILS_LOG_TO_STDOUT = 'enabled'
          WEB_CONCURRENCY = 2

        [processes]
          app = './bin/rails server'
          worker = 'bundle exec sidekiq'

        [http_service]
          internal_port = 8080
          force_https = true
          auto_stop_machines = 'stop'
          auto_start_machines = true
          min_machines_running = 0
          processes = ['app']

          [[http_service.checks]]
            interval = '10s'
            grace_period = '5s'
            method = 'get'
            path = '/up'
            protocol = 'http'
            timeout = '2s'
            tls_skip_verify = false

            [http_service.checks.headers]
              X-Forwarded-Proto = 'https'

        [[vm]]
          memory = '1gb'
          cpu_kind = 'shared'
          cpus = 1

        [[statics]]
          guest_path = '/rails/public'
          url_prefix = '/'

        """)
        #expect(c.appName == "shop")
        #expect(c.primaryRegion == "ord")
        #expect(c.source == .flyToml)
        #expect(c.groups.map(\.name) == ["app", "worker"])
        #expect(c.groups.map(\.command) == ["./bin/rails server", "bundle exec sidekiq"])
        #expect(c.groups.map(\.source.description) == ["fly.toml:17 [processes]", "fly.toml:18 [processes]"])
        #expect(c.groups.map(\.memoryMB) == [1024, 1024])
        #expect(c.consoleCommand == "/rails/bin/rails console")
        #expect(c.warnings.isEmpty)
        #expect(c.defaultGroup == "app")
        #expect(c.env == [EnvVariable("PORT", "8080"), EnvVariable("RAILS_LOG_TO_STDOUT", "enabled"),
                          EnvVariable("WEB_CONCURRENCY", "2")])
        #expect(c.releaseCommand == "./bin/rails db:prepare")
        #expect(c.releaseCommandTimeout == .seconds(300))
        #expect(c.killSignal == KillSignal.defaultSignal)
        #expect(c.killTimeout == .seconds(5))
        let http = try #require(c.httpService)
        #expect(http.internalPort == 8080 && http.forceHTTPS && http.autoStopMachines == .stop && http.autoStartMachines)
        #expect(http.processes == ["app"] && http.processesGiven)
        #expect(http.checks.count == 1)
        let check = http.checks[0]
        #expect(check.kind == .http && check.origin == .httpService && check.port == 8080)
        #expect(check.method == "GET" && check.path == "/up" && check.protocol == "http")
        #expect(check.interval == .seconds(10) && check.timeout == .seconds(2) && check.gracePeriod == .seconds(5))
        #expect(check.headers == [EnvVariable("X-Forwarded-Proto", "https")])
        #expect(check.processes == ["app"])
        #expect(check.name == "servicecheck-00-http-8080")
        try c.requireCommands()
    }

    @Test func phoenixWithoutProcessesHasAnAppGroupWithoutCommand() throws {
        let c = try flyConfig("""
        app = "hello-phx"
        primary_region = "iad"
        kill_signal = "SIGTERM"
        kill_timeout = "30s"

        [build]

        [deploy]
          release_command = "/app/bin/migrate"

        [env]
          PHX_HOST = "hello-phx.fly.dev"
          PORT = "8080"

        [http_service]
          internal_port = 8080
          force_https = true
          auto_stop_machines = true
          auto_start_machines = true
          min_machines_running = 0
          processes = ["app"]
          [http_service.concurrency]
            type = "connections"
            hard_limit = 1000
            soft_limit = 1000

        [[vm]]
          memory = '1gb'
          cpu_kind = 'shared'
          cpus = 1
        """)
        #expect(c.groups.map(\.name) == ["app"] && c.groups[0].command == nil && c.groups[0].source == .missing)
        #expect(c.killSignal.name == "SIGTERM")
        #expect(c.killSignal.number == SIGTERM)
        #expect(c.killTimeout == .seconds(30))
        #expect(c.httpService?.autoStopMachines == .stop)
        #expect(c.httpService?.concurrency == Concurrency(type: "connections", softLimit: 1000, hardLimit: 1000))
        let error = configError { try c.requireCommands() }
        #expect(error == .missingCommand(group: "app", configPath: "fly.toml"))
        #expect(error?.rendered.contains("Give it one in fly.toml ([processes] app = \"...\"), in a Procfile next to it (web: ...)") == true)
    }

    @Test func nodeAppWithServicesPortsAndTcpChecks() throws {
        let c = try flyConfig("""
        app = "node-api"
        kill_signal = "SIGINT"
        kill_timeout = 5
        processes = []

        [env]
          NODE_ENV = "production"

        [experimental]
          allowed_public_ports = []
          auto_rollback = true

        [[services]]
          http_checks = []
          internal_port = 3000
          processes = ["app"]
          protocol = "tcp"
          script_checks = []
          [services.concurrency]
            hard_limit = 25
            soft_limit = 20
            type = "connections"

          [[services.ports]]
            force_https = true
            handlers = ["http"]
            port = 80

          [[services.ports]]
            handlers = ["tls", "http"]
            port = 443

          [[services.tcp_checks]]
            grace_period = "1s"
            interval = "15s"
            restart_limit = 0
            timeout = "2s"
        """)
        #expect(c.groups.map(\.name) == ["app"] && c.groups[0].command == nil)
        #expect(c.services.count == 1)
        let s = c.services[0]
        #expect(s.internalPort == 3000 && s.protocol == "tcp" && s.processes == ["app"])
        #expect(s.ports == [Service.Port(port: 80, handlers: ["http"], forceHTTPS: true),
                            Service.Port(port: 443, handlers: ["tls", "http"])])
        #expect(s.concurrency == Concurrency(softLimit: 20, hardLimit: 25))
        #expect(s.httpChecks.isEmpty)
        #expect(s.tcpChecks.map(\.port) == [3000])
        #expect(s.tcpChecks[0].interval == .seconds(15) && s.tcpChecks[0].gracePeriod == .seconds(1))
        #expect(s.tcpChecks[0].method == nil && s.tcpChecks[0].path == nil)
        #expect(c.allChecks.map(\.name) == ["servicecheck-00-tcp-3000"])
    }

    @Test func legacyArrayOfProcessesAndMountsWithoutAppGroup() throws {
        let c = try flyConfig("""
        app = "legacy"
        [[processes]]
          name = "worker"
          command = "celery -A app worker"
        [[processes]]
          name = "web"
          command = "gunicorn app:app"
        [mounts]
          source = "data"
          destination = "/data"
        [[services]]
          internal_port = 8000
        """)
        #expect(c.groupNames == ["worker", "web"])
        #expect(c.group(named: "web")?.command == "gunicorn app:app")
        // No "app": the default group is the first name alphabetically, not the first in the file.
        #expect(c.defaultGroup == "web")
        #expect(c.services[0].processes == ["web"])
        #expect(c.services[0].processesGiven == false)
    }

    @Test func checksWithIntegerMillisecondsAndDurationStrings() throws {
        let c = try flyConfig("""
        [processes]
          worker = "bin/worker"
          web = "bin/web"

        [checks]
          [checks.alive]
            type = "tcp"
            port = 8080
            interval = 15000
            timeout = "2s"
            grace_period = 30000
          [checks.health]
            type = "http"
            port = 8080
            path = "/health"
            method = "get"
            interval = "1m30s"
            timeout = 500
            processes = ["worker"]
            headers = { Authorization = "Bearer x" }
        """)
        #expect(c.checks.map(\.name) == ["alive", "health"])
        let alive = c.checks[0], health = c.checks[1]
        #expect(alive.kind == .tcp && alive.origin == .topLevel && alive.port == 8080)
        #expect(alive.interval == .seconds(15) && alive.timeout == .seconds(2) && alive.gracePeriod == .seconds(30))
        #expect(alive.processes == ["web"])
        #expect(health.kind == .http && health.method == "GET" && health.path == "/health")
        #expect(health.interval == .seconds(90) && health.timeout == .milliseconds(500))
        #expect(health.processes == ["worker"])
        #expect(health.headers == [EnvVariable("Authorization", "Bearer x")])
    }

    @Test func restartEntriesApplyToTheirGroupsOrTheDefault() throws {
        let c = try flyConfig("""
        [processes]
          app = "a"
          worker = "w"
          cron = "c"
        [[restart]]
          policy = "always"
          processes = ["worker", "cron"]
        [[restart]]
          policy = "never"
        [[restart]]
          policy = "on-failure"
          retries = 3
          processes = ["cron"]
        """)
        #expect(c.groups.map(\.restart) == [.never, .always, .onFailure(retries: 3)])
    }

    @Test func restartDefaultsAndBadPolicy() throws {
        let c = try flyConfig("[processes]\nweb = \"w\"\n")
        #expect(c.groups[0].restart == .onFailure(retries: 10))
        let error = configError { _ = try flyConfig("[processes]\nweb = \"w\"\n[[restart]]\npolicy = \"alway\"\n") }
        #expect(error?.position?.description == "fly.toml:4:10")
        #expect(error?.message.contains("did you mean \"always\"") == true)
    }

    @Test func envValuesBecomeStrings() throws {
        let c = try flyConfig("""
        [env]
          WORKERS = 4
          RATIO = 1.5
          WHOLE = 3.0
          DEBUG = false
          NAME = "x"
          "QUOTED.KEY" = 'y'
        """)
        #expect(c.env == [EnvVariable("WORKERS", "4"), EnvVariable("RATIO", "1.5"), EnvVariable("WHOLE", "3"),
                          EnvVariable("DEBUG", "false"), EnvVariable("NAME", "x"), EnvVariable("QUOTED.KEY", "y")])
    }

    @Test func envFlyVariablesAreAWarning() throws {
        let c = try flyConfig("app = \"a\"\n\n[env]\n  PORT = \"8080\"\n  FLY_REGION = \"ord\"\n")
        #expect(c.env.map(\.name) == ["PORT", "FLY_REGION"])
        #expect(c.warnings.count == 1)
        #expect(c.warnings.first?.rendered == """
        fly.toml:5:3: warning: [env] sets FLY_REGION: names starting with FLY_ belong to Fly, and swiftproc's own value wins for the ones it sets (as Fly's do)
              FLY_REGION = "ord"
              ^
        """)
        #expect(configError { _ = try flyConfig("[env]\nLIST = [1, 2]\n") }?.position?.description == "fly.toml:2:8")
    }

    @Test func killSignalSpellings() throws {
        for (text, name) in [("SIGTERM", "SIGTERM"), ("TERM", "SIGTERM"), ("int", "SIGINT"), ("sigquit", "SIGQUIT"),
                             ("USR1", "SIGUSR1"), ("SIGUSR2", "SIGUSR2"), ("KILL", "SIGKILL"), ("STOP", "SIGSTOP")] {
            let c = try flyConfig("kill_signal = \"\(text)\"\n")
            #expect(c.killSignal.name == name)
        }
        #expect(try flyConfig("kill_signal = 'TERM'").killSignal.number == SIGTERM)
        #expect(try flyConfig("kill_signal = 'USR1'").killSignal.number == SIGUSR1)
        let error = configError { _ = try flyConfig("kill_signal = \"SIGHUP\"\n") }
        #expect(error?.position?.description == "fly.toml:1:15")
        #expect(error?.message.contains("SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2, SIGKILL, SIGSTOP") == true)
    }

    @Test func killTimeoutForms() throws {
        #expect(try flyConfig("kill_timeout = 10").killTimeout == .seconds(10))
        #expect(try flyConfig("kill_timeout = \"1m30s\"").killTimeout == .seconds(90))
        #expect(try flyConfig("kill_timeout = \"500ms\"").killTimeout == .milliseconds(500))
        #expect(try flyConfig("kill_timeout = 300").killTimeout == .seconds(300))
        let tooLong = configError { _ = try flyConfig("kill_timeout = 301") }
        #expect(tooLong?.message == "kill_timeout is 5m1s; Fly allows at most 300s")
        #expect(configError { _ = try flyConfig("kill_timeout = \"soon\"") }?.position?.description == "fly.toml:1:16")
        #expect(configError { _ = try flyConfig("kill_timeout = -1") } != nil)
    }

    @Test func releaseCommandTimeout() throws {
        #expect(try flyConfig("[deploy]\nrelease_command = 'x'\nrelease_command_timeout = '10m'\n").releaseCommandTimeout == .seconds(600))
        #expect(try flyConfig("[deploy]\nrelease_command_timeout = 120\n").releaseCommandTimeout == .seconds(120))
    }

    @Test func unknownProcessInAProcessesListIsAWarningWithASuggestion() throws {
        let c = try flyConfig("""
        [processes]
          app = "x"
          worker = "y"

        [http_service]
          internal_port = 8080
          processes = ["wrker", "app"]
        """)
        #expect(c.httpService?.processes == ["app"])
        #expect(c.warnings.map(\.rendered) == ["""
        fly.toml:7:15: warning: http_service: unknown process group "wrker"; did you mean "worker"? (known: app, worker); left out
              processes = ["wrker", "app"]
                          ^
        """])
    }

    @Test func unknownProcessInChecksAndRestartToo() throws {
        let check = try flyConfig("[processes]\napp='a'\n[checks.x]\ntype='tcp'\nport=1\nprocesses=['web']\n")
        #expect(check.checks.isEmpty && check.warnings.first?.position?.line == 6)
        let restart = try flyConfig("[processes]\napp='a'\n[[restart]]\npolicy='never'\nprocesses=['web']\n")
        #expect(restart.groups[0].restart == .flyDefault && restart.warnings.first?.position?.line == 5)
        let service = try flyConfig("[[services]]\ninternal_port=1\nprocesses=['web']\n")
        #expect(service.services.first?.processes == [])
        #expect(service.warnings.first?.position == FilePosition(path: "fly.toml", line: 3, column: 11, sourceLine: "processes=['web']"))
    }

    @Test func groupNamesFollowFlysRule() throws {
        #expect(try flyConfig("[processes]\nweb-1 = 'a'\nworker_2 = 'b'\n").groupNames == ["web-1", "worker_2"])
        let error = configError { _ = try flyConfig("[processes]\n  Web = 'a'\n") }
        #expect(error?.position?.description == "fly.toml:2:3")
        #expect(error?.message.contains("lowercase letters, digits") == true)
        #expect(configError { _ = try flyConfig("[processes]\n\"web.1\" = 'a'\n") } != nil)
    }

    @Test func legacyProcessesDuplicatesAreErrorsAndNamelessEntriesSkipped() throws {
        #expect(configError { _ = try flyConfig("[[processes]]\nname='a'\ncommand='x'\n[[processes]]\nname='a'\ncommand='y'\n") }?
            .position?.line == 5)
        // flyctl skips an entry without a name.
        #expect(try flyConfig("[[processes]]\ncommand='x'\n[[processes]]\nname='web'\ncommand='w'\n").groupNames == ["web"])
        #expect(configError { _ = try flyConfig("processes = 'web'\n") }?.position?.description == "fly.toml:1:13")
    }

    @Test func checksWithoutATypeOrAPortAreWarnedAboutAndNotRun() throws {
        let noType = try flyConfig("[checks.a]\nport = 80\n")
        #expect(noType.checks.isEmpty)
        #expect(noType.warnings.map(\.description) == ["fly.toml:1:9: warning: checks.a has no type (\"http\" or \"tcp\"); it is not run"])
        #expect(try flyConfig("[checks.a]\ntype = 'udp'\nport = 80\n").warnings.first?.position?.description == "fly.toml:2:8")
        let noPort = try flyConfig("[checks.a]\ntype = 'tcp'\n")
        #expect(noPort.checks.isEmpty && noPort.warnings.first?.message.contains("has no port") == true)
        // Without a port, a check probes the http service's internal_port, as on Fly.
        let fromService = try flyConfig("[http_service]\ninternal_port = 3000\n[checks.alive]\ntype = 'http'\npath = '/up'\n")
        #expect(fromService.checks.map(\.port) == [3000] && fromService.warnings.isEmpty)
    }

    @Test func wrongTypesPointAtTheValue() {
        let error = configError { _ = try flyConfig("[http_service]\n  internal_port = true\n") }
        #expect(error?.message == "http_service.internal_port must be a port number, not a boolean")
        #expect(error?.position?.description == "fly.toml:2:19")
        #expect(configError { _ = try flyConfig("[http_service]\nauto_stop_machines = 'sometimes'\n") }?.position?.line == 2)
        #expect(configError { _ = try flyConfig("[http_service]\nconcurrency = '20'\n") }?.position?.line == 2)
        #expect(configError { _ = try flyConfig("[http_service]\ninternal_port = 70000\n") } != nil)
    }

    @Test func httpServiceDefaultsAndSuspend() throws {
        let c = try flyConfig("[processes]\nweb = 'w'\nworker = 'k'\n[http_service]\nauto_stop_machines = 'suspend'\n")
        let http = try #require(c.httpService)
        #expect(http.internalPort == 8080 && http.autoStartMachines && http.minMachinesRunning == 0 && !http.forceHTTPS)
        #expect(http.autoStopMachines == .suspend)
        #expect(http.processes == ["web"] && !http.processesGiven)
        #expect(try flyConfig("[http_service]\nauto_stop_machines = false\n").httpService?.autoStopMachines == .off)
        #expect(try flyConfig("[http_service]\n[http_service.concurrency]\ntype='requests'\n").httpService?.concurrency
                == Concurrency(type: "requests", softLimit: 20, hardLimit: nil))
    }

    @Test func everythingElseIsIgnored() throws {
        let c = try flyConfig("""
        app = "kitchen-sink"
        swap_size_mb = 512
        some_future_key = { nested = [1, 2] }
        [vm]
          size = "shared-cpu-1x"
        [[mounts]]
          source = "data"
          destination = "/data"
        [mount]
          source = "x"
        [build]
          dockerfile = "Dockerfile"
          [build.args]
            RUBY_VERSION = "3.3"
        [[statics]]
          guest_path = "/app/public"
          url_prefix = "/static/"
        [experimental]
          cmd = ["start"]
          entrypoint = ["sh"]
        [metrics]
          port = 9091
          path = "/metrics"
        [processes]
          app = "bin/start"
        [[services]]
          internal_port = 8080
          script_checks = [{ command = "/bin/true" }]
        """)
        #expect(c.appName == "kitchen-sink" && c.groupNames == ["app"])
    }

    @Test func fileWithoutFinalNewlineAndCRLF() throws {
        #expect(try flyConfig("app = \"x\"\n[processes]\n  web = \"bin/web\"").group(named: "web")?.command == "bin/web")
        #expect(try flyConfig("app = \"x\"\r\n[processes]\r\n  web = \"bin/web\"\r\n").groupNames == ["web"])
    }

    @Test func emptyCommandMeansNoCommand() throws {
        let c = try flyConfig("[processes]\napp = ''\nworker = 'w'\n")
        #expect(c.group(named: "app")?.command == nil)
        // Another group can run, so the app can; the empty one is warned about.
        #expect(configError { try c.requireCommands() } == nil)
        #expect(c.runnableGroups.map(\.name) == ["worker"])
        #expect(c.warnings.first?.position?.description == "fly.toml:2:1")
        #expect(configError { try flyConfig("[processes]\napp = ''\n").requireCommands() }
                == .missingCommand(group: "app", configPath: "fly.toml"))
    }

    @Test func syntaxErrorsKeepTheirLocationAndGainThePath() {
        let error = configError { _ = try flyConfig("app = \"x\"\n[processes\nweb = 'a'\n", path: "deploy/fly.toml") }
        guard case .syntax(let tomlError, let path)? = error else {
            Issue.record("expected a syntax error, got \(String(describing: error))")
            return
        }
        #expect(path == "deploy/fly.toml")
        #expect(tomlError.location.line == 2)
        #expect(error?.rendered.hasPrefix("deploy/fly.toml:2:") == true)
        #expect(error?.rendered == tomlError.rendered(path: "deploy/fly.toml"))
    }

    @Test func handBuiltTablesWork() throws {
        var processes = TOMLTable(location: SourceLocation(line: 1, column: 1))
        processes.set(.string("rackup"), for: "web", keyLocation: SourceLocation(line: 2, column: 1),
                      valueLocation: SourceLocation(line: 2, column: 7))
        var root = TOMLTable()
        root.set(.table(processes), for: "processes", keyLocation: SourceLocation(line: 1, column: 2),
                 valueLocation: SourceLocation(line: 1, column: 1))
        let c = try AppConfig(flyToml: root, path: "fly.toml", directory: "/app")
        #expect(c.groups.map(\.command) == ["rackup"])
        #expect(c.defaultGroup == "web")
    }
}
