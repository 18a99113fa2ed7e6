import Foundation
import Testing
@testable import SwiftProcKit

/// flyctl's loader converts older forms before anything reads the file; so does swiftproc.
/// What flyctl accepts but swiftproc cannot use is a warning at file:line:col, never a refusal.
@Suite struct ConfigLegacyFormsTests {
    @Test func portsAsStrings() throws {
        let c = try flyConfig("""
        [[services]]
          internal_port = "5000"
          [[services.ports]]
            port = "80"
            handlers = ["http"]
        """)
        #expect(c.services.first?.internalPort == 5000)
        #expect(c.services.first?.ports.first?.port == 80)
        #expect(c.warnings.isEmpty)
        #expect(configError { _ = try flyConfig("[[services]]\ninternal_port = \"http\"\n") }?.position?.description == "fly.toml:2:17")
    }

    @Test func concurrencyAsASoftHardString() throws {
        let c = try flyConfig("[[services]]\n  internal_port = 8080\n  concurrency = \"20,25\"\n")
        // flyctl reads the string form as a requests limit.
        #expect(c.services.first?.concurrency == Concurrency(type: "requests", softLimit: 20, hardLimit: 25))
        // Fly's defaults: soft 20 and no hard limit unless given.
        #expect(try flyConfig("[http_service]\n[http_service.concurrency]\n").httpService?.concurrency
                == Concurrency(type: "connections", softLimit: 20, hardLimit: nil))
        let donuts = try flyConfig("[http_service]\n  [http_service.concurrency]\n    type = \"donuts\"\n")
        #expect(donuts.httpService?.concurrency?.type == "connections")
        #expect(donuts.warnings.first?.position?.description == "fly.toml:3:12")
    }

    @Test func sectionsAsTablesOrArrays() throws {
        // [services] as one table, [[checks]] with names, [[env]] merged in order.
        let c = try flyConfig("""
        [services]
          internal_port = 3000
        [[checks]]
          name = "alive"
          type = "tcp"
          port = 3000
        [[env]]
          A = "1"
          B = "x"
        [[env]]
          B = "2"
        """)
        #expect(c.services.map(\.internalPort) == [3000])
        #expect(c.checks.map(\.name) == ["alive"])
        #expect(c.env == [EnvVariable("A", "1"), EnvVariable("B", "2")])
        #expect(configError { _ = try flyConfig("[[checks]]\ntype = 'tcp'\nport = 1\n") }?.message == "[[checks]] needs a name")
        // mount, mounts, [vm] as a table: accepted.
        #expect(try flyConfig("[mount]\nsource = 'data'\ndestination = '/data'\n[vm]\nmemory = 512\n").warnings.isEmpty)
    }

    @Test func experimentalKillTimeoutAndMillisecondCheckIntervals() throws {
        let c = try flyConfig("""
        [experimental]
          kill_timeout = 12
        [[services]]
          internal_port = 8080
          [[services.tcp_checks]]
            interval = 10000
            timeout = 2000
            grace_period = "1s"
        """)
        #expect(c.killTimeout == .seconds(12))
        let check = try #require(c.services.first?.tcpChecks.first)
        #expect(check.interval == .seconds(10) && check.timeout == .seconds(2) && check.gracePeriod == .seconds(1))
        // The top-level kill_timeout wins over the experimental one.
        #expect(try flyConfig("kill_timeout = 3\n[experimental]\nkill_timeout = 12\n").killTimeout == .seconds(3))
    }

    @Test func serviceWithoutInternalPortUsesFlysDefault() throws {
        #expect(try flyConfig("[[services]]\n  protocol = \"tcp\"\n").services.first?.internalPort == 8080)
    }

    @Test func headersAsAnArrayOfTables() throws {
        let c = try flyConfig("""
        [[services]]
          internal_port = 8080
          [[services.http_checks]]
            path = "/"
            [[services.http_checks.headers]]
              name = "Host"
              value = "example.com"
            [[services.http_checks.headers]]
              X-Forwarded-Proto = "https"
        """)
        #expect(c.services.first?.httpChecks.first?.headers == [EnvVariable("Host", "example.com"), EnvVariable("X-Forwarded-Proto", "https")])
    }

    @Test func unknownKeysAreWarningsWithTheClosestKnownKey() throws {
        let c = try flyConfig("""
        app = "a"
        primary_regoin = "ord"
        [http_service]
          interal_port = 8080
          [[http_service.checks]]
            pathh = "/up"
        [deploy]
          stratgy = "rolling"
        [whatever]
          x = 1
        """)
        #expect(c.warnings.map(\.description) == [
            "fly.toml:2:1: warning: unknown key \"primary_regoin\" in the top level; did you mean \"primary_region\"?",
            "fly.toml:4:3: warning: unknown key \"interal_port\" in [http_service]; did you mean \"internal_port\"?",
            "fly.toml:6:5: warning: unknown key \"pathh\" in [http_service.checks]; did you mean \"path\"?",
            "fly.toml:8:3: warning: unknown key \"stratgy\" in [deploy]; did you mean \"strategy\"?",
            "fly.toml:9:2: warning: unknown key \"whatever\" in the top level (ignored)",
        ])
        #expect(c.httpService?.internalPort == 8080, "the misspelt key is not read: Fly's default applies")
    }

    @Test func flyVariablesInEnvAreAWarningNotAnError() throws {
        let c = try flyConfig("[env]\n  FLY_REGION = \"ord\"\n  OTHER = \"x\"\n")
        #expect(c.env.map(\.name) == ["FLY_REGION", "OTHER"])
        #expect(c.warnings.map(\.position?.description) == ["fly.toml:2:3"])
    }

    @Test func extremeNumbersAreErrorsNotCrashes() {
        for key in ["kill_timeout = -9223372036854775808", "kill_timeout = 9223372036854775807", "kill_timeout = -1",
                    "[deploy]\nrelease_command_timeout = -9223372036854775808",
                    "[[services]]\ninternal_port = 8080\n[[services.tcp_checks]]\ninterval = -9223372036854775808",
                    "kill_timeout = 1e308", "[[services]]\ninternal_port = \"99999999999999999999\""] {
            #expect(configError { _ = try flyConfig(key) } != nil, "\(key)")
        }
    }

    @Test func vmMemoryPerGroup() throws {
        let c = try flyConfig("""
        [processes]
          app = "a"
          worker = "w"
          big = "b"
        [[vm]]
          processes = ["big"]
          size = "performance-2x"
        [[vm]]
          memory = "1gb"
        [[vm]]
          processes = ["worker"]
          memory = 512
          memory_mb = 768
        """)
        // A group-specific [[vm]] wins over the general one; memory_mb wins over memory.
        #expect(c.groups.map(\.memoryMB) == [1024, 768, 4096])
        #expect(try flyConfig("[processes]\napp='a'\n").groups[0].memoryMB == 256)
        #expect(FieldReader.megabytes("2GB") == 2048 && FieldReader.megabytes("512mb") == 512 && FieldReader.megabytes("x") == nil)
    }

    @Test func hardCodedPortsAreFlaggedWithTheFix() throws {
        let c = try flyConfig("""
        [processes]
          app = "bin/rails server -p 3000"
          web = "gunicorn --bind :8000 app:app"
          ok = "bin/rails server -p $PORT"
          redis = "worker --redis redis://localhost:6379"
        [http_service]
          internal_port = 3000
          processes = ["app"]
        """)
        #expect(c.warnings.count == 2, "\(c.warnings)")
        #expect(c.warnings[0].description.hasPrefix("fly.toml:2:3: warning: app's command hard-codes port 3000 (\"-p 3000\"): swiftproc's proxy listens on 3000"))
        #expect(c.warnings[0].message.hasSuffix("use $PORT with a fallback, e.g. ${PORT:-3000}, which also works on Fly"))
        #expect(c.warnings[1].message.contains("web's command hard-codes port 8000 (\"--bind :8000\"): locally each instance gets its own $PORT"))
        for command in ["next start -p 3000", "uvicorn main:app --port=8000", "PORT=3000 node app.js", "puma -b tcp://0.0.0.0:9292",
                        "python manage.py runserver 0.0.0.0:8000", "php artisan serve --port 8000"] {
            #expect(CommandLint.hardCodedPort(in: command) != nil, "\(command)")
        }
        for command in ["bundle exec sidekiq", "gunicorn app:app", "node server.js --port ${PORT:-3000}", "psql postgres://db:5432/x"] {
            #expect(CommandLint.hardCodedPort(in: command) == nil, "\(command)")
        }
    }
}
