import Testing
@testable import TOML

@Suite struct FlyTomlTests {
    /// A realistic fly.toml: comments, hyphenated keys, [[services]] with [[services.ports]],
    /// [http_service.concurrency], [[vm]], and no newline at the end.
    let flyToml = """
        # fly.toml app configuration file generated for my-app on 2024-05-01T10:00:00Z
        #
        # See https://fly.io/docs/reference/configuration/ for information about how to use this file.

        app = 'my-app'
        primary_region = "ams"
        kill_signal = "SIGINT"
        kill_timeout = "5s"
        swap_size_mb = 512

        [build]
          dockerfile = "Dockerfile"
          [build.args]
            RUBY_VERSION = "3.3.0"

        [env]
          PORT = "8080"
          LOG_LEVEL = "info"

        [processes]
          web = "bin/rails server -b 0.0.0.0 -p 8080"
          worker = "bundle exec sidekiq"
          release-tasks = "bin/rails db:migrate"

        [http_service]
          internal_port = 8080
          force_https = true
          auto_stop_machines = "stop"
          auto_start_machines = true
          min_machines_running = 0
          processes = ["web"]  # only the web process

          [http_service.concurrency]
            type = "requests"
            soft_limit = 200
            hard_limit = 250

        [[services]]
          protocol = "tcp"
          internal_port = 8081
          processes = ["worker"]

          [[services.ports]]
            port = 80
            handlers = ["http"]
            force_https = true

          [[services.ports]]
            port = 443
            handlers = ["tls", "http"]

          [services.concurrency]
            type = "connections"
            hard_limit = 25
            soft_limit = 20

          [[services.tcp_checks]]
            interval = "15s"
            timeout = "2s"
            grace_period = "1s"

        [[vm]]
          memory = '1gb'
          cpu_kind = 'shared'
          cpus = 1

        [[vm]]
          size = "performance-2x"
          processes = ["worker"]

        [deploy]
          release_command = "bin/rails db:prepare"
          strategy = "rolling"
        """

    @Test func decodesEverything() throws {
        let t = try TOMLTable(parsing: flyToml)
        #expect(t.keys == ["app", "primary_region", "kill_signal", "kill_timeout", "swap_size_mb", "build", "env",
                           "processes", "http_service", "services", "vm", "deploy"])
        #expect(t["app"] == .string("my-app"))
        #expect(t["swap_size_mb"] == .integer(512))
        #expect(value(t, "build.args.RUBY_VERSION") == .string("3.3.0"))

        let processes = try #require(t["processes"]?.tableValue)
        #expect(processes.keys == ["web", "worker", "release-tasks"])
        #expect(processes["release-tasks"] == .string("bin/rails db:migrate"))
        #expect(processes.entry("worker")?.keyLocation == loc(22, 3))
        #expect(processes.entry("worker")?.valueLocation == loc(22, 12))
        #expect(t.entry("processes")?.valueLocation == loc(20, 1))

        #expect(value(t, "http_service.internal_port") == .integer(8080))
        #expect(value(t, "http_service.processes") == .array([.string("web")]))
        #expect(value(t, "http_service.concurrency.soft_limit") == .integer(200))
        #expect(t["http_service"]?.tableValue?.keys.last == "concurrency")

        let services = try #require(t["services"]?.arrayValue)
        #expect(services.count == 1)
        let service = try #require(services.first?.tableValue)
        let ports = try #require(service["ports"]?.arrayValue)
        #expect(ports.count == 2)
        #expect(ports[1].tableValue?["port"] == .integer(443))
        #expect(ports[1].tableValue?["handlers"] == .array([.string("tls"), .string("http")]))
        #expect(value(service, "concurrency.type") == .string("connections"))
        #expect(service["tcp_checks"]?.arrayValue?.first?.tableValue?["grace_period"] == .string("1s"))

        let vms = try #require(t["vm"]?.arrayValue)
        #expect(vms.count == 2)
        #expect(vms[0].tableValue?["memory"] == .string("1gb"))
        #expect(vms[1].tableValue?["size"] == .string("performance-2x"))
        #expect(vms[1].tableValue?.location == loc(67, 1))

        // The last line has no newline.
        #expect(value(t, "deploy.strategy") == .string("rolling"))
        #expect(t["deploy"]?.tableValue?.entry("strategy")?.valueLocation == loc(73, 14))
    }

    @Test func typoInFlyTomlPointsAtIt() {
        let broken = flyToml.replacingOccurrences("  worker = \"bundle exec sidekiq\"", with: "  worker \"bundle exec sidekiq\"")
        let e = decodeError(broken)
        #expect(e?.rendered(path: "fly.toml") == "fly.toml:22:10: expected '=' after key \"worker\"\n      worker \"bundle exec sidekiq\"\n             ^")
    }

    @Test func mutatedFlyTomlNeverCrashes() {
        var rng = SplitMix64(seed: 1234)
        let original = Array(flyToml.utf8)
        let alphabet = Array("[]{}=\"'.,#\n\r\t 0a_-+:\\".utf8) + [0, 0x7F, 0xC3, 0xFF]
        var decoded = 0
        var misplaced: [[UInt8]] = []
        for _ in 0..<1000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = alphabet.randomElement(using: &rng)!
                case 1: bytes.insert(alphabet.randomElement(using: &rng)!, at: i)
                default: bytes.remove(at: i)
                }
            }
            do {
                _ = try TOMLTable(parsing: bytes)
                decoded += 1
            } catch {
                // One #expect per case would dominate the run time; collect, then check once.
                let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).count
                if !(1...lines).contains(error.location.line) || error.location.column < 1 { misplaced.append(bytes) }
            }
        }
        #expect(misplaced.isEmpty, "errors pointing outside the document: \(misplaced.prefix(3))")
        #expect(decoded > 0 && decoded < 1000)
    }

    @Test func duplicateProcessesTable() {
        let e = decodeError(flyToml + "\n[processes]\nweb = 'x'")
        #expect(e?.message == "table [processes] is defined twice (first defined at 20:1)")
        #expect(e?.location == loc(74, 1))
    }
}

extension String {
    /// A minimal Foundation-free replacement helper for tests.
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return self[..<r.lowerBound] + replacement + self[r.upperBound...]
    }

    func range(of target: String) -> Range<String.Index>? {
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) { return i..<index(i, offsetBy: target.count) }
            i = index(after: i)
        }
        return nil
    }
}
