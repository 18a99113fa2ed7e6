/// `swiftproc export kubernetes`: one file of manifests — a ConfigMap for `[env]`, a Secret for
/// the `.env` values, the release command as a Job, a Deployment per group and a Service per
/// `[http_service]` / `[[services]]` entry.
///
/// In a cluster every pod listens on the service's `internal_port`, as every machine does on
/// Fly, so `PORT` is that port (groups no service routes to get no `PORT`, as on Fly).
enum KubernetesExport {
    static let managedBy = YAMLPair("app.kubernetes.io/managed-by", .string("swiftproc"))

    static func render(_ model: ExportModel) throws(ExportError) -> ExportResult {
        guard let image = model.image else {
            throw ExportError("kubernetes needs a container image: pass --image IMAGE, or set [build] image in \(model.sourcePath)")
        }
        var warnings: [String] = []
        let base = dnsLabel(model.appName, limit: 40)
        let nameLabel = YAMLPair("app.kubernetes.io/name", .string(base))
        func groupLabel(_ group: String) -> YAMLPair { YAMLPair("swiftproc.dev/process-group", .string(dnsLabel(group))) }
        func serviceLabel(_ service: ExportModel.Service) -> YAMLPair {
            YAMLPair("swiftproc.dev/\(dnsLabel(service.name))", .string("true"))
        }
        var docs: [YAMLNode] = []

        func metadata(_ name: String, _ labels: [YAMLPair]) -> YAMLNode {
            .object([("name", .string(name)), ("labels", .map([nameLabel] + labels + [managedBy]))])
        }

        let configMapName = "\(base)-env"
        let secretName = "\(base)-secrets"
        func validKey(_ name: String) -> Bool {
            !name.isEmpty && name.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || "-._".unicodeScalars.contains($0) }
        }
        let env = model.env.filter { v in
            if validKey(v.name) { return true }
            warnings.append("[env] \(v.name): not a valid ConfigMap key; left out")
            return false
        }
        let dotenv = model.dotenv.filter { v in
            if validKey(v.name) { return true }
            warnings.append(".env \(v.name): not a valid Secret key; left out")
            return false
        }
        if !env.isEmpty {
            docs.append(.object([("apiVersion", .string("v1")), ("kind", .string("ConfigMap")),
                                 ("metadata", metadata(configMapName, [])),
                                 ("data", .map(env.map { YAMLPair($0.name, .string($0.value)) }))]))
        }
        if !dotenv.isEmpty {
            docs.append(.object([("apiVersion", .string("v1")), ("kind", .string("Secret")),
                                 ("metadata", metadata(secretName, [])), ("type", .string("Opaque")),
                                 ("stringData", .map(dotenv.map { YAMLPair($0.name, .string($0.value)) }))]))
        }
        var envFrom: [YAMLNode] = []
        if !env.isEmpty { envFrom.append(.object([("configMapRef", .object([("name", .string(configMapName))]))])) }
        if !dotenv.isEmpty { envFrom.append(.object([("secretRef", .object([("name", .string(secretName))]))])) }

        func envVar(_ name: String, _ value: String) -> YAMLNode {
            .object([("name", .string(name)), ("value", .string(value))])
        }
        func container(name: String, command: String, env extra: [YAMLNode], rest: [(String, YAMLNode?)]) -> YAMLNode {
            .object([("name", .string(name)), ("image", .string(image)),
                     ("command", .strings(["/bin/sh", "-c", shellCommand(command)])),
                     ("envFrom", envFrom.isEmpty ? nil : .list(envFrom)),
                     ("env", .list(extra))] + rest)
        }

        if let release = model.releaseCommand {
            let labels = [YAMLPair("swiftproc.dev/process-group", .string("release"))]
            let c = container(name: "release", command: release,
                              env: [envVar("RELEASE_COMMAND", "1"), envVar("FLY_PROCESS_GROUP", "fly_app_release_command"),
                                    envVar("FLY_APP_NAME", model.appName)], rest: [])
            docs.append(.object([
                ("apiVersion", .string("batch/v1")), ("kind", .string("Job")),
                ("metadata", metadata("\(base)-release", labels)),
                ("spec", .object([
                    ("backoffLimit", .int(0)),
                    ("activeDeadlineSeconds", .int(max(1, model.releaseTimeout))),
                    ("template", .object([
                        ("metadata", .object([("labels", .map([nameLabel] + labels + [managedBy]))])),
                        ("spec", .object([("restartPolicy", .string("Never")), ("containers", .list([c]))])),
                    ])),
                ])),
            ]))
        }

