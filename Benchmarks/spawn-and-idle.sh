#!/bin/sh
# Spawning and idling: INSTANCES idle children (`sleep`), under swiftproc and under a plain shell.
#
#   baseline   a sh loop starts INSTANCES `sleep` processes in the background (`&`), then `wait`s
#   pty        swiftproc start -m app1=100,app2=100            (each child gets a pty; the default;
#              a group holds at most 100 instances, so INSTANCES are split into groups of 100)
#   --no-tty   swiftproc start -m app1=100,app2=100 --no-tty   (pipes)
#
# STATIC=1 (the default): swiftproc is the self-contained build (`--static-swift-stdlib`, built
# into .build-bench-static; what README recommends for installing), and two reference rows show
# the dynamically linked build (.build-bench, shared Swift/Foundation libraries): swiftproc
# (ptys) and an idle Swift program. STATIC=0: only the dynamically linked build, as before.
#
# Measured in each repetition, for each run:
#   start      from launch to the INSTANCES-th `started (pid …)` line (baseline: to the loop's end),
#              and until INSTANCES `sleep`s run (all running)
#   CPU        CPU time of the run's process tree (supervisor or shell, children, helper) from launch
#              to all running, from /proc/PID/task/*/schedstat: the work, steadier than wall time
#   RSS        VmRSS of the supervisor (baseline: of the waiting sh) after SETTLE seconds
#   idle CPU   utime+stime delta of the supervisor over IDLE seconds (clock ticks from
#              /proc/PID/stat, 10 ms each), and its wake-ups (context switches of all threads)
#   stop       SIGINT until swiftproc exited, every child gone (baseline: SIGTERM to every sleep
#              until the sh's `wait` returned)
#   processes  what swiftproc started besides itself (its descendants and the members of its
#              children's process groups): the INSTANCES `sleep`s, its watchdog helper, anything else
# Times and RSS are reported as ratios to the baseline of the same repetition (median, range).
# Two reference rows time shell loops only: `sh -c 'exec sleep'` per child (how swiftproc starts
# an instance, without swiftproc) and the per-instance watchdog wrapper swiftproc used until
# 2026-12-07 (a watchdog subshell beside every instance).
#
# Goals: RSS under 20 MB with 200 children; no measurable idle CPU (0 ticks over IDLE seconds);
# all INSTANCES running within 2× the baseline's time, with exactly INSTANCES processes besides
# swiftproc plus at most one watchdog helper.
#
#   Benchmarks/spawn-and-idle.sh                 # 200 instances, 10 s idle, 3 repetitions
#   INSTANCES=50 IDLE=5 REPS=5 Benchmarks/spawn-and-idle.sh
#   STATIC=0 Benchmarks/spawn-and-idle.sh         # the dynamically linked build only
#   COMPARE=/path/to/other/swiftproc COMPARE_LABEL="before the change" Benchmarks/spawn-and-idle.sh
#                                                 # one more row: another build, same runs (ptys)
set -eu
. "$(dirname "$0")/lib/common.sh"
bench_require_python
bench_build
STATIC=${STATIC:-1}
export STATIC
if [ "$STATIC" = 1 ]; then bench_build_static; fi
exec python3 - "$@" <<'PY'
import os, signal, subprocess, sys, threading, time
sys.path.insert(0, os.environ["BENCH_LIB"])
import benchlib as b

b.require_linux()
N = int(os.environ.get("INSTANCES", "200"))
REPS = int(os.environ.get("REPS", "3"))
IDLE = float(os.environ.get("IDLE", "10"))
SETTLE = float(os.environ.get("SETTLE", "2"))
TIMEOUT = float(os.environ.get("RUN_TIMEOUT", "60"))
STATIC = os.environ.get("STATIC", "1") == "1"
# The binaries measured: self-contained by default, the dynamically linked ones as references.
SWIFTPROC_DYNAMIC = os.environ["SWIFTPROC"]
SWIFTPROC = os.environ["SWIFTPROC_STATIC"] if STATIC else SWIFTPROC_DYNAMIC
CORES = os.cpu_count() or 1

