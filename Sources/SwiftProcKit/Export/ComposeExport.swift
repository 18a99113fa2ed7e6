import Foundation

/// `swiftproc export compose`: `compose.yaml` with a service per group (`deploy.replicas` from
/// the formation), the release command as a service the others wait for
/// (`service_completed_successfully`), health checks, stop signal and grace period, restart
/// policy, `[env]` as `environment` and the `.env` files as `env_file`.
///
/// Compose interpolates `$` in every value, so `$` is written `$$`. As in a cluster, each
/// container listens on its service's `internal_port`, which is its `PORT`.
enum ComposeExport {
    static func render(_ model: ExportModel, options: ExportOptions) -> ExportResult {
        var warnings: [String] = []
        func literal(_ text: String) -> YAMLNode { .string(text.replacingOccurrences(of: "$", with: "$$")) }
        let imageOrBuild: (String, YAMLNode)
        if let image = model.image {
            imageOrBuild = ("image", literal(image))
        } else {
            imageOrBuild = ("build", literal(relativePath(from: options.outputDirectory, to: model.directory)))
        }
        let dotenvNames = Set(model.dotenv.map(\.name))
        // `environment` wins over `env_file` in Compose; in swiftproc `.env` wins over `[env]`.
        let env = model.env.filter { !dotenvNames.contains($0.name) }
        let envFiles = model.envFiles.map { relativePath(from: options.outputDirectory, to: $0) }

        func service(command: String, extraEnv: [EnvVariable], rest: [(String, YAMLNode?)]) -> YAMLNode {
            var environment = env
            for v in extraEnv {
                environment.removeAll { $0.name == v.name }
                environment.append(v)
            }
            return .object([imageOrBuild,
                            ("command", .list(["/bin/sh", "-c", shellCommand(command)].map(literal))),
                            ("environment", environment.isEmpty ? nil : .map(environment.map { YAMLPair($0.name, literal($0.value)) })),
                            ("env_file", envFiles.isEmpty ? nil : .list(envFiles.map(literal)))] + rest)
        }

        var services: [YAMLPair] = []
        var serviceNames = Set<String>()
        func serviceName(_ raw: String) -> String {
            var name = unitWord(raw)
            while serviceNames.contains(name) { name += "-" }
            serviceNames.insert(name)
            return name
        }
        var dependsOn: YAMLNode?
        if let release = model.releaseCommand {
            let name = serviceName(model.groups.contains { $0.name == "release" } ? "release-command" : "release")
            services.append(YAMLPair(name, service(command: release,
                                                   extraEnv: [EnvVariable("RELEASE_COMMAND", "1"),
                                                              EnvVariable("FLY_PROCESS_GROUP", "fly_app_release_command"),
                                                              EnvVariable("FLY_APP_NAME", model.appName)],
                                                   rest: [("restart", .string("no"))])))
            dependsOn = .object([(name, .object([("condition", .string("service_completed_successfully"))]))])
        }
        for g in model.groups {
            let served = model.services(of: g.name)
            var extra: [EnvVariable] = []
            if let port = served.first?.internalPort { extra.append(EnvVariable("PORT", String(port))) }
            extra += [EnvVariable("FLY_PROCESS_GROUP", g.name), EnvVariable("FLY_APP_NAME", model.appName)]
            let restart: String
            switch g.restart {
            case .always: restart = "always"
            case .onFailure(let retries): restart = "on-failure:\(retries)"
            case .never: restart = "no"
            }
            var ports: YAMLNode?
            var expose: YAMLNode?
            let internalPorts = Array(Set(served.map(\.internalPort))).sorted()
            if !internalPorts.isEmpty {
                if g.count == 1 {
                    // One container: publish its port on the host's loopback, as `start`'s proxy listens.
                    ports = .strings(internalPorts.map { "127.0.0.1:\($0):\($0)" })
                } else {
                    expose = .strings(internalPorts.map(String.init))
                    if g.count > 1 {
                        warnings.append("\(g.name): \(g.count) replicas cannot share a host port; its port is exposed to the other services only")
                    }
                }
            }
            services.append(YAMLPair(serviceName(g.name), service(command: g.command, extraEnv: extra, rest: [
                ("deploy", .object([("replicas", .int(g.count))])),
                ("restart", .string(restart)),
                ("stop_signal", .string(model.killSignal)),
                ("stop_grace_period", .string(goDuration(Double(model.killTimeout)))),
                ("healthcheck", g.checks.first.map(healthcheck)),
                ("ports", ports),
                ("expose", expose),
                ("depends_on", dependsOn),
            ])))
        }
        var header = Exporter.header(.compose, model) + ["Run: docker compose up"]
        if model.image == nil {
            header.append("No image was given (--image, or [build] image), so each service builds the app directory.")
        }
        if model.groups.contains(where: { !$0.checks.isEmpty }) {
            header.append("Health checks use curl or wget (HTTP) and nc (TCP) inside the image.")
        }
        let text = YAMLWriter.render(comment: header, documents: [.object([("services", .map(services))])])
        return ExportResult(files: [ExportFile(name: "compose.yaml", contents: text)], warnings: warnings)
    }

    static func healthcheck(_ check: ExportModel.Check) -> YAMLNode {
        let test: String
        if check.isHTTP {
            let url = shellQuoted("\(check.useHTTPS ? "https" : "http")://127.0.0.1:\(check.port)\(check.path.hasPrefix("/") ? "" : "/")\(check.path)")
            test = "curl -fsS -o /dev/null \(url) || wget -q -O /dev/null \(url)"
        } else {
            test = "nc -z 127.0.0.1 \(check.port)"
        }
        return .object([
            ("test", .strings(["CMD-SHELL", test.replacingOccurrences(of: "$", with: "$$")])),
            ("interval", check.interval.map { .string(goDuration($0)) }),
            ("timeout", check.timeout.map { .string(goDuration($0)) }),
            ("start_period", check.gracePeriod.map { .string(goDuration($0)) }),
        ])
    }
}

/// `target` relative to the directory `base` (both absolute), `.` when they are the same.
func relativePath(from base: String, to target: String) -> String {
    let b = URL(fileURLWithPath: base).standardizedFileURL.pathComponents
    let t = URL(fileURLWithPath: target).standardizedFileURL.pathComponents
    var common = 0
    while common < b.count, common < t.count, b[common] == t[common] { common += 1 }
    let parts = Array(repeating: "..", count: b.count - common) + t[common...]
    return parts.isEmpty ? "." : parts.joined(separator: "/")
}
