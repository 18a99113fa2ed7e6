"""Helpers shared by the benchmark scripts (timing, /proc readings, cleanup, tables).

Everything a benchmark starts goes through `spawn()`, so `cleanup()` (run at exit, and on
SIGINT/SIGTERM/SIGHUP of the benchmark itself) can SIGKILL it and every descendant it left.
Linux only: readings come from /proc.
"""
import atexit
import os
import signal
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

_started = []  # Popen objects


def require_linux():
    if not os.path.isdir("/proc/self/task"):
        sys.exit("these benchmarks read /proc (Linux only)")


def now():
    return time.monotonic()


# ---------------------------------------------------------------- processes

def spawn(args, **kw):
    """Popen in a new session (its own process group), remembered for cleanup."""
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(args, **kw)
    _started.append(p)
    return p


def _proc_stats():
    """(pid, /proc/PID/stat bytes) of every process that is still there when read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                yield int(entry), f.read()
        except OSError:
            continue


def process_table():
    """pid -> ppid for every live process."""
    table = {}
    for pid, stat in _proc_stats():
        rest = stat[stat.rfind(b")") + 2:].split()
        table[pid] = int(rest[1])
    return table


def descendants(pid):
    table = process_table()
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        for child, parent in table.items():
            if parent == p:
                out.append(child)
                frontier.append(child)
    return out


def kill_tree(pid, sig=signal.SIGKILL):
    """Signals `pid`'s descendants (deepest last found first), then `pid` itself."""
    for p in reversed(descendants(pid)):
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def count_descendants(pid):
    return len(descendants(pid))


def wait_exit(p, timeout):
    """Waits for Popen `p`; on timeout kills its tree and returns None."""
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(p.pid)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return None


def cleanup():
    for p in _started:
        if p.poll() is None:
            kill_tree(p.pid)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        else:
            # Exited, but a descendant may have been left behind (re-parented away, so this
            # only finds the ones that were not): best effort.
            pass


def _on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


atexit.register(cleanup)
for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_s, _on_signal)


# ---------------------------------------------------------------- /proc readings

def cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rfind(b")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def status_kb(pid, key):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM, …)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def context_switches(pid):
    """Voluntary + involuntary context switches summed over every thread: each is a wake-up."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


# ---------------------------------------------------------------- statistics and tables

def med(values):
    return statistics.median(values)


def summary(values, fmt="{:.2f}", unit=""):
    """`median (min–max)` of repeated measurements."""
    if not values:
        return "n/a"
    m, lo, hi = med(values), min(values), max(values)
    if len(values) == 1:
        return fmt.format(m) + unit
    return f"{fmt.format(m)}{unit} ({fmt.format(lo)}–{fmt.format(hi)})"


def table(headers, rows):
    """A Markdown table, columns padded so it also reads well in a terminal."""
    cols = list(zip(*([headers] + rows)))
    widths = [max(len(str(c)) for c in col) for col in cols]
    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def met(ok):
    return "met" if ok else "NOT met"


def save(name, text):
    """Prints `text` and keeps a copy in Benchmarks/out/NAME.md (git-ignored)."""
    print(text)
    out_dir = os.path.join(os.environ.get("REPO", "."), "Benchmarks", "out")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, name + ".md"), "w") as f:
        f.write(text + "\n")


def machine_note():
    cores = os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return f"{cores} cores, load average {load:.2f} at start"


def scratch_dir(prefix, need_bytes=2 << 30):
    """A temporary directory, on tmpfs (/dev/shm) when it has room, so disk writeback of one
    run's output does not slow the next; removed at exit. $BENCH_TMP overrides the parent."""
    import shutil
    import tempfile
    parent = os.environ.get("BENCH_TMP")
    if not parent:
        parent = tempfile.gettempdir()
        try:
            st = os.statvfs("/dev/shm")
            if st.f_bavail * st.f_frsize >= need_bytes and os.access("/dev/shm", os.W_OK):
                parent = "/dev/shm"
        except OSError:
            pass
    d = tempfile.mkdtemp(prefix=prefix, dir=parent)
    atexit.register(shutil.rmtree, d, True)
    return d


def children_cpu():
    """CPU seconds (user + system) of every waited-for descendant so far: the difference around a
    run is the CPU the whole run used (children roll up into the parent that reaps them)."""
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def have_perf():
    import shutil
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock", "--", "true"], capture_output=True, text=True)
    return r.returncode == 0 and "task-clock" in r.stderr


def idle_reading(pid, seconds, use_perf):
    """What `pid` did over `seconds`: CPU ticks (utime+stime from /proc, 10 ms resolution), and
    with perf also its exact CPU time (task-clock, ms) and wake-ups (context switches of every
    thread, including threads that came and went). Without perf, wake-ups are summed over the
    threads that exist at both ends."""
    t0 = cpu_ticks(pid)
    if use_perf:
        r = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock,context-switches", "-p", str(pid),
                            "--", "sleep", str(seconds)], capture_output=True, text=True)
        values = {}
        for line in r.stderr.splitlines():
            parts = line.split(",")
            if len(parts) > 2 and parts[2] in ("task-clock", "context-switches"):
                values[parts[2]] = 0.0 if parts[0].startswith("<") else float(parts[0])
        return dict(ticks=cpu_ticks(pid) - t0, cpu_ms=values.get("task-clock"),
                    wakeups=values.get("context-switches"))
    c0 = context_switches(pid)
    time.sleep(seconds)
    return dict(ticks=cpu_ticks(pid) - t0, cpu_ms=None, wakeups=context_switches(pid) - c0)


