import Foundation
import Testing
@testable import SwiftProcKit

/// Where a group's command comes from: [processes], a Procfile beside fly.toml, [experimental],
/// the Dockerfile — and what Docker's rules make of ENTRYPOINT and CMD.
@Suite struct ConfigCommandSourceTests {
    func config(_ toml: String, _ siblings: [String: String] = [:]) throws -> AppConfig {
        try ConfigLoader.parseFlyToml(toml, path: "fly.toml", directory: "/app", siblings: siblings)
    }

    @Test func execAndShellForms() {
        #expect(Dockerfile.parse("FROM ruby\nCMD [\"bundle\", \"exec\", \"puma\"]\n").shellCommand == "bundle exec puma")
        #expect(Dockerfile.parse("FROM ruby\nCMD bundle exec puma -C config/puma.rb\n").shellCommand == "bundle exec puma -C config/puma.rb")
        // exec ENTRYPOINT + exec CMD: joined; a word with spaces is quoted back.
        #expect(Dockerfile.parse("FROM x\nENTRYPOINT [\"/usr/bin/tini\", \"--\"]\nCMD [\"node\", \"a b.js\"]\n").shellCommand
                == "/usr/bin/tini -- node 'a b.js'")
        // exec ENTRYPOINT + shell CMD: the CMD runs under /bin/sh -c.
        #expect(Dockerfile.parse("FROM x\nENTRYPOINT [\"/entry\"]\nCMD node server.js\n").argv
                == ["/entry", "/bin/sh", "-c", "node server.js"])
        // shell ENTRYPOINT ignores CMD.
        let shellEntry = Dockerfile.parse("FROM x\nENTRYPOINT exec node server.js\nCMD [\"ignored\"]\n")
        #expect(shellEntry.shellCommand == "exec node server.js" && shellEntry.origin == "2 (ENTRYPOINT)")
        // The last CMD wins; a malformed JSON array is shell form, as Docker reads it.
        #expect(Dockerfile.parse("FROM x\nCMD [\"a\"]\nCMD [\"b\", \"c\"]\n").argv == ["b", "c"])
        #expect(Dockerfile.parse("FROM x\nCMD [\"unterminated]\n").argv == ["/bin/sh", "-c", "[\"unterminated]"])
        #expect(Dockerfile.parse("FROM x\nRUN make\n").argv == nil)
        #expect(Dockerfile.parse("").argv == nil)
    }

    @Test func continuationsCommentsAndTheEscapeDirective() {
        let text = """
        # syntax=docker/dockerfile:1
        FROM python:3.12
        # a comment before the command
        CMD ["gunicorn", \\
             # a comment inside a continued instruction
             "--workers", "2", \\
             "app:app"]
        """
        #expect(Dockerfile.parse(text).argv == ["gunicorn", "--workers", "2", "app:app"])
        #expect(Dockerfile.parse(text).origin == "4 (CMD)")
        let windows = "# escape=`\nFROM x\nCMD node `\n  server.js\n"
        #expect(Dockerfile.parse(windows).shellCommand == "node server.js")
        #expect(Dockerfile.parse("FROM x\r\nCMD [\"a\"]\r\n").argv == ["a"])
    }

    @Test func multiStageBuildsInheritAndResetLikeDocker() {
        // The final stage inherits CMD from the stage it is built FROM.
        let inherited = Dockerfile.parse("FROM node AS base\nCMD [\"node\", \"a.js\"]\nFROM base\nRUN true\n")
        #expect(inherited.argv == ["node", "a.js"])
        // Setting ENTRYPOINT resets an inherited CMD.
        let reset = Dockerfile.parse("FROM node AS base\nCMD [\"node\", \"a.js\"]\nFROM base\nENTRYPOINT [\"/e\"]\n")
        #expect(reset.argv == ["/e"])
        // Only the final stage counts.
        let builder = Dockerfile.parse("FROM golang AS build\nCMD [\"go\", \"test\"]\nFROM alpine\nCMD [\"/server\"]\n")
        #expect(builder.argv == ["/server"])
    }

    @Test func imagePathsUnderTheCopiedContextMapToTheAppDirectory() {
        // COPY . . under WORKDIR: /app holds the app directory.
        let direct = Dockerfile.parse("FROM node\nWORKDIR /app\nCOPY . .\nCMD [\"/app/bin/start\", \"--port\", \"/app/x\"]\n")
        #expect(direct.shellCommand == "./bin/start --port ./x")
        // Copied from a build stage, with flags and a relative WORKDIR.
        let staged = Dockerfile.parse("""
        FROM ruby AS base
        WORKDIR /rails
        FROM base AS build
        COPY --link . .
        FROM base
        COPY --from=build /usr/local/bundle /usr/local/bundle
        COPY --from=build --chown=rails:rails /rails /rails
        ENTRYPOINT ["/rails/bin/docker-entrypoint"]
        CMD ["./bin/rails", "server"]
        """)
        #expect(staged.contextDirectories == ["/rails"])
        #expect(staged.shellCommand == "./bin/docker-entrypoint ./bin/rails server")
        #expect(staged.origin == "8,9 (ENTRYPOINT + CMD)")
        // Paths outside the copied context stay as they are.
        #expect(Dockerfile.parse("FROM x\nWORKDIR /app\nCOPY . /src\nCMD [\"/usr/bin/app\"]\n").shellCommand == "/usr/bin/app")
        #expect(Dockerfile.parse("FROM x\nWORKDIR srv\nWORKDIR app\n").workdir == "/srv/app")
    }

    @Test func commandSourcesInOrder() throws {
        let procfile = "web: bin/web\nworker: bin/worker\nclock: bin/clock\n"
        let dockerfile = "FROM ruby\nWORKDIR /app\nCOPY . .\nCMD [\"/app/bin/serve\"]\n"
        let toml = """
        [processes]
          app = ""
          worker = ""
          cron = "bin/cron"
          other = ""
        """
        let c = try config(toml, ["Procfile": procfile, "Dockerfile": dockerfile])
        // [processes] first; an empty one from the Procfile (app finds web); then the Dockerfile.
        #expect(c.group(named: "cron")?.command == "bin/cron")
        #expect(c.group(named: "cron")?.source.description == "fly.toml:4 [processes]")
        #expect(c.group(named: "worker")?.command == "bin/worker")
        #expect(c.group(named: "worker")?.source == .procfile(path: "Procfile", line: 2))
        #expect(c.group(named: "app")?.command == "bin/web")
        #expect(c.group(named: "other")?.command == "./bin/serve")
        #expect(c.group(named: "other")?.source.description == "Dockerfile:4 (CMD)")
        #expect(c.procfilePath == "Procfile" && c.dockerfilePath == "Dockerfile")
        #expect(c.warnings.isEmpty, "\(c.warnings)")

        // [experimental] cmd before the Dockerfile; its entrypoint replaces the image's.
        let experimental = try config("[experimental]\n  cmd = [\"serve\", \"--fast\"]\n",
                                      ["Dockerfile": "FROM x\nENTRYPOINT [\"/tini\", \"--\"]\nCMD [\"slow\"]\n"])
        #expect(experimental.group(named: "app")?.command == "/tini -- serve --fast")
        #expect(experimental.group(named: "app")?.source == .experimental(dockerfile: "Dockerfile"))
        let exec = try config("[experimental]\n  exec = [\"/bin/only\", \"this\"]\n  cmd = [\"not\"]\n",
                              ["Dockerfile": "FROM x\nENTRYPOINT [\"/e\"]\n"])
        #expect(exec.group(named: "app")?.command == "/bin/only this")
        // A string cmd is one word on Fly: kept so, with a warning that says how to write it.
        let single = try config("[experimental]\n  cmd = \"bundle exec puma\"\n")
        #expect(single.group(named: "app")?.command == "'bundle exec puma'")
        #expect(single.warnings.first?.message.contains("[\"bundle\", \"exec\", \"puma\"]") == true)

        // [build] dockerfile names another file, relative to fly.toml.
        let named = try ConfigLoader.parseFlyToml("[build]\n  dockerfile = 'deploy/Dockerfile.prod'\n", path: "app/fly.toml",
                                                  directory: "/x/app", siblings: ["deploy/Dockerfile.prod": "FROM x\nCMD [\"run\"]\n"])
        #expect(named.group(named: "app")?.command == "run")
        #expect(named.group(named: "app")?.source.description == "app/deploy/Dockerfile.prod:2 (CMD)")
    }

    @Test func aGroupWithNoCommandAnywhereIsNamedAndTheOthersRun() throws {
        let c = try config("[processes]\n  app = ''\n  worker = 'bin/worker'\n")
        #expect(c.runnableGroups.map(\.name) == ["worker"])
        let warning = try #require(c.warnings.first)
        #expect(warning.position?.description == "fly.toml:2:3")
        #expect(warning.message.contains("give it one in [processes] (app = \"...\") or a Procfile next to fly.toml"))
        let plan = try SupervisorPlan(config: c, options: RunOptions())
        #expect(plan.groups.map(\.name) == ["worker"])
        #expect(plan.unrunnable["app"] != nil)
        // Asking for it explicitly is an error that says why.
        var options = RunOptions()
        options.formation = ["app=2"]
        #expect(throws: ConfigError.self) { try SupervisorPlan(config: c, options: options) }
        // None can run: start refuses, naming the group and the ways to give it a command.
        let none = try config("app = 'x'\n")
        #expect(throws: ConfigError.missingCommand(group: "app", configPath: "fly.toml")) {
            try SupervisorPlan(config: none, options: RunOptions())
        }
    }

    @Test func aBaseImagesEntrypointIsNamedAsUnknown() throws {
        #expect(Dockerfile.parse("FROM node:20 AS base\nFROM base\nCMD [\"x\"]\n").baseImage == "node:20")
        #expect(Dockerfile.parse("FROM scratch\nCMD [\"/x\"]\n").baseImage == nil)
        let c = try config("app = 'deno'\n", ["Dockerfile": "FROM denoland/deno:1.40\nCMD [\"run\", \"main.ts\"]\n"])
        #expect(c.group(named: "app")?.command == "run main.ts")
        #expect(c.notes == ["the Dockerfile sets no ENTRYPOINT; if its base image denoland/deno:1.40 has one, Fly runs it "
                            + "in front of \"run main.ts\" and swiftproc does not"])
        #expect(try config("app = 'x'\n", ["Dockerfile": "FROM x\nENTRYPOINT [\"/e\"]\n"]).notes.isEmpty)
    }

    @Test func dockerfileCornersFromReview() {
        // A CMD set before ENTRYPOINT in the same stage stays (only an inherited one is reset).
        #expect(Dockerfile.parse("FROM ubuntu\nCMD [\"--port\", \"8080\"]\nENTRYPOINT [\"./server\"]\n").argv
                == ["./server", "--port", "8080"])
        // The build context copied to / maps nothing: /usr/bin/python3 is the image's.
        let root = Dockerfile.parse("FROM python:3\nCOPY . .\nCMD [\"/usr/local/bin/python3\", \"app.py\"]\n")
        #expect(root.shellCommand == "/usr/local/bin/python3 app.py")
        #expect(Dockerfile.parse("FROM x\nWORKDIR /app\nCOPY . .\nCMD [\"/bin/sh\", \"-c\", \"python app.py\"]\n").shellCommand
                == "python app.py")
        // Heredoc bodies are data, not instructions.
        let heredoc = Dockerfile.parse("""
        FROM python:3
        CMD ["python", "app.py"]
        RUN <<EOF
        from os import path
        EOF
        COPY <<-'SCRIPT' /app/x.sh
        CMD rm -rf /
        SCRIPT
        """)
        #expect(heredoc.argv == ["python", "app.py"])
        // A byte-order mark is ignored, as BuildKit ignores it.
        #expect(Dockerfile.parse("\u{FEFF}FROM x\r\nCMD [\"a\"]\r\n").argv == ["a"])
    }

    @Test func aNamedDockerfileThatIsMissingIsAWarning() throws {
        let c = try config("[build]\n  dockerfile = 'Dockerfile.prod'\n[processes]\n  app = ''\n  web = 'w'\n")
        #expect(c.warnings.contains { $0.message == "build.dockerfile names Dockerfile.prod, which cannot be read" })
    }

    @Test func shellWordsSplitAndQuoteBack() {
        #expect(ShellQuoting.split("a 'b c' \"d \\\" e\" f\\ g") == ["a", "b c", "d \" e", "f g"])
        #expect(ShellQuoting.quote("it's") == "'it'\\''s'")
        #expect(ShellQuoting.quote("") == "''")
        #expect(ShellQuoting.quote("a/b-c.d:e=f") == "a/b-c.d:e=f")
    }
}