        for g in model.groups {
            let services = model.services(of: g.name)
            let podPort = services.first?.internalPort
            var extra: [YAMLNode] = []
            if let podPort { extra.append(envVar("PORT", String(podPort))) }
            extra.append(.object([("name", .string("PS")),
                                  ("valueFrom", .object([("fieldRef", .object([("fieldPath", .string("metadata.name"))]))]))]))
            extra += [envVar("FLY_PROCESS_GROUP", g.name), envVar("FLY_APP_NAME", model.appName)]
            var ports: [YAMLNode] = []
            for p in Set(services.map { "\($0.internalPort)/\($0.protocol)" }).sorted() {
                let parts = p.split(separator: "/")
                ports.append(.object([("containerPort", .int(Int(parts[0]) ?? 0)), ("protocol", .string(parts[1].uppercased()))]))
            }
            let readiness = g.checks.first
            let liveness = g.checks.first
            var lifecycle: YAMLNode?
            if model.killSignal != "SIGTERM" {
                // Kubernetes stops a container with SIGTERM; preStop sends the app's own signal to
                // the command (pid 1) first and waits for it to exit within the grace period.
                let sig = model.killSignal.dropFirst(3)
                lifecycle = .object([("preStop", .object([("exec", .object([("command", .strings([
                    "/bin/sh", "-c", "kill -\(sig) 1; while kill -0 1 2>/dev/null; do sleep 1; done",
                ]))]))]))])
            }
            if g.restart != .always {
                warnings.append("\(g.name): Deployments restart every exited container; restart policy \(g.restart.name) is not exported")
            }
            let c = container(name: dnsLabel(g.name), command: g.command, env: extra, rest: [
                ("ports", ports.isEmpty ? nil : .list(ports)),
                ("readinessProbe", readiness.map(probe)),
                ("livenessProbe", liveness.map(probe)),
                ("lifecycle", lifecycle),
            ])
            let selector = [nameLabel, groupLabel(g.name)]
            docs.append(.object([
                ("apiVersion", .string("apps/v1")), ("kind", .string("Deployment")),
                ("metadata", metadata(dnsLabel("\(base)-\(g.name)"), [groupLabel(g.name)])),
                ("spec", .object([
                    ("replicas", .int(g.count)),
                    ("selector", .object([("matchLabels", .map(selector))])),
                    ("template", .object([
                        ("metadata", .object([("labels", .map(selector + services.map(serviceLabel) + [managedBy]))])),
                        ("spec", .object([
                            ("terminationGracePeriodSeconds", .int(model.killTimeout)),
                            ("containers", .list([c])),
                        ])),
                    ])),
                ])),
            ]))
        }

        for s in model.services {
            let name = s.isHTTPService ? base : dnsLabel("\(base)-\(s.name)")
            let publicPorts = s.isHTTPService ? [80] : (s.publicPorts.isEmpty ? [s.internalPort] : s.publicPorts)
            let ports: [YAMLNode] = publicPorts.map { p in
                .object([("name", .string(s.isHTTPService ? "http" : "port-\(p)")), ("port", .int(p)),
                         ("targetPort", .int(s.internalPort)), ("protocol", .string(s.protocol.uppercased()))])
            }
            docs.append(.object([
                ("apiVersion", .string("v1")), ("kind", .string("Service")),
                ("metadata", metadata(name, [])),
                ("spec", .object([
                    ("selector", .map([nameLabel, serviceLabel(s)])),
                    ("ports", .list(ports)),
                ])),
            ]))
        }

        var header = Exporter.header(.kubernetes, model) + ["Apply: kubectl apply -f \(base).yaml"]
        if !dotenv.isEmpty { header.append("The Secret holds the .env values: keep this file out of version control.") }
        if model.releaseCommand != nil {
            header.append("A Job cannot be changed once created: kubectl delete job \(base)-release before applying again.")
        }
        let text = YAMLWriter.render(comment: header, documents: docs)
        return ExportResult(files: [ExportFile(name: "\(base).yaml", contents: text, isPrivate: !dotenv.isEmpty)], warnings: warnings)
    }

    /// A readiness or liveness probe from a check: path, port, interval, timeout, grace period.
    static func probe(_ check: ExportModel.Check) -> YAMLNode {
        var pairs: [(String, YAMLNode?)] = []
        if check.isHTTP {
            pairs.append(("httpGet", .object([
                ("path", .string(check.path)), ("port", .int(check.port)),
                ("scheme", check.useHTTPS ? .string("HTTPS") : nil),
                ("httpHeaders", check.headers.isEmpty ? nil : .list(check.headers.map {
                    .object([("name", .string($0.name)), ("value", .string($0.value))])
                })),
            ])))
        } else {
            pairs.append(("tcpSocket", .object([("port", .int(check.port))])))
        }
        pairs.append(("initialDelaySeconds", check.gracePeriod.map { .int(wholeSeconds($0, minimum: 0)) }))
        pairs.append(("periodSeconds", check.interval.map { .int(wholeSeconds($0)) }))
        pairs.append(("timeoutSeconds", check.timeout.map { .int(wholeSeconds($0)) }))
        return .object(pairs)
    }
}
