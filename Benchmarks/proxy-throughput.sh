#!/bin/sh
# HTTP proxy throughput and latency (issues 5 and 15): wrk through swiftproc's proxy vs wrk
# straight at the backend and through haproxy in front of the same backend, in the same repetition.
#
# One `swiftproc start --no-color` (stdout to a file) runs a fly.toml whose [processes] `web` is
# the release `swiftproc-demo --quiet`, with [http_service] internal_port = P, processes = ["web"]:
# the proxy listens on 127.0.0.1:P and forwards to each instance's $PORT (base `-p BASE`).
# It stays up for the whole script; every repetition runs, per workload, in rotating order:
#
#   direct   wrk at 127.0.0.1:BASE (web.1's own port); with BACKENDS=N > 1, one wrk per backend
#            (BASE … BASE+N-1), the connections and threads split evenly, figures summed
#   proxy    the same wrk at 127.0.0.1:P (swiftproc's proxy → the N backends)
#   haproxy  the same wrk at haproxy (Debian's, `mode tcp`, byte-transparent like swiftproc's
#            proxy, its default thread count and the same timeouts) → the same N backends
#
# Workloads (wrk -d DURATION, default 5s, keep-alive):
#   bytes c8   GET /bytes/65536, -t2 -c8      transfer/s vs direct — goal ≥ 0.7×
#   bytes c1   GET /bytes/65536, -t1 -c1      transfer/s vs direct — goal ≥ 0.7×
#   small c64  GET /,            -t2 -c64     requests/s through the proxy — goal ≥ 10 000/s
# and against haproxy (issue 15), every workload: swiftproc's throughput ≥ 0.9× haproxy's and
# its p50 latency ≤ 1.25× haproxy's.
# and, for each, wrk --latency percentiles (absolute, beside the direct ones), the CPU of
# swiftproc itself (the proxy: its process, all threads) and of the backends, and the share of
# the machine other processes used meanwhile (client, proxy and backends share the cores).
#
# Before measuring, the bodies are checked through the proxy and directly. A missed goal is
# reported, not an error; the script exits non-zero on a real error (a build failure, a socket
# error or non-2xx answer in wrk, a wrong body, swiftproc not stopping cleanly on SIGINT).
#
#   Benchmarks/proxy-throughput.sh                     # 1 backend, 5 s per run, 3 repetitions
#   REPS=5 DURATION=3 Benchmarks/proxy-throughput.sh
#   BACKENDS=2 Benchmarks/proxy-throughput.sh          # -m web=2, direct split over both
set -eu
. "$(dirname "$0")/lib/common.sh"
bench_require_python
command -v wrk >/dev/null 2>&1 || { echo "wrk is needed (apt-get install -y wrk)" >&2; exit 1; }
HAPROXY=$(command -v haproxy || ls /usr/sbin/haproxy 2>/dev/null || true)
[ -n "$HAPROXY" ] || { echo "haproxy is needed (apt-get install -y haproxy)" >&2; exit 1; }
export HAPROXY
bench_build
exec python3 - "$@" <<'PY'
import os, re, signal, socket, subprocess, sys, time, urllib.request
sys.path.insert(0, os.environ["BENCH_LIB"])
import benchlib as b

