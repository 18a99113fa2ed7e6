/// The keys flyctl knows in each fly.toml section, so a typo (`interal_port`) is reported with
/// the closest known key instead of silently meaning nothing.
///
/// The lists follow flyctl's configuration types (`internal/appconfig`), legacy spellings its
/// loader still converts included. A key missing here only costs a spurious warning, never a
/// refusal: unknown keys are warnings, as `fly config validate --strict` reports them.
enum FlyTomlSchema {
    static let root: Set<String> = [
        "app", "primary_region", "kill_signal", "kill_timeout", "swap_size_mb", "console_command",
        "host_dedication_id", "build", "deploy", "env", "http_service", "services", "checks", "processes",
        "vm", "compute", "computes", "mounts", "mount", "metrics", "statics", "files", "experimental", "restart",
        "machine_checks", "labels",
    ]

    /// Known keys by section, named as messages name them (`http_service.checks`).
    static let sections: [String: Set<String>] = [
        "build": ["builder", "builtin", "settings", "args", "buildpacks", "image", "dockerfile", "ignorefile",
                  "build-target", "build_target", "compression", "compression_level", "dockerignorefile"],
        "deploy": ["release_command", "release_command_timeout", "release_command_vm", "release_command_compute",
                   "strategy", "max_unavailable", "wait_timeout", "seed_command"],
        "http_service": ["internal_port", "force_https", "auto_stop_machines", "auto_start_machines",
                         "min_machines_running", "processes", "concurrency", "tls_options", "http_options",
                         "checks", "machine_checks"],
        "concurrency": ["type", "soft_limit", "hard_limit"],
        "http_service.checks": ["grace_period", "interval", "method", "path", "protocol", "timeout",
                                "tls_skip_verify", "tls_server_name", "headers"],
        "services": ["internal_port", "protocol", "concurrency", "ports", "tcp_checks", "http_checks", "script_checks",
                     "processes", "auto_stop_machines", "auto_start_machines", "min_machines_running", "machine_checks"],
        "services.ports": ["port", "start_port", "end_port", "handlers", "force_https", "tls_options", "http_options",
                           "proxy_proto_options"],
        "services.tcp_checks": ["grace_period", "interval", "timeout", "restart_limit"],
        "services.http_checks": ["grace_period", "interval", "timeout", "method", "path", "protocol", "tls_skip_verify",
                                 "tls_server_name", "headers", "restart_limit"],
        "checks": ["type", "port", "interval", "timeout", "grace_period", "method", "path", "protocol",
                   "tls_skip_verify", "tls_server_name", "headers", "processes", "kind", "name"],
        "restart": ["policy", "retries", "processes"],
        "vm": ["size", "memory", "memory_mb", "cpus", "cpu_kind", "gpus", "gpu_kind", "kernel_args",
               "host_dedication_id", "processes", "persist_rootfs"],
        "mounts": ["source", "destination", "processes", "initial_size", "snapshot_retention", "auto_extend_size_threshold",
                   "auto_extend_size_increment", "auto_extend_size_limit", "scheduled_snapshots"],
        // flyctl drops the older keys (kill_signal, allowed_public_ports, private_network) silently.
        "experimental": ["cmd", "entrypoint", "exec", "kill_timeout", "auto_rollback", "enable_consul",
                         "enable_etcd", "lazy_load_images", "attached", "machine_config", "metrics_port", "metrics_path",
                         "use_zstd"],
        "metrics": ["port", "path", "processes", "https"],
        "statics": ["guest_path", "url_prefix", "tigris_bucket", "index_document"],
        "files": ["guest_path", "local_path", "secret_name", "raw_value", "processes"],
    ]
}