work = b.scratch_dir("swiftproc-bench-spawn-", need_bytes=0)
# A sleep duration no other process on the machine uses, so leftovers can be found by cmdline.
MARK = str(9_000_000 + os.getpid() % 1_000_000)
# A group holds at most 100 instances (100 ports each): 200 are two groups of 100.
GROUPS = [(f"app{i + 1}" if N > 100 else "app", min(100, N - 100 * i)) for i in range((N + 99) // 100)]
FORMATION = ",".join(f"{g}={n}" for g, n in GROUPS)
with open(os.path.join(work, "Procfile"), "w") as f:
    f.write("".join(f"{g}: sleep {MARK}\n" for g, _ in GROUPS))
with open(os.path.join(work, "baseline.sh"), "w") as f:
    f.write(f'i=0\nwhile [ $i -lt {N} ]; do sleep {MARK} & i=$((i + 1)); done\necho started\nwait\n')

# The same children started the way swiftproc starts them now — `sh -c 'exec sleep'` — from a
# shell loop: what one extra exec of the shell per child costs without swiftproc.
with open(os.path.join(work, "exec.sh"), "w") as f:
    f.write(f'i=0\nwhile [ $i -lt {N} ]; do sh -c "exec sleep {MARK}" </dev/null & i=$((i + 1)); done\necho started\nwait\n')

# The per-instance wrapper swiftproc used until 2026-12-07 — `sh -c` with fd 3 = a watchdog pipe
# that never reaches EOF, a background watchdog subshell, then `exec sleep` — from a shell loop:
# the design the single watchdog helper replaced. All in the script's process group, so the whole
# lot is killed with one signal afterwards.
WRAPPER = ("exec 3<&0 </dev/null\n"
           "{ trap '' INT TERM HUP QUIT USR1 USR2; while read -r _ <&3; do :; done; kill -s INT 0; n=0; "
           "while [ $n -lt 50 ] && kill -0 $$ 2>/dev/null; do sleep 0.1; n=$((n+1)); done; kill -s KILL 0; } &\n"
           "exec 3<&-\n"
           f"exec sleep {MARK}")
with open(os.path.join(work, "wrapper.sh"), "w") as f:
    f.write("WRAPPER=$(cat wrapper.txt)\nrm -f wd.fifo; mkfifo wd.fifo; exec 4<>wd.fifo\n"
            f'i=0\nwhile [ $i -lt {N} ]; do sh -c "$WRAPPER" <&4 & i=$((i + 1)); done\necho started\nwait\n')
with open(os.path.join(work, "wrapper.txt"), "w") as f:
    f.write(WRAPPER)

def marked_sleeps():
    """Live (non-zombie) `sleep MARK` processes."""
    pids = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/cmdline", "rb") as f:
                if f.read() != b"sleep\0" + MARK.encode() + b"\0":
                    continue
            with open(f"/proc/{e}/stat", "rb") as f:
                st = f.read()
            if st[st.rfind(b")") + 2:].split()[0] != b"Z":
                pids.append(int(e))
        except OSError:
            pass
    return pids

def kill_leftovers():
    for pid in marked_sleeps():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

import atexit
atexit.register(kill_leftovers)

class LineWatcher:
    """Reads a child's stdout on a thread (so it never blocks on a full pipe) and notes when the
    count of lines containing `needle` reaches `target`."""
    def __init__(self, stream, needle, target):
        self.lines, self.count, self.reached_at = [], 0, None
        self.done = threading.Event()
        self.closed = threading.Event()
        def run():
            for raw in stream:
                line = raw.decode(errors="replace")
                self.lines.append(line)
                if needle in line:
                    self.count += 1
                    if self.count == target:
                        self.reached_at = b.now()
                        self.done.set()
            self.closed.set()
            self.done.set()
        threading.Thread(target=run, daemon=True).start()

class ReadyWatcher:
    """Polls /proc (every ~10 ms) from launch until N `sleep MARK` processes run: the same end
    point for every variant, whatever each prints and when."""
    def __init__(self, start):
        self.at = None
        def run():
            deadline = start + TIMEOUT
            while b.now() < deadline:
                if len(marked_sleeps()) >= N:
                    self.at = b.now() - start
                    return
                time.sleep(0.01)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait(self):
        self.thread.join(TIMEOUT + 5)
        if self.at is None:
            raise SystemExit(f"{N} children were not all running within {TIMEOUT:.0f}s")
        return self.at

USE_PERF = b.have_perf()
DEMO_DYNAMIC = os.environ["DEMO"]
DEMO = os.environ["DEMO_STATIC"] if STATIC else DEMO_DYNAMIC

def run_baseline():
    busy0, total0 = b.system_cpu()
    self0 = b.self_cpu()
    start = b.now()
    p = b.spawn(["sh", "baseline.sh"], cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    ready = ReadyWatcher(start)
    w = LineWatcher(p.stdout, "started", 1)
    if not w.done.wait(TIMEOUT) or w.reached_at is None:
        raise SystemExit("baseline did not start its sleeps in time")
    took = w.reached_at - start
    ready_at = ready.wait()
    load, cpu = others_share(busy0, total0, self0, p.pid)
    time.sleep(SETTLE)
    if len(marked_sleeps()) != N:
        raise SystemExit(f"baseline: {len(marked_sleeps())} sleeps running, expected {N}")
    mem = b.memory(p.pid)
    idle = b.idle_reading(p.pid, IDLE, USE_PERF)
    stop_start = b.now()
    for pid in marked_sleeps():
        os.kill(pid, signal.SIGTERM)
    if b.wait_exit(p, TIMEOUT) is None:
        raise SystemExit("baseline did not stop in time")
    stop = b.now() - stop_start
    return dict(start=took, running=ready_at, stop=stop, threads=1, load=load, work=cpu, **mem, **idle)

def others_share(busy0, total0, self0, pid):
    """The share of the machine (%) that processes other than the run's (`pid` and its tree) and
    this script used since the readings — a high figure marks a start time disturbed by others —
    and the CPU seconds the run's tree used so far (the work of starting: steadier than time)."""
    ours = b.tree_cpu(pid)
    busy, total = b.system_cpu()
    others = (busy - busy0) - ours - (b.self_cpu() - self0)
    return max(0.0, others) / max(total - total0, 1e-9) * 100, ours

def group_members(pgid):
    """Pids of live (non-zombie) processes in process group `pgid`."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(b")") + 2:].split()
        if rest[0] != b"Z" and int(rest[2]) == pgid:
            out.append(int(e))
    return out

def run_shell_reference(script):
    """Start time only: a shell loop starting N children with `script` (exec.sh, wrapper.sh)."""
    busy0, total0 = b.system_cpu()
    self0 = b.self_cpu()
    start = b.now()
    p = b.spawn(["sh", script], cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        ready = ReadyWatcher(start)
        w = LineWatcher(p.stdout, "started", 1)
        if not w.done.wait(TIMEOUT) or w.reached_at is None:
            raise SystemExit(f"{script} did not start its children in time")
        took = w.reached_at - start
        ready_at = ready.wait()
        load, cpu = others_share(busy0, total0, self0, p.pid)
    finally:
        # Sleeps (and watchdog subshells) share the script's process group (no job control in sh -c).
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        b.wait_exit(p, 10)
        kill_leftovers()
        # Until every one of them has exited: hundreds of processes tearing down while the next
        # run starts would slow that run down.
        deadline = b.now() + 10
        while b.now() < deadline and group_members(p.pid):
            time.sleep(0.01)
    return dict(start=took, running=ready_at, load=load, work=cpu)

def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[:-1]
    except OSError:
        return []

def census(root):
    """What `root` started besides itself — its live descendants and the live members of its
    children's process groups (one that left its parent stays in the group) — as
    (instances, helpers, others): `sleep MARK`s, watchdog helpers, anything else."""
    table = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(b")") + 2:].split()
        if rest[0] != b"Z":
            table[int(e)] = (int(rest[1]), int(rest[2]))
    found, frontier = set(), [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    children = {pid for pid, (ppid, _) in table.items() if ppid == root}
    found |= {pid for pid, (_, pgid) in table.items() if pgid in children}
    instances, helpers, others = [], [], []
    for pid in found:
        argv = cmdline(pid)
        if argv == [b"sleep", MARK.encode()]:
            instances.append(pid)
        elif argv[-1:] == [b"swiftproc-watchdog"]:
            helpers.append(pid)
        else:
            others.append(pid)
    return instances, helpers, others

def run_swift_reference(demo=None):
    """An idle Swift + Foundation program with no children (swiftproc-demo, quiet): what the
    runtime costs by itself."""
    p = b.spawn([demo or DEMO, "--port", "0", "--quiet"], cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    w = LineWatcher(p.stdout, "listening on", 1)
    if not w.done.wait(TIMEOUT):
        raise SystemExit("swiftproc-demo did not start")
    time.sleep(SETTLE)
    mem = b.memory(p.pid)
    idle = b.idle_reading(p.pid, IDLE, USE_PERF)
    threads = b.threads(p.pid)
    p.send_signal(signal.SIGTERM)
    b.wait_exit(p, 10)
    return dict(threads=threads, **mem, **idle)

def run_swiftproc(extra, binary=None, strict=True):
    busy0, total0 = b.system_cpu()
    self0 = b.self_cpu()
    start = b.now()
    p = b.spawn([binary or SWIFTPROC, "start", "--no-color", "-m", FORMATION] + extra, cwd=work,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ready = ReadyWatcher(start)
    w = LineWatcher(p.stdout, " started (pid ", N)
    if not w.done.wait(TIMEOUT) or w.reached_at is None:
        b.kill_tree(p.pid)
        raise SystemExit(f"swiftproc started {w.count} of {N} instances in {TIMEOUT:.0f}s:\n" + "".join(w.lines[-20:]))
    took = w.reached_at - start
    ready_at = ready.wait()
    load, cpu = others_share(busy0, total0, self0, p.pid)
    time.sleep(SETTLE)
    running = len(marked_sleeps())
    if running != N:
        b.kill_tree(p.pid)
        raise SystemExit(f"swiftproc: {running} sleeps running, expected {N}:\n" + "".join(w.lines[-20:]))
    instances, helpers, others = census(p.pid)
    if len(instances) != N or (others and strict):
        b.kill_tree(p.pid)
        raise SystemExit(f"swiftproc: {len(instances)} instances, {len(helpers)} helpers and {len(others)} other processes "
                         f"besides itself, expected {N} instances: " + ", ".join(repr(cmdline(o)) for o in others[:5]))
    helper_rss = sum(b.memory(h)["rss"] for h in helpers)
    mem = b.memory(p.pid)
    threads = b.threads(p.pid)
    fds = len(os.listdir(f"/proc/{p.pid}/fd"))
    idle = b.idle_reading(p.pid, IDLE, USE_PERF)
    stop_start = b.now()
    os.kill(p.pid, signal.SIGINT)
    status = b.wait_exit(p, TIMEOUT)
    stop = b.now() - stop_start
    w.closed.wait(5)
    left = marked_sleeps()
    if status != 0 or left:
        raise SystemExit(f"swiftproc exited {status} after SIGINT with {len(left)} children left:\n" + "".join(w.lines[-20:]))
    if not any("all processes stopped" in l for l in w.lines):
        raise SystemExit("swiftproc did not report `all processes stopped`:\n" + "".join(w.lines[-20:]))
    return dict(start=took, running=ready_at, stop=stop, threads=threads, fds=fds, load=load, work=cpu,
                processes=len(instances) + len(helpers) + len(others), helpers=len(helpers), others=len(others),
                helper_rss=helper_rss, **mem, **idle)

variants = [("baseline", run_baseline), ("pty", lambda: run_swiftproc([])), ("--no-tty", lambda: run_swiftproc(["--no-tty"])),
            ("swift", run_swift_reference), ("exec", lambda: run_shell_reference("exec.sh")),
            ("wrapper", lambda: run_shell_reference("wrapper.sh"))]
if STATIC:
    variants += [("pty-dynamic", lambda: run_swiftproc([], SWIFTPROC_DYNAMIC)),
                 ("swift-dynamic", lambda: run_swift_reference(DEMO_DYNAMIC))]
# Another build of swiftproc measured in the same repetitions (e.g. before a change); its
# processes are counted but not required to be INSTANCES + helper.
COMPARE = os.environ.get("COMPARE")
COMPARE_LABEL = os.environ.get("COMPARE_LABEL", COMPARE or "")
if COMPARE:
    variants += [("compare", lambda: run_swiftproc([], COMPARE, strict=False))]
def size_mb(path):
    return os.path.getsize(path) / 1e6
print(f"swiftproc binary: {SWIFTPROC} ({size_mb(SWIFTPROC):.0f} MB)" +
      (f"; dynamically linked reference: {SWIFTPROC_DYNAMIC} ({size_mb(SWIFTPROC_DYNAMIC):.0f} MB)" if STATIC else ""), file=sys.stderr)
print(f"spawn and idle: {N} instances, {IDLE:.0f} s idle, {REPS} repetitions; {b.machine_note()}; "
      f"perf {'available' if USE_PERF else 'not available (wake-ups from /proc, CPU in ticks only)'}", file=sys.stderr)
res = {name: [] for name, _ in variants}
for rep in range(REPS):
    order = variants[rep % len(variants):] + variants[:rep % len(variants)]
    for name, run in order:
        r = run()
        res[name].append(r)
        if name in ("exec", "wrapper"):
            print(f"  rep {rep + 1} {name:<13} start {r['start'] * 1000:7.1f} ms, all running {r['running'] * 1000:7.1f} ms (others {r['load']:3.0f}%), CPU {r['work'] * 1000:5.0f} ms", file=sys.stderr)
            continue
        print(f"  rep {rep + 1} {name:<13}" + (f" start {r['start'] * 1000:7.1f} ms, all running {r['running'] * 1000:7.1f} ms (others {r['load']:3.0f}%), CPU {r['work'] * 1000:5.0f} ms" if "start" in r else " " * 71) +
              f"  RSS {r['rss'] / 1024:5.1f} MB (private {r['anon'] / 1024:4.1f})  idle {r['ticks']} ticks"
              + (f" {r['cpu_ms']:.2f} ms CPU" if r["cpu_ms"] is not None else "")
              + f", {r['wakeups'] / IDLE:5.1f} wake-ups/s" + (f"  stop {r['stop'] * 1000:7.1f} ms" if "stop" in r else "")
              + f"  threads {r['threads']}" + (f"  fds {r['fds']}" if "fds" in r else "")
              + (f"  processes {r['processes']} ({r['helpers']} helper, {r['helper_rss'] / 1024:.1f} MB; {r['others']} other)" if "processes" in r else ""), file=sys.stderr)

def col(name, key):
    return [r[key] for r in res[name]]

def ratio(name, key):
    return [res[name][i][key] / res["baseline"][i][key] for i in range(REPS)]

tick_ms = 1000 / b.CLK_TCK
build = " — self-contained build" if STATIC else ""
labels = {"baseline": f"baseline: sh loop, {N} × `sleep &`, then `wait`",
          "pty": f"swiftproc start -m {FORMATION} (ptys, default){build}",
          "--no-tty": f"swiftproc start -m {FORMATION} --no-tty (pipes){build}",
          "swift": f"reference: idle Swift program, no children (swiftproc-demo){build}",
          "pty-dynamic": f"reference: swiftproc start -m {FORMATION} (ptys) — dynamically linked build",
          "swift-dynamic": "reference: idle Swift program (swiftproc-demo) — dynamically linked build",
          "compare": f"reference: swiftproc start -m {FORMATION} (ptys) — {COMPARE_LABEL}",
          "exec": f"reference: sh loop, {N} × `sh -c 'exec sleep'` (how swiftproc starts an instance)",
          "wrapper": f"reference: sh loop, {N} × the per-instance watchdog wrapper used until 2026-12-07"}
timing = []
def processes(name):
    if name not in ("pty", "--no-tty", "pty-dynamic", "compare"):
        return ""
    counts = col(name, "processes")
    helpers, others = max(col(name, "helpers")), max(col(name, "others"))
    word = f"{b.med(counts):.0f}" if min(counts) == max(counts) else f"{min(counts)}–{max(counts)}"
    return f"{word} ({N} + {helpers} helper" + (f" + {others} other" if others else "") + ")"
def start_goal(name):
    """All N running within 2× the baseline, N processes besides swiftproc + at most one helper."""
    if name not in ("pty", "--no-tty"):
        return ""
    ok = b.med(ratio(name, "running")) <= 2.0
    counted = all(c - h == N for c, h in zip(col(name, "processes"), col(name, "helpers"))) and max(col(name, "helpers")) <= 1
    return f"≤ 2× — {b.met(ok)}; {N} + ≤ 1 — {b.met(counted)}"
for name in ["baseline", "exec", "wrapper", "pty", "--no-tty"] + (["pty-dynamic"] if STATIC else []) + (["compare"] if COMPARE else []):
    is_base = name == "baseline"
    has_stop = name not in ("exec", "wrapper")
    timing.append([
        labels[name],
        b.summary([v * 1000 for v in col(name, "start")], "{:.0f}", " ms"),
        "1" if is_base else b.summary(ratio(name, "start"), "{:.1f}", "×"),
        b.summary([v * 1000 for v in col(name, "running")], "{:.0f}", " ms"),
        "1" if is_base else b.summary(ratio(name, "running"), "{:.1f}", "×"),
        b.summary([v * 1000 for v in col(name, "work")], "{:.0f}", " ms"),
        "1" if is_base else b.summary(ratio(name, "work"), "{:.1f}", "×"),
        b.summary([v * 1000 for v in col(name, "stop")], "{:.0f}", " ms") if has_stop else "",
        "1" if is_base else b.summary(ratio(name, "stop"), "{:.1f}", "×") if has_stop else "",
        processes(name),
        b.summary(col(name, "load"), "{:.0f}", "%"),
        start_goal(name),
    ])
def idle_ok(name):
    """No measurable CPU: with perf, less than one clock tick's worth of CPU over the whole idle
    window (the ticks column can still move by one when the running total crosses a tick
    boundary); without perf, no tick in the median run."""
    cpu_ms = col(name, "cpu_ms")
    if None not in cpu_ms:
        return b.med(cpu_ms) < tick_ms
    return b.med(col(name, "ticks")) == 0

idle_rows = []
for name in ["baseline", "swift", "pty", "--no-tty"] + (["swift-dynamic", "pty-dynamic"] if STATIC else []):
    is_sp = name in ("pty", "--no-tty")
    rss_mb = [v / 1024 for v in col(name, "rss")]
    cpu_ms = col(name, "cpu_ms")
    idle_rows.append([
        labels[name],
        b.summary(rss_mb, "{:.1f}", " MB"),
        b.summary([v / 1024 for v in col(name, "anon")], "{:.1f}", " MB"),
        b.summary([v / 1024 for v in col(name, "file")], "{:.1f}", " MB"),
        b.summary(ratio(name, "rss"), "{:.1f}", "×") if name != "baseline" else "1",
        b.summary([v * tick_ms for v in col(name, "ticks")], "{:.0f}", " ms"),
        b.summary(cpu_ms, "{:.2f}", " ms") if None not in cpu_ms else "n/a",
        b.summary([v / IDLE for v in col(name, "wakeups")], "{:.1f}"),
        f"RSS < 20 MB — {b.met(b.med(rss_mb) < 20)}; no measurable idle CPU — {b.met(idle_ok(name))}" if is_sp else "",
    ])
text = (f"spawn-and-idle ({time.strftime('%Y-%m-%d', time.gmtime())}): {N} idle children (`sleep`), median (range) of {REPS} runs; "
        f"swiftproc binary: {'self-contained (--static-swift-stdlib)' if STATIC else 'dynamically linked'}, "
        f"{size_mb(SWIFTPROC):.0f} MB" + (f" (dynamically linked reference: {size_mb(SWIFTPROC_DYNAMIC):.0f} MB)" if STATIC else "") + "; "
        f"ratios are to the baseline of the same run; \"others' CPU share\": CPU the rest of the machine used while "
        f"the run started its children (a high figure marks a disturbed start). *start*: to the last `started` line "
        f"(baseline: to the end of its loop); *all running*: until /proc shows {N} `sleep` processes; "
        f"*CPU to start*: CPU time of the run's whole process tree (supervisor or shell, children, helper) "
        f"from launch to all running — the work, steadier than time on a shared machine; "
        f"*processes besides swiftproc*: its descendants and their groups' members (the watchdog helper: "
        f"{b.summary([r['helper_rss'] / 1024 for r in res['pty']], '{:.1f}', ' MB')} RSS)\n\n" +
        b.table(["run", f"start {N}", "vs baseline", f"all {N} running", "vs baseline", "CPU to start", "vs baseline",
                 f"stop {N}", "vs baseline",
                 "processes besides swiftproc", "others' CPU share while starting", "goals: all running, processes"], timing) +
        f"\n\nAfter {SETTLE:.0f} s, with {N} children; idle = the next {IDLE:.0f} s (ticks: utime+stime from /proc/PID/stat, "
        f"{tick_ms:.0f} ms each, rounded from the running total; exact CPU and wake-ups: perf stat task-clock / "
        f"context-switches; goal: less than one tick of CPU over the window)\n\n" +
        b.table(["process", "VmRSS", "private (RssAnon)", "file-backed: binary, libs (RssFile)", "VmRSS vs baseline",
                 f"idle CPU, ticks", "idle CPU, exact", "wake-ups/s", "goals"], idle_rows))
b.save("spawn-and-idle", text)
PY
