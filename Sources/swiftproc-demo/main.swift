// swiftproc-demo: a small HTTP/1.1 server for samples, end-to-end tests and benchmarks, so none of
// them needs Ruby or Python. See `swiftproc-demo --help`.
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let usage = """
swiftproc-demo: a tiny HTTP/1.1 server to run under swiftproc (samples, tests, benchmarks).

USAGE: swiftproc-demo [--port N] [--quiet] [--drain-timeout SECONDS]

Listens on 127.0.0.1 only; one thread per connection; keep-alive (Content-Length responses,
`Connection: close` honoured). Each request is logged as one line on stdout, e.g.
  127.0.0.1:51234 "GET /health HTTP/1.1" 200 3 41µs
and every response carries `X-Instance: <instance>`.

ROUTES (GET or HEAD):
  /            200 "hello from app.2 (pid 1234)"
  /health      200 "ok", or 500 "unhealthy" while the unhealthy file exists (see below)
  /bytes/N     200 with N bytes of body, sent in 64 KiB writes (throughput benchmarks)
  /slow/MS     200 after MS milliseconds (at most 600000; drain tests)
  /crash       200 "crashing …", then the server exits with status 1
  anything else 404; other methods 405

OPTIONS:
  -p, --port N               Port (default: $PORT, else 8080; 0 picks a free port, printed at start).
  -q, --quiet                Do not log requests (benchmarks).
      --drain-timeout S      On SIGINT/SIGTERM, wait up to S seconds for in-flight requests (default 5).
      --idle-timeout S       Close a keep-alive connection idle for S seconds (default 60).
  -h, --help                 Show this help.

ENVIRONMENT:
  PS                   Instance name shown in logs and responses (swiftproc sets `app.2`);
                       else FLY_MACHINE_ID, else "swiftproc-demo".
  PORT                 Default port.
  DEMO_UNHEALTHY_FILE  /health answers 500 while this file exists, or `<file>.<instance>`
                       (e.g. `unhealthy.app.2`) for one instance. Relative paths are from the
                       working directory (swiftproc runs children in the app's directory).
                       Default: `unhealthy`; set it empty to be always healthy.

On SIGINT or SIGTERM it prints "shutting down", stops accepting, lets in-flight requests finish
(up to --drain-timeout) and exits 0. A second signal exits at once.

"""

func fail(_ message: String) -> Never {
    Log.error("swiftproc-demo: \(message)")
    Log.error("Run `swiftproc-demo --help` for usage.")
    exit(2)
}

func parseOptions(_ arguments: [String], environment: [String: String]) -> DemoOptions {
    var port: UInt16?
    var quiet = false
    var drain = 5.0
    var idle = 60
    var args = arguments[...]
    func value(_ name: String, _ inline: String?) -> String {
        if let inline { return inline }
        guard let next = args.popFirst() else { fail("\(name) needs a value") }
        return next
    }
    while let arg = args.popFirst() {
        var name = arg
        var inline: String?
        if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
            name = String(arg[..<eq])
            inline = String(arg[arg.index(after: eq)...])
        }
        switch name {
        case "-h", "--help":
            print(usage, terminator: "")
            exit(0)
        case "-q", "--quiet":
            quiet = true
        case "-p", "--port":
            let text = value(name, inline)
            guard let p = UInt16(text) else { fail("--port must be 0…65535, got \"\(text)\"") }
            port = p
        case "--drain-timeout":
            let text = value(name, inline)
            guard let s = Double(text), s >= 0, s.isFinite else { fail("--drain-timeout must be seconds ≥ 0, got \"\(text)\"") }
            drain = s
        case "--idle-timeout":
            let text = value(name, inline)
            guard let s = Int(text), s > 0 else { fail("--idle-timeout must be whole seconds > 0, got \"\(text)\"") }
            idle = s
        default:
            fail("unknown argument \"\(arg)\"")
        }
    }
    if port == nil, let text = environment["PORT"], !text.isEmpty {
        guard let p = UInt16(text) else { fail("$PORT must be 0…65535, got \"\(text)\"") }
        port = p
    }
    let instance = [environment["PS"], environment["FLY_MACHINE_ID"]].compactMap { $0 }.first { !$0.isEmpty }
        ?? "swiftproc-demo"
    return DemoOptions(port: port ?? 8080, quiet: quiet, instance: instance,
                       unhealthyFile: environment["DEMO_UNHEALTHY_FILE"] ?? "unhealthy",
                       drainSeconds: drain, idleSeconds: idle)
}

// A client that goes away mid-response must not kill the server.
signal(SIGPIPE, SIG_IGN)

let options = parseOptions(Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
let server: DemoServer
do {
    server = try DemoServer(options: options)
} catch {
    Log.error("swiftproc-demo: cannot listen on 127.0.0.1:\(options.port): \(error)")
    exit(1)
}

/// SIGINT/SIGTERM: the first stops the server gracefully, a second exits at once.
final class StopSignals: @unchecked Sendable {
    // @unchecked: `received` is only touched on `queue`.
    private let queue = DispatchQueue(label: "swiftproc-demo.signals")
    private var sources: [DispatchSourceSignal] = []
    private var received = 0

    init(server: DemoServer) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [unowned self] in
                received += 1
                if received > 1 {
                    Log.line("second signal: exiting now")
                    exit(0)
                }
                Log.line("shutting down")
                server.stop()
            }
            source.resume()
            sources.append(source)
        }
    }
}

let signals = StopSignals(server: server)
server.run()
withExtendedLifetime(signals) {}
exit(0)
