import Foundation
import Testing
@testable import SwiftProcKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Real fly.toml shapes run unmodified: commands from a Dockerfile, Rails' pid file at `app=2`,
/// Fly's machine environment, `.env`'s PORT, shared listeners, warnings, flyctl's verbs.
@Suite(.serialized) struct FidelityTests {
    /// A stand-in for `rails server`: refuses to start while its pid file names a live process
    /// (as Rails does), honours PIDFILE (as Rails 6.1+ does), removes the file when stopped.
    static let railsLike = """
        #!/bin/sh
        pidfile="${PIDFILE:-tmp/pids/server.pid}"
        mkdir -p "$(dirname "$pidfile")"
        # Create the pid file only if it is not there (noclobber), so two at once cannot both win.
        if ! ( set -C; echo $$ > "$pidfile" ) 2>/dev/null; then
          if kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "A server is already running (pid: $(cat "$pidfile"), file: $pidfile)."
            exit 1
          fi
          echo $$ > "$pidfile"
        fi
        trap 'rm -f "$pidfile"; exit 0' INT TERM
        echo "listening on $PORT as $PS pid=$$ pidfile=$pidfile"
        while :; do sleep 1; done
        """

    @Test func aRailsLikeServerRunsTwiceWithoutEditingFlyToml() async throws {
        let app = try makeApp(["bin/rails-server": Self.railsLike, "fly.toml": """
            app = "shop"
            [processes]
              app = "sh bin/rails-server"
            """])
        let sp = try SwiftProc(["start", "--no-color", "-m", "app=2"], in: app)
        #expect(await eventually { values("pid", in: sp.stdout.text, lines: "listening on").count == 2 },
                "\(sp.stdout.text)\(sp.stderr.text)")
        #expect(sp.stdout.text.contains("pidfile=\(app.path)/.swiftproc/pids/app.1.pid"), "\(sp.stdout.text)")
        #expect(sp.stdout.text.contains("pidfile=\(app.path)/.swiftproc/pids/app.2.pid"))
        #expect(!sp.stdout.text.contains("already running"))
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func aCrashLoopFromASharedPidFilePrintsOneHint() async throws {
        // The pid path fixed in the command, as older Rails or a custom config does.
        let app = try makeApp(["bin/rails-server": Self.railsLike, "fly.toml": """
            [processes]
              app = "PIDFILE=tmp/pids/server.pid sh bin/rails-server"
            [[restart]]
              policy = "on-failure"
              retries = 2
            """])
        let sp = try SwiftProc(["start", "--no-color", "--no-timestamps", "-m", "app=2"], in: app)
        // One of the two wins the pid file; the other crash-loops with one hint.
        #expect(await sp.waitFor("exited with status 1 — failed after 2 restarts"), "\(sp.stdout.text)")
        let hints = sp.stdout.text.components(separatedBy: "found a pid file another instance wrote")
        #expect(hints.count == 2, "exactly one hint: \(sp.stdout.text)")
        #expect(sp.stdout.text.contains("pass -P \"$PIDFILE\""))
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 1)
    }

    @Test func commandsFromTheDockerfileAndFlysEnvironment() async throws {
        let app = try makeApp([
            "fly.toml": """
            app = "dock"
            primary_region = "ord"
            [processes]
              app = ""
              worker = "echo worker env region=$FLY_REGION primary=$PRIMARY_REGION mem=$FLY_VM_MEMORY_MB ip=$FLY_PRIVATE_IP; exec sleep 1000"
            [[vm]]
              memory = "1gb"
            """,
            "Dockerfile": """
            FROM ruby:3.3 AS base
            WORKDIR /rails
            FROM base AS build
            COPY . .
            FROM base
            COPY --from=build /rails /rails
            ENTRYPOINT ["/rails/bin/entry"]
            CMD ["serve", "--fast"]
            """,
            "bin/entry": "#!/bin/sh\necho \"entry got $* as $PS\"\nexec sleep 1000\n",
        ])
        chmod(app.appendingPathComponent("bin/entry").path, 0o755)
        let check = try await runSwiftProc(["check"], in: app)
        #expect(check.status == 0, "\(check.err)")
        #expect(check.out.contains("./bin/entry serve --fast\n"), "\(check.out)")
        #expect(check.out.contains("from Dockerfile:7,8 (ENTRYPOINT + CMD)"), "\(check.out)")
        let sp = try SwiftProc(["start", "--no-color", "--region", "ams"], in: app)
        #expect(await sp.waitFor("entry got serve --fast as app.1"), "\(sp.stdout.text)\(sp.stderr.text)")
        #expect(await sp.waitFor("worker env region=ams primary=ord mem=1024 ip=::1"), "\(sp.stdout.text)")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func aGroupWithNoCommandIsNamedOnceAndTheOthersRun() async throws {
        let app = try makeApp(["fly.toml": """
            [processes]
              app = ""
              worker = "echo worker up; exec sleep 1000"
            """])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("worker up"))
        let warnings = sp.stderr.text.components(separatedBy: "process group \"app\" has no command")
        #expect(warnings.count == 2, "once: \(sp.stderr.text)")
        #expect(sp.stderr.text.contains("fly.toml:2:3: warning:"))
        // scale of that group says why.
        let scale = try await runSwiftProc(["scale", "app=1"], in: app)
        #expect(scale.status == 1 && scale.err.contains("has no command"), "\(scale.err)")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)

        // Nothing can run: start refuses, naming the group and the fixes.
        let none = try makeApp(["fly.toml": "app = 'x'\n"])
        let refused = try await runSwiftProc(["start"], in: none)
        #expect(refused.status == 1)
        #expect(refused.err.contains("nothing to run: process group \"app\" has no command"), "\(refused.err)")
        // check prints the plan, then the same refusal.
        let check = try await runSwiftProc(["check", "--json"], in: none)
        #expect(check.status == 1 && check.out.contains("\"groups\"") && check.err.contains("nothing to run"))
    }

    @Test func dotenvPortSetsTheBasePort() async throws {
        let app = try makeApp([
            ".env": "PORT=6400\n",
            "fly.toml": "[processes]\n  app = 'echo port=$PORT; exec sleep 1000'\n  worker = 'echo port=$PORT; exec sleep 1000'\n",
        ])
        let check = try await runSwiftProc(["check", "--show-env"], in: app)
        #expect(check.out.contains("app.1 (machine"), "\(check.out)")
        #expect(check.out.contains("  PORT=6400\n") && check.out.contains("  PORT=6500\n"), "\(check.out)")
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await eventually { values("port", in: sp.stdout.text, lines: "| port=").sorted() == ["6400", "6500"] },
                "\(sp.stdout.text)")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func anHTTPServiceAndAServiceOnOnePortShareTheListener() async throws {
        let proxyPort = freePorts()
        let basePort = freePorts(2)
        let app = try makeApp(["fly.toml": """
            [processes]
              app = "'\(demoBinary)' --quiet"
            [http_service]
              internal_port = \(proxyPort)
              processes = ["app"]
            [[services]]
              internal_port = \(proxyPort)
              processes = ["app"]
              [[services.ports]]
                port = 8443
                handlers = ["tls", "http"]
            """])
        let sp = try SwiftProc(["start", "--no-color", "-p", "\(basePort)"], in: app)
        #expect(await sp.waitFor("proxy on 127.0.0.1:\(proxyPort)"), "\(sp.stdout.text)\(sp.stderr.text)")
        #expect(await eventually { await blocking { httpGet(port: proxyPort, path: "/health")?.status == 200 } })
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func checkWarnsExitsZeroAndStrictMakesWarningsErrors() async throws {
        let app = try makeApp(["fly.toml": """
            app = "w"
            [processes]
              app = "exec sleep 1000"
            [http_service]
              interal_port = 8080
            """])
        let check = try await runSwiftProc(["check"], in: app)
        #expect(check.status == 0)
        #expect(check.err.contains("fly.toml:5:3: warning: unknown key \"interal_port\" in [http_service]; did you mean \"internal_port\"?"),
                "\(check.err)")
        let strict = try await runSwiftProc(["check", "--strict"], in: app)
        #expect(strict.status == 1 && strict.err.contains("1 warning (--strict)"), "\(strict.err)")
    }

    @Test func flyctlsScaleVerbsAndMachineIDs() async throws {
        let app = try makeApp(["fly.toml": """
            app = "verbs"
            kill_timeout = 2
            [processes]
              app = "echo booted $PS; exec sleep 1000"
              worker = "echo booted $PS; exec sleep 1000"
            """])
        let sp = try SwiftProc(["start", "--no-color"], in: app)
        #expect(await sp.waitFor("worker.1 started"))
        func counts() async throws -> [String: Int] {
            Dictionary(uniqueKeysWithValues: try await statusSnapshot(app).groups.map { ($0.name, $0.desired) })
        }
        #expect(try await runSwiftProc(["scale", "count", "3", "--process-group", "worker"], in: app).status == 0)
        #expect(try await counts() == ["app": 1, "worker": 3])
        #expect(try await runSwiftProc(["scale", "+1"], in: app).status == 0)
        #expect(try await runSwiftProc(["scale", "-g", "worker", "-1"], in: app).status == 0)
        #expect(try await counts() == ["app": 2, "worker": 2])

        // A machine id works wherever GROUP.N does.
        let id = machineID(app: "verbs", group: "worker", index: 2)
        let logs = try await runSwiftProc(["logs", id, "--no-follow"], in: app)
        #expect(logs.status == 0 && logs.out.contains("booted worker.2") && !logs.out.contains("booted app"), "\(logs.out + logs.err)")
        let restart = try await runSwiftProc(["restart", id], in: app)
        #expect(restart.status == 0 && restart.out.contains("worker.2"), "\(restart.out + restart.err)")
        sp.signal(SIGINT)
        #expect(await sp.waitForExit() == 0)
    }

    @Test func checkWarnsAboutAnEnvironmentTooLargeToExec() async throws {
        let app = try makeApp([
            "fly.toml": "[processes]\n  app = 'exec sleep 1000'\n",
            ".env": "HUGE=\(String(repeating: "x", count: 200_000))\n",
        ])
        let check = try await runSwiftProc(["check"], in: app)
        #expect(check.status == 0)
        #expect(check.err.contains("warning: app's environment is too large to start: HUGE is"), "\(check.err)")
        #expect(try await runSwiftProc(["check", "--strict"], in: app).status == 1)
    }
}
