import Foundation
import Testing
@testable import SwiftProcKit

/// Every real fly.toml in `Tests/Fixtures/fly-toml-corpus` loads as flyctl loads it: warnings
/// allowed, no refusal; the plan names every group; an app with a runnable group gets a plan
/// `start` would run.
@Suite struct ConfigCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/fly-toml-corpus")

    static func apps() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: corpus, includingPropertiesForKeys: nil)
            .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("fly.toml").path) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test func everyRealFileLoadsAndPlansAllItsGroups() throws {
        let apps = try Self.apps()
        #expect(apps.count >= 60, "the corpus holds \(apps.count) files")
        var runnable = 0
        for app in apps {
            let name = app.lastPathComponent
            let config: AppConfig
            do {
                config = try ConfigLoader.load(configPath: "fly.toml", in: app.path)
            } catch {
                Issue.record("\(name): \(error.rendered)")
                continue
            }
            let plan = try SupervisorPlan(config: config, options: RunOptions(), requireRunnable: false)
            let report = Plan(config, plan: plan)
            #expect(report.groups.map(\.name) == config.groupNames, "\(name)")
            #expect(!config.groupNames.isEmpty, "\(name)")
            if !config.runnableGroups.isEmpty {
                runnable += 1
                // What `start` builds: every runnable group at one instance, nothing refused.
                let started = try SupervisorPlan(config: config, options: RunOptions())
                #expect(started.groups.map(\.name) == config.runnableGroups.map(\.name), "\(name)")
                #expect(started.groups.allSatisfy { $0.count == 1 }, "\(name)")
            } else {
                #expect(throws: ConfigError.self) { try SupervisorPlan(config: config, options: RunOptions()) }
            }
            #expect(!report.jsonText().isEmpty)
        }
        // The ones with [processes], [experimental] cmd or a Dockerfile beside them.
        #expect(runnable >= 15, "\(runnable) runnable")
    }

    /// A few files whose reading says the rules work on real input.
    @Test func spotChecks() throws {
        func load(_ prefix: String) throws -> AppConfig {
            let app = try #require(try Self.apps().first { $0.lastPathComponent.hasPrefix(prefix) })
            return try ConfigLoader.load(configPath: "fly.toml", in: app.path)
        }
        // flyctl's reference fixture: concurrency type "donuts" is read past with a warning.
        let reference = try load("05-")
        #expect(reference.warnings.contains { $0.message.contains("\"donuts\"") })
        // Laravel's empty app command: the other groups run.
        let laravel = try load("73-")
        #expect(laravel.group(named: "app")?.command == nil)
        #expect(laravel.runnableGroups.map(\.name) == ["cron", "worker"])
        // Rails from Fly's dockerfile-rails generator: [processes] wins; its Dockerfile copies the
        // build context to /rails in a build stage and from there into the final one.
        let rails = try load("70-")
        #expect(rails.group(named: "app")?.command == "./bin/rails server")
        let app = try #require(try Self.apps().first { $0.lastPathComponent.hasPrefix("70-") })
        let dockerfile = Dockerfile.parse(try String(contentsOf: app.appendingPathComponent("Dockerfile"), encoding: .utf8))
        #expect(dockerfile.contextDirectories == ["/rails"] && dockerfile.workdir == "/rails")
        #expect(dockerfile.shellCommand == "./bin/docker-entrypoint")
        // Django: the Dockerfile's gunicorn binds a fixed port, which check flags with the fix.
        let django = try load("61-")
        #expect(django.warnings.contains { $0.message.contains("hard-codes port 8000") && $0.message.contains("${PORT:-8000}") })
        // Old-format files: string ports read as numbers.
        let old = try load("01-")
        #expect(!old.services.isEmpty)
    }
}
