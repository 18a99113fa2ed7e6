import Foundation
import Testing
@testable import SwiftProcKit

@Suite struct ConfigLoaderTests {
    let flyWithProcesses = """
    app = "shop"
    [processes]
      app = "bin/rails server"
      worker = "bundle exec sidekiq"
    """

    @Test func flyTomlWithProcessesWinsOverAProcfile() throws {
        let app = try TempApp(["fly.toml": flyWithProcesses, "Procfile": "web: something else\n"])
        defer { app.cleanUp() }
        let c = try ConfigLoader.load(in: app.directory)
        #expect(c.source == .flyToml)
        #expect(c.groupNames == ["app", "worker"])
        #expect(c.procfilePath == nil)
        #expect(c.directory == app.directory)
        #expect(c.configPath == app.directory + "/fly.toml")
    }

    @Test func flyTomlWithoutProcessesTakesThemFromTheProcfile() throws {
        let app = try TempApp([
            "fly.toml": "app = \"shop\"\nkill_signal = \"SIGTERM\"\n[env]\nRAILS_ENV = \"production\"\n",
            "Procfile": "web: bundle exec puma -C config/puma.rb\nworker: bundle exec sidekiq\nrelease: bin/rails db:migrate\n",
        ])
        defer { app.cleanUp() }
        let c = try ConfigLoader.load(in: app.directory)
        #expect(c.source == .flyToml)
        #expect(c.groupNames == ["web", "worker"])
        #expect(c.procfilePath == app.directory + "/Procfile")
        #expect(c.killSignal.name == "SIGTERM")
        #expect(c.env == [EnvVariable("RAILS_ENV", "production")])
        #expect(c.releaseCommand == "bin/rails db:migrate")
        #expect(c.defaultGroup == "web")
        try c.requireCommands()
    }

    /// A Heroku-style app: fly.toml (from `fly launch`) names Fly's implicit `app` group, the
    /// Procfile calls that process `web`. `fly launch` maps web → app; so does swiftproc.
    @Test func flyTomlsImplicitAppGroupIsTheProcfilesWebProcess() throws {
        let app = try TempApp([
            "fly.toml": "[[services]]\n  internal_port = 1337\n  processes = [\"app\"]\n[[restart]]\n  policy = \"never\"\n  processes = [\"app\"]\n",
            "Procfile": "worker: w\nweb: node server.js\n",
        ])
        defer { app.cleanUp() }
        let c = try ConfigLoader.load(in: app.directory)
        #expect(c.defaultGroup == "web")
        #expect(c.services.first?.processes == ["web"])
        #expect(c.group(named: "web")?.restart == .never)
        #expect(c.group(named: "worker")?.restart == .flyDefault)
        // A Procfile alone: `web` is also the default group (e.g. for a bare `scale 3`).
        let procfileOnly = try TempApp(["Procfile": "clock: c\nweb: w\n"])
        defer { procfileOnly.cleanUp() }
        #expect(try ConfigLoader.load(in: procfileOnly.directory).defaultGroup == "web")
    }

    @Test func flyTomlReleaseCommandBeatsTheProcfiles() throws {
        let app = try TempApp(["fly.toml": "[deploy]\nrelease_command = \"bin/migrate\"\n", "Procfile": "web: w\nrelease: other\n"])
        defer { app.cleanUp() }
        #expect(try ConfigLoader.load(in: app.directory).releaseCommand == "bin/migrate")
    }

    @Test func flyTomlWithoutProcessesOrProcfileNeedsACommandToRun() throws {
        let app = try TempApp(["fly.toml": "app = \"phx\"\n"])
        defer { app.cleanUp() }
        let c = try ConfigLoader.load(in: app.directory)
        #expect(c.groups == [ProcessGroup(name: "app", command: nil)])
        #expect(configError { try c.requireCommands() } == .missingCommand(group: "app", configPath: c.configPath))
    }

    @Test func procfileAloneWhenThereIsNoFlyToml() throws {
        let app = try TempApp(["Procfile": "web: node server.js\n"])
        defer { app.cleanUp() }
        let c = try ConfigLoader.load(in: app.directory)
        #expect(c.source == .procfile)
        #expect(c.groups.map(\.command) == ["node server.js"])
        #expect(c.groups[0].source == .procfile(path: c.configPath, line: 1))
        #expect(c.killSignal == .defaultSignal && c.killTimeout == .seconds(5))
    }

    @Test func nothingFoundSaysWhatWasLookedFor() throws {
        let app = try TempApp([:])
        defer { app.cleanUp() }
        let error = configError { _ = try ConfigLoader.load(in: app.directory) }
        #expect(error == .noConfigFound(directory: app.directory, lookedFor: ["fly.toml", "Procfile"]))
        #expect(error?.rendered.contains("looked for fly.toml and Procfile") == true)
    }

