import Foundation
import Testing
@testable import SwiftProcKit

/// The one plan: config + options → what `check` prints, `start` runs and `scale` obeys.
@Suite struct PlanTests {
    func plan(_ toml: String, dotenv: [EnvVariable] = [], _ configure: (inout RunOptions) -> Void = { _ in }) throws -> SupervisorPlan {
        var config = try flyConfig(toml)
        config.dotenv = dotenv
        if !dotenv.isEmpty { config.envFiles = [".env"] }
        var options = RunOptions()
        configure(&options)
        return try SupervisorPlan(config: config, options: options)
    }

    static let app = """
    app = "shop"
    primary_region = "ord"
    [env]
      PRIMARY_REGION = "from-env"
      FLY_APP_NAME = "not-this"
    [processes]
      app = "bin/web"
      worker = "bin/work"
    [[vm]]
      memory = "2gb"
      processes = ["worker"]
    """

    @Test func flysMachineEnvironment() throws {
        let p = try plan(Self.app)
        let env = p.environment(group: "worker", index: 2, port: 5101)
        let id = machineID(app: "shop", group: "worker", index: 2)
        #expect(env["FLY_APP_NAME"] == "shop", "Fly's own values win over [env]")
        #expect(env["PRIMARY_REGION"] == "ord", "primary_region wins over [env]")
        #expect(env["FLY_REGION"] == "ord")
        #expect(env["FLY_PROCESS_GROUP"] == "worker" && env["PS"] == "worker.2" && env["PORT"] == "5101")
        #expect(env["FLY_MACHINE_ID"] == id && env["FLY_ALLOC_ID"] == id)
        #expect(env["FLY_PRIVATE_IP"] == "::1" && env["FLY_PUBLIC_IP"] == "::1")
        #expect(env["FLY_IMAGE_REF"] == "registry.fly.io/shop:deployment-local")
        #expect(env["FLY_VM_MEMORY_MB"] == "2048")
        #expect(p.environment(group: "app", index: 1, port: 5000)["FLY_VM_MEMORY_MB"] == "256")
        #expect(env["PIDFILE"] == "/app/.swiftproc/pids/worker.2.pid")
        #expect(env["FLY_MACHINE_VERSION"]?.count == 12)
        #expect(env["FLY_MACHINE_VERSION"] != p.environment(group: "app", index: 1, port: 5000)["FLY_MACHINE_VERSION"])

        let release = p.releaseEnvironment()
        #expect(release["RELEASE_COMMAND"] == "1" && release["FLY_PROCESS_GROUP"] == "fly_app_release_command")
        #expect(release["PRIMARY_REGION"] == "ord" && release["FLY_REGION"] == "ord" && release["PORT"] == nil)

        // --region acts as another region; without primary_region the region is "local".
        #expect(try plan(Self.app) { $0.region = "ams" }.environment(group: "app", index: 1, port: 1)["FLY_REGION"] == "ams")
        #expect(try plan("[processes]\napp='a'\n").environment(group: "app", index: 1, port: 1)["FLY_REGION"] == "local")
        #expect(throws: ConfigError.self) { try plan(Self.app) { $0.region = "Not A Region" } }
    }

    @Test func aPidfileTheUserSetIsKept() throws {
        let p = try plan("[processes]\napp='a'\n", dotenv: [EnvVariable("PIDFILE", "/tmp/mine.pid")])
        #expect(p.environment(group: "app", index: 2, port: 1)["PIDFILE"] == "/tmp/mine.pid")
    }