def memory(pid):
    """VmRSS split into private (RssAnon) and file-backed (RssFile: mapped binaries and shared
    libraries, shared with every other process that maps them), in kB."""
    return dict(rss=status_kb(pid, "VmRSS"), anon=status_kb(pid, "RssAnon"), file=status_kb(pid, "RssFile"),
                hwm=status_kb(pid, "VmHWM"))


def self_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def system_cpu():
    """Busy and total CPU seconds of the whole machine so far (all cores, from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already included in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def kernel_workers_cpu():
    """CPU seconds used so far by the kernel's worker threads (`kworker/…`). A pty's input is
    moved from the writer's side to the reader's by such a worker, so a run through ptys costs
    CPU there that no process of the run is charged for. Machine-wide: other processes' I/O
    runs there too, so it is only a fair reading around a run that dominates the machine."""
    total = 0
    for _, stat in _proc_stats():
        if b"(kworker" not in stat[:40]:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


class Usage:
    """CPU used during a run: by the run's own processes (they roll up into us as we reap them),
    by the kernel's worker threads (`kworker`, see ``kernel_workers_cpu``) and by everything else
    on the machine, which tells a noisy repetition apart."""
    def __enter__(self):
        self.self0 = self_cpu()
        self.ours0 = children_cpu()
        self.kworkers0 = kernel_workers_cpu()
        self.busy0, self.total0 = system_cpu()
        self.t0 = now()
        return self

    def __exit__(self, *exc):
        self.ours = children_cpu() - self.ours0
        self.kworkers = kernel_workers_cpu() - self.kworkers0
        busy, total = system_cpu()
        self.wall = now() - self.t0
        capacity = max(total - self.total0, 1e-9)
        # The benchmark's own CPU (e.g. watching an output file) is neither the run's nor others'.
        self.others = max(0.0, (busy - self.busy0) - self.ours - self.kworkers - (self_cpu() - self.self0))
        self.others_share = self.others / capacity  # fraction of the machine others used
        self.ours_share = self.ours / capacity
        return False


def tree_cpu(pid):
    """CPU seconds used so far by `pid` and its live descendants (every thread), from
    /proc/PID/task/TID/schedstat — nanoseconds, unlike the 10 ms ticks of /proc/PID/stat, which
    round a short-lived process's CPU to nothing. Falls back to ticks without schedstat."""
    total = 0.0
    for p in [pid] + descendants(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                try:
                    total += cpu_ticks(p) / CLK_TCK
                except OSError:
                    pass
                break
    return total