    @Test func explicitConfigInASubdirectory() throws {
        let app = try TempApp(["deploy/fly.toml": "[processes]\nweb = 'bin/web'\n[http_service]\nprocesses = ['wbe']\n"])
        defer { app.cleanUp() }
        let warned = try ConfigLoader.load(configPath: "deploy/fly.toml", in: app.directory)
        #expect(warned.warnings.first?.position?.path == "deploy/fly.toml")
        #expect(warned.warnings.first?.rendered.hasPrefix(
            "deploy/fly.toml:4:13: warning: http_service: unknown process group \"wbe\"; did you mean \"web\"?") == true)

        try app.write("deploy/fly.toml", "[processes]\nweb = 'bin/web'\n")
        let c = try ConfigLoader.load(configPath: "deploy/fly.toml", in: app.directory)
        #expect(c.directory == app.directory + "/deploy")
        #expect(c.configPath == "deploy/fly.toml")
    }

    @Test func explicitFilesThatDoNotExist() throws {
        let app = try TempApp(["fly.toml": flyWithProcesses])
        defer { app.cleanUp() }
        #expect(configError { _ = try ConfigLoader.load(configPath: "nope.toml", in: app.directory) }
                == .fileNotFound("nope.toml", role: "config file"))
        #expect(configError { _ = try ConfigLoader.load(procfilePath: "Procfile.dev", in: app.directory) }
                == .fileNotFound("Procfile.dev", role: "Procfile"))
        #expect(configError { _ = try ConfigLoader.load(configPath: "fly.toml", procfilePath: "Procfile.dev", in: app.directory) }
                == .fileNotFound("Procfile.dev", role: "Procfile"))
    }

    @Test func explicitProcfileAloneIgnoresFlyToml() throws {
        let app = try TempApp(["fly.toml": flyWithProcesses, "Procfile.dev": "web: bin/dev\ncss: bin/css --watch\n"])
        defer { app.cleanUp() }
        let c = try ConfigLoader.load(procfilePath: "Procfile.dev", in: app.directory)
        #expect(c.source == .procfile && c.configPath == "Procfile.dev")
        #expect(c.groupNames == ["web", "css"])
        #expect(c.appName == nil)
    }

    @Test func bothFilesTakeProcessesFromTheProcfile() throws {
        let app = try TempApp(["fly.toml": flyWithProcesses, "Procfile.dev": "web: bin/dev\n"])
        defer { app.cleanUp() }
        let c = try ConfigLoader.load(configPath: "fly.toml", procfilePath: "Procfile.dev", in: app.directory)
        #expect(c.appName == "shop")
        #expect(c.groupNames == ["web"])
        #expect(c.procfilePath == "Procfile.dev")
    }

    @Test func defaultDotEnvIsOptionalAndNamedOnesAreRequired() throws {
        let app = try TempApp(["Procfile": "web: w\n"])
        defer { app.cleanUp() }
        #expect(try ConfigLoader.load(in: app.directory).dotenv.isEmpty)

        try app.write(".env", "SECRET=from-dotenv\nPORT=3000\n")
        try app.write("a.env", "A=1\nB=1\n")
        try app.write("b.env", "B=2\n")
        let defaulted = try ConfigLoader.load(in: app.directory)
        #expect(defaulted.dotenv == [EnvVariable("SECRET", "from-dotenv"), EnvVariable("PORT", "3000")])
        #expect(defaulted.envFiles == [app.directory + "/.env"])

        let named = try ConfigLoader.load(envFiles: ["a.env", "b.env"], in: app.directory)
        #expect(named.dotenv == [EnvVariable("A", "1"), EnvVariable("B", "2")])
        #expect(named.envFiles == ["a.env", "b.env"])
        #expect(configError { _ = try ConfigLoader.load(envFiles: ["a.env", "missing.env"], in: app.directory) }
                == .fileNotFound("missing.env", role: "env file"))
    }

    @Test func malformedDotEnvIsReportedWithItsPath() throws {
        let app = try TempApp(["Procfile": "web: w\n", ".env": "OK=1\nnot valid\n"])
        defer { app.cleanUp() }
        let error = configError { _ = try ConfigLoader.load(in: app.directory) }
        #expect(error?.position?.path == app.directory + "/.env")
        #expect(error?.position?.line == 2)
    }

    @Test func environmentPrecedenceThroughTheConfig() throws {
        let app = try TempApp(["fly.toml": "[processes]\nweb='w'\n[env]\nPORT = 8080\nMODE = 'fly'\n", ".env": "MODE=local\n"])
        defer { app.cleanUp() }
        let env = try ConfigLoader.load(in: app.directory).environment(inheriting: ["HOME": "/home/me", "PORT": "1"])
        #expect(env == ["HOME": "/home/me", "PORT": "8080", "MODE": "local"])
    }

    @Test func unreadableFiles() throws {
        let app = try TempApp(["fly.toml/placeholder": ""])
        defer { app.cleanUp() }
        let error = configError { _ = try ConfigLoader.load(in: app.directory) }
        #expect(error == .unreadable(app.directory + "/fly.toml", reason: "it is a directory"))
    }
}