    @Test func thePortBaseComesFromTheFlagThenDotenvThenTheEnvironment() throws {
        let toml = "[processes]\napp='a'\nworker='w'\n"
        #expect(try plan(toml).groups.map(\.basePort) == [5000, 5100])
        #expect(try plan(toml, dotenv: [EnvVariable("PORT", "6000")]).groups.map(\.basePort) == [6000, 6100])
        #expect(try plan(toml) { $0.inheritedEnvironment = ["PORT": "7000"] }.groups.map(\.basePort) == [7000, 7100])
        #expect(try plan(toml, dotenv: [EnvVariable("PORT", "6000")]) { $0.inheritedEnvironment = ["PORT": "7000"] }
            .groups.map(\.basePort) == [6000, 6100], "foreman: .env over the environment")
        #expect(try plan(toml, dotenv: [EnvVariable("PORT", "6000")]) { $0.portBase = "8000" }.groups.map(\.basePort) == [8000, 8100])
        let bad = configError { _ = try plan(toml, dotenv: [EnvVariable("PORT", "http")]) }
        #expect(bad?.message == "PORT in .env must be a port number (1-65535), not \"http\"")
        // The instance's own PORT still wins over the .env value.
        #expect(try plan(toml, dotenv: [EnvVariable("PORT", "6000")]).environment(group: "worker", index: 1, port: 6100)["PORT"] == "6100")
    }

    @Test func servicesSharingAnInternalPortShareOneListenerAndUDPGetsNone() throws {
        let p = try plan("""
        [processes]
          app = "a"
          web = "w"
          dns = "d"
        [http_service]
          internal_port = 8080
          processes = ["app"]
        [[services]]
          internal_port = 8080
          processes = ["web"]
          [[services.ports]]
            port = 8443
            handlers = ["tls", "http"]
        [[services]]
          internal_port = 5353
          protocol = "udp"
          processes = ["dns"]
        """)
        #expect(p.services.count == 1)
        #expect(p.services[0].listenPort == 8080 && p.services[0].groups == ["app", "web"])
        #expect(p.services[0].name == "http_service + services[0]")
        let report = Plan(try flyConfig("[[services]]\ninternal_port = 5353\nprotocol = 'udp'\n[processes]\napp='a'\n"),
                          plan: try plan("[[services]]\ninternal_port = 5353\nprotocol = 'udp'\n[processes]\napp='a'\n"))
        #expect(report.notes.contains { $0.contains("is UDP") })
    }

    @Test func oneSetOfLimitsForStartCheckAndScale() throws {
        let toml = "[processes]\napp='a'\nworker='w'\n[http_service]\ninternal_port = 5100\n"
        let p = try plan(toml) { $0.formation = ["worker=0"]; $0.portBase = "5000" }
        #expect(throws: ConfigError.self) { try p.validate(["app": 101]) }
        #expect(throws: ConfigError.self) { try p.validate(["worker": 1]) } // 5100 is the proxy's
        #expect(throws: ConfigError.self) { try plan(toml) { $0.portBase = "5000" } }
        #expect(try plan(toml) { $0.formation = ["worker=0"]; $0.proxy = false }.groups.count == 2)
        var tight = p
        tight.maxInstances = 3
        #expect(throws: ConfigError.self) { try tight.validate(["app": 4]) }
        for option in [{ (o: inout RunOptions) in o.proxyPort = "70000" }, { $0.idleTimeout = "soon" }, { $0.restart = "sometimes" },
                       { $0.portBase = "0" }, { $0.formation = ["app=-1"] }, { $0.pipeGroups = ["nope"] }] {
            #expect(throws: ConfigError.self) { try plan(toml) { $0.proxy = false; option(&$0) } }
        }
    }

    @Test func formationChangesNeverOverflow() throws {
        let known = ["app", "worker"]
        let current = Formation([.init(group: "app", count: 1), .init(group: "worker", count: 1)])
        #expect(configError { _ = try FormationChange.parse(["app=9223372036854775807"], known: known) } != nil)
        #expect(configError { _ = try FormationChange.parse(["+9223372036854775808"], known: known, defaultGroup: "app") } != nil)
        let twice = try FormationChange.parse(["app=+100", "app=+100"], known: known)
        #expect(twice.applied(to: current)["app"] == 201)
        #expect(try FormationChange.parse(["+1"], known: known, defaultGroup: "app").applied(to: current)["app"] == 2)
        #expect(try FormationChange.parse(["-1"], known: known, defaultGroup: "worker").applied(to: current)["worker"] == 0)
        #expect(try FormationChange.parse(["worker=-5"], known: known).applied(to: current)["worker"] == 0)
        var huge = current
        huge["app"] = Int.max - 1
        #expect(try FormationChange.parse(["app=+100"], known: known).applied(to: huge)["app"] == Int.max)
        #expect(configError { _ = try Formation.parse(["app=9223372036854775807"], known: known) }?.message
                == "invalid formation \"app=9223372036854775807\": at most 100 instances per group (each group has 100 ports) (known: app, worker)")
    }

    @Test func deploySettings() throws {
        let c = try flyConfig("[deploy]\n  strategy = 'immediate'\n  max_unavailable = 0.5\n  wait_timeout = '30s'\n")
        #expect(c.rollout == Rollout(strategy: .immediate, maxUnavailable: 0.5, waitTimeout: .seconds(30)))
        #expect(c.rollout.batchSize(of: 4) == 2 && c.rollout.batchSize(of: 1) == 1)
        #expect(Rollout().batchSize(of: 10) == 1 && Rollout(maxUnavailable: 3).batchSize(of: 10) == 3)
        #expect(try flyConfig("[deploy]\nstrategy = 'canary'\n").warnings.first?.message.contains("canary") == true)
        #expect(try flyConfig("[deploy]\nstrategy = 'rollng'\n").warnings.first?.message.contains("did you mean \"rolling\"") == true)
        #expect(configError { _ = try flyConfig("[deploy]\nmax_unavailable = 0\n") } != nil)
        #expect(try flyConfig("[deploy]\nwait_timeout = 120\n").rollout.waitTimeout == .seconds(120))
    }

    @Test func whatADeployChangesPerGroup() throws {
        let old = try plan("[processes]\nweb = 'w'\nworker = 'k'\nold = 'o'\n[http_service]\ninternal_port = 8080\nprocesses = ['web']\n")
        let new = try plan("""
        [env]
          A = "1"
        [processes]
          web = 'w'
          worker = 'k2'
          extra = 'e'
        [http_service]
          internal_port = 8080
          processes = ['web']
        """)
        let changes = Supervisor.changes(from: old, to: new, services: ["web": ["8080"]])
        #expect(changes["old"] == .removed)
        #expect(changes["extra"] == .added(count: 1))
        #expect(changes["worker"] == .changed(["command", "env"]))
        #expect(changes["web"] == .changed(["env"]), "[env] reaches every group")
        let same = Supervisor.changes(from: old, to: old, services: ["web": ["8080"]])
        #expect(same.values.allSatisfy { $0 == .unchanged })
    }

    @Test func theDefaultBaseAvoidsAServicesInternalPort() throws {
        let flask = "[processes]\napp = 'a'\nworker = 'w'\n[http_service]\ninternal_port = 5000\n"
        #expect(try plan(flask).groups.map(\.basePort) == [6000, 6100])
        let report = Plan(try flyConfig(flask), plan: try plan(flask))
        #expect(report.notes.contains { $0.hasPrefix("instance ports start at 6000, not 5000") })
        // An explicit base is the user's: refused when it collides.
        #expect(throws: ConfigError.self) { try plan(flask) { $0.portBase = "5000" } }
        #expect(try plan("[processes]\napp = 'a'\n[http_service]\ninternal_port = 8080\n").groups.map(\.basePort) == [5000])
    }

    @Test func warningsAreInFileOrder() throws {
        let c = try flyConfig("[http_service]\n  internal_port = 8080\n  [http_service.concurrency]\n    hardlimit = 3\n[processes]\n  app = 'bin/app -p 3000'\n[env]\n  FLY_X = '1'\nzz = 1\n")
        let lines = c.warnings.compactMap(\.position?.line)
        #expect(lines == lines.sorted() && lines.count == 3, "\(c.warnings)")
        #expect(c.warnings.first?.message.contains("[http_service.concurrency]") == true)
    }
}