b.require_linux()
REPS = int(os.environ.get("REPS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
N = int(os.environ.get("BACKENDS", "1"))
SWIFTPROC = os.environ["SWIFTPROC"]
DEMO = os.environ["DEMO"]
BIG = 65536

# (key, label, path, threads, connections, goal kind)
WORKLOADS = [
    ("bytes-c8", f"GET /bytes/{BIG}, -t2 -c8", f"/bytes/{BIG}", 2, 8, "ratio"),
    ("bytes-c1", f"GET /bytes/{BIG}, -t1 -c1", f"/bytes/{BIG}", 1, 1, "ratio"),
    ("small-c64", "GET /, -t2 -c64", "/", 2, 64, "rps"),
]
RATIO_GOAL = 0.7
RPS_GOAL = 10_000
HAPROXY_THROUGHPUT_GOAL = 0.9
HAPROXY_LATENCY_GOAL = 1.25
HAPROXY = os.environ["HAPROXY"]
TARGETS = ("direct", "proxy", "haproxy")

def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()

def pick_ports():
    """The proxy's port, haproxy's, and a base with N free ports, away from the ephemeral range."""
    start = 20000 + os.getpid() % 9000
    for base in range(start, start + 2000, 10):
        if all(port_free(p) for p in range(base, base + N + 2)):
            return base + N, base + N + 1, base  # proxy, haproxy, backend base
    raise SystemExit("no free ports found")

PROXY_PORT, HAPROXY_PORT, BASE = pick_ports()
work = b.scratch_dir("swiftproc-bench-proxy-", need_bytes=0)
with open(os.path.join(work, "fly.toml"), "w") as f:
    f.write(f'app = "proxy-bench"\n\n[processes]\n  web = "{DEMO} --quiet"\n\n'
            f'[http_service]\n  internal_port = {PROXY_PORT}\n  processes = ["web"]\n')
log_path = os.path.join(work, "swiftproc.out")

def read_log():
    with open(log_path, errors="replace") as f:
        return f.read()

def http_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.read()

# ---------------------------------------------------------------- swiftproc up

log = open(log_path, "wb")
sp = b.spawn([SWIFTPROC, "start", "--no-color", "-p", str(BASE), "-m", f"web={N}"], cwd=work,
             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
deadline = b.now() + 30
while True:
    text = read_log()
    if text.count("listening on http://127.0.0.1:") >= N and f"proxy on 127.0.0.1:{PROXY_PORT}" in text:
        break
    if sp.poll() is not None or b.now() > deadline:
        raise SystemExit("swiftproc did not bring up the proxy and backends:\n" + text[-2000:])
    time.sleep(0.05)
backend_pids = b.descendants(sp.pid)

# haproxy in front of the same backends: TCP mode (byte-transparent, as swiftproc's proxy is),
# least-connections like swiftproc's pool, swiftproc's timeouts, its own default threads.
with open(os.path.join(work, "haproxy.cfg"), "w") as f:
    f.write("global\n  maxconn 4096\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 900s\n"
            "  timeout server 900s\n\nfrontend bench\n  bind 127.0.0.1:%d\n  default_backend web\n\n"
            "backend web\n  balance leastconn\n" % HAPROXY_PORT +
            "".join(f"  server web{i + 1} 127.0.0.1:{BASE + i}\n" for i in range(N)))
hp = b.spawn([HAPROXY, "-db", "-f", os.path.join(work, "haproxy.cfg")], cwd=work,
             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = b.now() + 10
while port_free(HAPROXY_PORT):
    if hp.poll() is not None or b.now() > deadline:
        raise SystemExit("haproxy did not start")
    time.sleep(0.05)

# Bodies, through the proxy and directly: the benchmark means nothing if they are wrong.
for port in [PROXY_PORT, HAPROXY_PORT] + [BASE + i for i in range(N)]:
    status, body = http_get(port, f"/bytes/{BIG}")
    if status != 200 or len(body) != BIG:
        raise SystemExit(f"127.0.0.1:{port}/bytes/{BIG}: status {status}, {len(body)} bytes")
    status, body = http_get(port, "/")
    if status != 200 or not body.startswith(b"hello from web."):
        raise SystemExit(f"127.0.0.1:{port}/: status {status}, body {body[:80]!r}")

# ---------------------------------------------------------------- wrk

UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}

def parse_wrk(out):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    t = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", out)
    if not m or not t:
        raise SystemExit("cannot parse wrk's output:\n" + out)
    r["rps"] = float(m.group(1))
    r["bps"] = float(t.group(1)) * UNITS[t.group(2)]
    for pct in ("50", "90", "99"):
        p = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        r["p" + pct] = float(p.group(1)) * TIME_UNITS[p.group(2)] if p else None
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["sock_errors"] = sum(int(x) for x in e.groups()[:3]) if e else 0
    r["timeouts"] = int(e.group(4)) if e else 0
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(n.group(1)) if n else 0
    return r

def tree_ticks(pids):
    """utime+stime (10 ms ticks) of each pid, threads that already exited included."""
    total = 0
    for pid in pids:
        try:
            total += b.cpu_ticks(pid)
        except OSError:
            pass
    return total

def wrk_procs(port_list, threads, conns, path, duration):
    """One wrk per port, the threads and connections split evenly; started together."""
    k = len(port_list)
    procs = []
    for port in port_list:
        args = ["wrk", f"-t{max(1, threads // k)}", f"-c{max(1, conns // k)}", f"-d{duration}s", "--latency",
                f"http://127.0.0.1:{port}{path}"]
        procs.append(b.spawn(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=duration + 30)
        except subprocess.TimeoutExpired:
            b.kill_tree(p.pid)
            raise SystemExit("wrk did not finish in time")
        if p.returncode != 0:
            raise SystemExit(f"wrk exited {p.returncode}:\n" + out.decode(errors="replace"))
        outs.append(out.decode(errors="replace"))
    return outs

def run(target, wl, duration=None):
    key, label, path, threads, conns, _ = wl
    duration = duration or DURATION
    if target == "proxy":
        ports = [PROXY_PORT]
    elif target == "haproxy":
        ports = [HAPROXY_PORT]
    else:
        ports = [BASE + i for i in range(min(N, conns))]
    busy0, total0 = b.system_cpu()
    self0 = b.self_cpu()
    wrk0 = b.children_cpu()
    sp0 = tree_ticks([sp.pid])
    hp0 = tree_ticks([hp.pid])
    be0 = tree_ticks(backend_pids)
    outs = wrk_procs(ports, threads, conns, path, duration)
    wrk_cpu = b.children_cpu() - wrk0
    sp_cpu = (tree_ticks([sp.pid]) - sp0) / b.CLK_TCK
    hp_cpu = (tree_ticks([hp.pid]) - hp0) / b.CLK_TCK
    be_cpu = (tree_ticks(backend_pids) - be0) / b.CLK_TCK
    busy, total = b.system_cpu()
    capacity = max(total - total0, 1e-9)
    others = max(0.0, (busy - busy0) - wrk_cpu - sp_cpu - hp_cpu - be_cpu - (b.self_cpu() - self0))
    parsed = [parse_wrk(o) for o in outs]
    for o, p in zip(outs, parsed):
        if p["sock_errors"] or p["non2xx"]:
            raise SystemExit(f"wrk reported errors ({target}, {label}):\n" + o)
    r = dict(rps=sum(p["rps"] for p in parsed), bps=sum(p["bps"] for p in parsed),
             timeouts=sum(p["timeouts"] for p in parsed),
             wrk_cpu=wrk_cpu, sp_cpu=sp_cpu, hp_cpu=hp_cpu, be_cpu=be_cpu, others=others / capacity * 100, wall=duration)
    # With several wrk processes (BACKENDS > 1) percentiles cannot be merged: the worst is kept.
    for pct in ("p50", "p90", "p99"):
        vals = [p[pct] for p in parsed if p[pct] is not None]
        r[pct] = max(vals) if vals else None
    return r

print(f"proxy throughput: {N} backend(s), wrk {DURATION} s per run, {REPS} repetitions; proxy 127.0.0.1:{PROXY_PORT}, "
      f"backends from 127.0.0.1:{BASE}; {b.machine_note()}", file=sys.stderr)
for wl in WORKLOADS:  # warm-up, not measured
    for target in TARGETS:
        run(target, wl, duration=1)

res = {(wl[0], t): [] for wl in WORKLOADS for t in TARGETS}
for rep in range(REPS):
    for i, wl in enumerate(WORKLOADS):
        shift = (rep + i) % len(TARGETS)
        order = list(TARGETS[shift:] + TARGETS[:shift])
        for target in order:
            r = run(target, wl)
            res[(wl[0], target)].append(r)
            print(f"  rep {rep + 1} {wl[1]:<26} {target:<7} {r['rps']:9.0f} req/s {r['bps'] / 2**20:8.1f} MiB/s"
                  f"  p50 {r['p50']:.3f} ms p99 {r['p99']:.3f} ms  CPU: swiftproc {r['sp_cpu']:.2f} s, haproxy {r['hp_cpu']:.2f} s, backends {r['be_cpu']:.2f} s,"
                  f" wrk {r['wrk_cpu']:.2f} s; others {r['others']:3.0f}%" + (f"  timeouts {r['timeouts']}" if r["timeouts"] else ""),
                  file=sys.stderr)

# ---------------------------------------------------------------- idle and slowloris clients

def fds_of(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))

def wait_until(cond, timeout=30):
    deadline = b.now() + timeout
    while not cond():
        if b.now() > deadline:
            return False
        time.sleep(0.05)
    return True

IDLE_CLIENTS = int(os.environ.get("IDLE_CLIENTS", "500"))
SLOW_CLIENTS = int(os.environ.get("SLOW_CLIENTS", "300"))
crowd = {"baseline": (b.threads(sp.pid), fds_of(sp.pid), b.status_kb(sp.pid, "VmRSS"))}
idle = []
for _ in range(IDLE_CLIENTS):
    c = socket.create_connection(("127.0.0.1", PROXY_PORT), timeout=5)
    idle.append(c)
base_fds = crowd["baseline"][1]
if not wait_until(lambda: fds_of(sp.pid) >= base_fds + 2 * IDLE_CLIENTS):
    raise SystemExit(f"the proxy did not take {IDLE_CLIENTS} idle clients: {fds_of(sp.pid)} descriptors")
crowd[f"{IDLE_CLIENTS} idle clients"] = (b.threads(sp.pid), fds_of(sp.pid), b.status_kb(sp.pid, "VmRSS"))
# Slowloris: a request header that never ends, a byte every 0.2 s, for 3 s.
slow = []
for _ in range(SLOW_CLIENTS):
    c = socket.create_connection(("127.0.0.1", PROXY_PORT), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    slow.append(c)
end = b.now() + 3
while b.now() < end:
    for c in slow:
        c.sendall(b"a")
    time.sleep(0.2)
crowd[f"+ {SLOW_CLIENTS} slowloris clients"] = (b.threads(sp.pid), fds_of(sp.pid), b.status_kb(sp.pid, "VmRSS"))
status, _ = http_get(PROXY_PORT, "/")  # still served meanwhile
if status != 200:
    raise SystemExit(f"the proxy answered {status} with the crowd connected")
for c in idle + slow:
    c.close()
if not wait_until(lambda: fds_of(sp.pid) <= base_fds + 2):
    raise SystemExit(f"descriptors not given back: {fds_of(sp.pid)}, {base_fds} before")
crowd["after they leave"] = (b.threads(sp.pid), fds_of(sp.pid), b.status_kb(sp.pid, "VmRSS"))
print("  crowd: " + "; ".join(f"{k}: {t} threads, {f} fds, {r / 1024:.1f} MB" for k, (t, f, r) in crowd.items()),
      file=sys.stderr)

# ---------------------------------------------------------------- swiftproc down

hp.terminate()
b.wait_exit(hp, 10)
before = b.descendants(sp.pid)
os.kill(sp.pid, signal.SIGINT)
status = b.wait_exit(sp, 30)
log.close()
time.sleep(0.2)
left = [p for p in before if os.path.exists(f"/proc/{p}") and
        open(f"/proc/{p}/stat", "rb").read().rsplit(b")", 1)[1].split()[0] != b"Z"]
text = read_log()
if status != 0 or left or "all processes stopped" not in text:
    raise SystemExit(f"swiftproc exited {status} after SIGINT, {len(left)} processes left:\n" + text[-2000:])

# ---------------------------------------------------------------- table

def col(key, target, field):
    return [r[field] for r in res[(key, target)]]

def ratio(key, field, over="direct", target="proxy"):
    return [p[field] / d[field] for p, d in zip(res[(key, target)], res[(key, over)])]

def fmt_rate(values):
    """Transfer/s, median (range), in the unit that suits the median."""
    if b.med(values) >= 2**30:
        return b.summary([v / 2**30 for v in values], "{:.2f}", " GiB/s")
    return b.summary([v / 2**20 for v in values], "{:.1f}", " MiB/s")

direct_label = "direct: wrk → web.1's port" if N == 1 else f"direct: {N} wrk, one per backend port"
proxy_label = f"proxy: wrk → swiftproc proxy → {'web.1' if N == 1 else f'{N} backends'}"
haproxy_label = f"haproxy: wrk → haproxy (mode tcp) → {'web.1' if N == 1 else f'{N} backends'}"
rows, verdicts = [], []
for key, label, path, threads, conns, kind in WORKLOADS:
    for target in TARGETS:
        is_proxy = target == "proxy"
        field = "bps" if kind == "ratio" else "rps"
        goal = ""
        if is_proxy:
            ok = b.med(ratio(key, field, over="haproxy")) >= HAPROXY_THROUGHPUT_GOAL
            verdicts.append((f"{label}: {'transfer' if field == 'bps' else 'requests'}/s ≥ {HAPROXY_THROUGHPUT_GOAL}× haproxy's",
                             b.summary(ratio(key, field, over="haproxy"), "{:.2f}", "×"), ok))
            if None not in col(key, "proxy", "p50") + col(key, "haproxy", "p50"):
                ok = b.med(ratio(key, "p50", over="haproxy")) <= HAPROXY_LATENCY_GOAL
                verdicts.append((f"{label}: p50 latency ≤ {HAPROXY_LATENCY_GOAL}× haproxy's",
                                 b.summary(ratio(key, "p50", over="haproxy"), "{:.2f}", "×"), ok))
        if is_proxy and kind == "ratio":
            ok = b.med(ratio(key, "bps")) >= RATIO_GOAL
            goal = f"≥ {RATIO_GOAL}× direct — {b.met(ok)}"
            verdicts.append((f"{label}: transfer/s through the proxy ≥ {RATIO_GOAL}× direct",
                             b.summary(ratio(key, "bps"), "{:.2f}", "×"), ok))
        elif is_proxy:
            ok = b.med(col(key, "proxy", "rps")) >= RPS_GOAL
            goal = f"≥ {RPS_GOAL:,} req/s — {b.met(ok)}"
            verdicts.append((f"{label}: ≥ {RPS_GOAL:,} requests/s through the proxy",
                             b.summary(col(key, "proxy", "rps"), "{:,.0f}", "/s"), ok))
        lat = lambda f: b.summary(col(key, target, f), "{:.2f}", " ms") if None not in col(key, target, f) else "n/a"
        rows.append([
            label if target == "direct" else "",
            {"direct": direct_label, "proxy": proxy_label, "haproxy": haproxy_label}[target],
            b.summary(col(key, target, "rps"), "{:,.0f}"),
            fmt_rate(col(key, target, "bps")),
            b.summary(ratio(key, field, target=target), "{:.2f}", "×") if target != "direct" else "1",
            b.summary(ratio(key, field, over="haproxy"), "{:.2f}", "×") if is_proxy else "",
            lat("p50"), lat("p90"), lat("p99"),
            b.summary([v / r["wall"] * 100 for v, r in zip(col(key, target, "hp_cpu" if target == "haproxy" else "sp_cpu"), res[(key, target)])], "{:.0f}", "%"),
            b.summary([v / r["wall"] * 100 for v, r in zip(col(key, target, "be_cpu"), res[(key, target)])], "{:.0f}", "%"),
            b.summary(col(key, target, "others"), "{:.0f}", "%"),
            goal,
        ])

text = (f"proxy-throughput ({time.strftime('%Y-%m-%d', time.gmtime())}): wrk -d{DURATION}s (keep-alive) against "
        f"{N} × `swiftproc-demo --quiet` (release) under `swiftproc start -m web={N}`, directly and through swiftproc's "
        f"proxy ([http_service] internal_port), median (range) of {REPS} repetitions; \"vs direct\": transfer/s "
        f"(bytes) or requests/s (small) as a ratio to the direct run of the same repetition; latency: wrk --latency "
        f"percentiles{' (with several wrk processes, the worst of them)' if N > 1 else ''}; CPU as % of one core over the "
        f"run: the proxy's process (swiftproc's, or haproxy's on its rows; swiftproc's ~0 when direct) and the backends; \"others\": share of the machine "
        f"used by other processes meanwhile. {b.machine_note()}\n\n" +
        b.table(["workload", "run", "requests/s", "transfer/s", "vs direct", "vs haproxy", "latency p50", "p90", "p99",
                 "proxy's CPU", "backends' CPU", "others' CPU share", "goal"], rows) +
        "\n\n" + b.table(["goal", "measured", "verdict"], [[g, m, b.met(ok)] for g, m, ok in verdicts]) +
        f"\n\nswiftproc's process with clients that send nothing ({IDLE_CLIENTS}), then also {SLOW_CLIENTS} slowloris "
        f"clients (an unfinished request header, a byte every 0.2 s for 3 s), then after all left; one snapshot:\n\n" +
        b.table(["clients", "threads", "descriptors", "RSS"],
                [[k, str(t), str(f), f"{r / 1024:.1f} MB"] for k, (t, f, r) in crowd.items()]) +
        "\n\n" + b.table(["goal", "measured", "verdict"], [[
            f"{IDLE_CLIENTS} idle clients add no thread per connection",
            f"{crowd[f'{IDLE_CLIENTS} idle clients'][0] - crowd['baseline'][0]:+d} threads",
            b.met(crowd[f"{IDLE_CLIENTS} idle clients"][0] - crowd["baseline"][0] <= 2 and
                  crowd[f"+ {SLOW_CLIENTS} slowloris clients"][0] - crowd["baseline"][0] <= 2)]]))
b.save("proxy-throughput", text)
PY
