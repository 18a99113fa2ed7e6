#!/bin/sh
# Merged-log throughput: CHILDREN children each print LINES numbered lines and exit 0.
#
#   baseline   a plain sh script starts the same children in parallel, each writing straight to
#              its own file, and waits
#   --no-tty   swiftproc start --no-tty -m app=CHILDREN > file  (children write to pipes)
#   pty        swiftproc start -m app=CHILDREN > file           (children write to ptys, so they
#              line-buffer: one write(2) per line)
#   pty floor  (reference) CHILDREN × `script -qc … /dev/null` — one util-linux pty relay per
#              child, no merging: what giving each child a pty costs by itself
#   pty, own sessions  (diagnostic, no goal) the pty run with each child under `setsid -w`, so it
#              leads its own session as `script`'s children do. With the kernel's autogroup
#              scheduling (sched_autogroup_enabled=1) every session is scheduled as one unit:
#              swiftproc and all its children share one, each `script` child has its own. This
#              row shows how much of the gap to the floor is that placement, not the relaying.
#
# swiftproc runs under its default restart policy (on-failure: exit 0 is not restarted); once the
# output shows CHILDREN `exited with status 0` lines it gets SIGINT, and the time ends when it has
# exited (every line written). Each output is then checked: every child's lines present, whole and
# in order. Throughput = lines / wall time; each figure is a ratio to the baseline of the same
# repetition (median and range over REPS).
#
# Goals: --no-tty ≥ 0.5× baseline, pty ≥ 0.3× baseline, pty ≥ 0.8× the pty floor (throughput of
# the same repetition). A missed goal is reported, not an error. "kernel workers' CPU" is the CPU
# of the kernel's kworker threads during the run (a pty's input is moved to its reader there, so
# no process of the run is charged for it; machine-wide, so it includes other processes' I/O).
#
#   Benchmarks/log-throughput.sh                  # 16 children × 200000 lines, 3 repetitions
#   CHILDREN=8 LINES=50000 REPS=5 Benchmarks/log-throughput.sh
set -eu
. "$(dirname "$0")/lib/common.sh"
bench_require_python
bench_build
exec python3 - "$@" <<'PY'
import os, re, shutil, signal, subprocess, sys, time
sys.path.insert(0, os.environ["BENCH_LIB"])
import benchlib as b

b.require_linux()
CHILDREN = int(os.environ.get("CHILDREN", "16"))
LINES = int(os.environ.get("LINES", "200000"))
REPS = int(os.environ.get("REPS", "3"))
TIMEOUT = float(os.environ.get("RUN_TIMEOUT", "180"))  # per run, seconds
SWIFTPROC = os.environ["SWIFTPROC"]
TOTAL = CHILDREN * LINES
TEXT = b"the quick brown fox jumps over the lazy dog"

work = b.scratch_dir("swiftproc-bench-logs-")

with open(os.path.join(work, "gen.sh"), "w") as f:
    f.write('exec awk -v ps="${PS:-x}" -v n="%d" \'BEGIN { for (i = 1; i <= n; i++) '
            'printf "%%s line %%d %s\\n", ps, i }\'\n' % (LINES, TEXT.decode()))
with open(os.path.join(work, "Procfile"), "w") as f:
    f.write("app: sh gen.sh\n")
with open(os.path.join(work, "Procfile.sessions"), "w") as f:
    f.write("app: setsid -w sh gen.sh\n")
with open(os.path.join(work, "baseline.sh"), "w") as f:
    f.write('i=1\nwhile [ $i -le %d ]; do PS=app.$i sh gen.sh > "out/base.$i" & i=$((i + 1)); done\nwait\n' % CHILDREN)
with open(os.path.join(work, "ptyfloor.sh"), "w") as f:
    f.write('i=1\nwhile [ $i -le %d ]; do PS=app.$i script -qc "sh gen.sh" /dev/null < /dev/null > "out/pty.$i" & '
            'i=$((i + 1)); done\nwait\n' % CHILDREN)
os.makedirs(os.path.join(work, "out"))

def fresh_out():
    d = os.path.join(work, "out")
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))

def check_child_file(path, ps):
    """A child's own file: exactly its LINES lines, in order."""
    with open(path, "rb") as f:
        data = f.read().replace(b"\r\n", b"\n")
    expected = b"".join(b"%s line %d %s\n" % (ps.encode(), i, TEXT) for i in range(1, LINES + 1))
    return data == expected

def run_plain(script):
    """A sh script that starts the children itself; wall time until it returns."""
    fresh_out()
    start = b.now()
    p = b.spawn(["sh", script], cwd=work, stdin=subprocess.DEVNULL)
    status = b.wait_exit(p, TIMEOUT)
    took = b.now() - start
    if status != 0:
        raise SystemExit(f"{script} failed or timed out (status {status})")
    bad = [i for i in range(1, CHILDREN + 1)
           if not check_child_file(os.path.join(work, "out", ("base.%d" if "baseline" in script else "pty.%d") % i), f"app.{i}")]
    if bad:
        raise SystemExit(f"{script}: children {bad} did not write all their lines")
    return took, None, None

LINE = re.compile(rb"^(?:\d\d:\d\d:\d\d )?(app\.\d+) +\| (.*)$")

def verify_merged(path):
    """Checks that every child line is present once and in order.

    Returns (intact lines, split lines, system lines, problems). A *split* line arrived in
    pieces on consecutive lines of its child (the multiplexer printed an unterminated piece
    after its quiet period) — its bytes are all there, so it is counted, not failed; anything
    else out of place (lost, duplicated, reordered, garbled) is a problem.
    """
    with open(path, "rb") as f:
        data = f.read()
    nxt = {f"app.{i}".encode(): 1 for i in range(1, CHILDREN + 1)}
    pending = {name: b"" for name in nxt}
    problems, intact, split, system = [], 0, 0, 0
    for line in data.split(b"\n"):
        if not line:
            continue
        m = LINE.match(line)
        if not m:
            if b" system " in line[:20] or line.startswith(b"system "):
                system += 1
            else:
                problems.append(line[:120])
            continue
        name, text = m.group(1), m.group(2)
        if name not in nxt:
            problems.append(line[:120])
            continue
        want = b"%s line %d %s" % (name, nxt[name], TEXT)
        piece = pending[name] + text
        if piece == want:
            nxt[name] += 1
            if pending[name]:
                split += 1
                pending[name] = b""
            else:
                intact += 1
        elif want.startswith(piece):
            pending[name] = piece
        else:
            problems.append(line[:120])
            pending[name] = b""
            if len(problems) > 1000:
                break
    missing = [n.decode() for n, v in nxt.items() if v != LINES + 1]
    if missing:
        problems.append(b"incomplete: " + ", ".join(missing).encode())
    return intact, split, system, problems

def run_swiftproc(extra):
    """swiftproc start … > file; SIGINT once every child exited 0; time until swiftproc exits."""
    out_path = os.path.join(work, "swiftproc.out")
    out = open(out_path, "wb")
    start = b.now()
    p = b.spawn([SWIFTPROC, "start", "--no-color", "-m", f"app={CHILDREN}"] + extra,
                cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    seen_ok = 0
    carry = b""
    deadline = start + TIMEOUT
    with open(out_path, "rb") as f:
        while seen_ok < CHILDREN:
            chunk = f.read()
            if chunk:
                # Only whole lines are scanned; a partial last line waits for the next read.
                data = carry + chunk
                cut = data.rfind(b"\n") + 1
                data, carry = data[:cut], data[cut:]
                # Exit lines are system lines; count the clean ones, stop on a failure.
                for m in re.finditer(rb"\| (app\.\d+) exited with status (\d+)", data):
                    if m.group(2) != b"0":
                        raise SystemExit(f"swiftproc: {m.group(1).decode()} exited with status {m.group(2).decode()}")
                    seen_ok += 1
                continue
            if p.poll() is not None:
                raise SystemExit(f"swiftproc exited early (status {p.returncode}); see {out_path}")
            if b.now() > deadline:
                raise SystemExit("swiftproc run timed out")
            time.sleep(0.01)
    cpu = b.cpu_ticks(p.pid) / b.CLK_TCK
    os.kill(p.pid, signal.SIGINT)
    status = b.wait_exit(p, 30)
    took = b.now() - start
    if status != 0:
        raise SystemExit(f"swiftproc exited with {status} after SIGINT; see {out_path}")
    intact, split, system, problems = verify_merged(out_path)
    if problems or intact + split != TOTAL:
        print("\n".join(x.decode(errors="replace") for x in problems[:10]), file=sys.stderr)
        kept = os.path.join(os.environ["REPO"], "Benchmarks", "out", "log-throughput-failed.out")
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        shutil.move(out_path, kept)
        raise SystemExit(f"swiftproc output: {intact + split} of {TOTAL} child lines complete, "
                         f"{len(problems)} problem(s); output kept in {kept}")
    os.unlink(out_path)
    return took, cpu, split

have_script = shutil.which("script") is not None and \
    subprocess.run(["script", "--version"], capture_output=True, text=True).stdout.find("util-linux") >= 0

have_setsid = shutil.which("setsid") is not None and \
    subprocess.run(["setsid", "--version"], capture_output=True, text=True).stdout.find("util-linux") >= 0

variants = [("baseline", lambda: run_plain("baseline.sh")),
            ("--no-tty", lambda: run_swiftproc(["--no-tty"])),
            ("pty", lambda: run_swiftproc([]))]
if have_script:
    variants.append(("pty floor", lambda: run_plain("ptyfloor.sh")))
if have_setsid and os.environ.get("SESSIONS_ROW", "1") != "0":
    variants.append(("pty sessions", lambda: run_swiftproc(["-f", "Procfile.sessions"])))

print(f"log throughput: {CHILDREN} children × {LINES} lines ({TOTAL} lines, "
      f"{TOTAL * (len(TEXT) + 16) / 1e6:.0f} MB), {REPS} repetitions; {b.machine_note()}", file=sys.stderr)
results = {name: [] for name, _ in variants}
cpu = {name: [] for name, _ in variants}
splits = {name: [] for name, _ in variants}
total_cpu = {name: [] for name, _ in variants}
kworkers = {name: [] for name, _ in variants}
others = {name: [] for name, _ in variants}
CORES = os.cpu_count() or 1
for rep in range(REPS):
    # Rotate the order so no variant always runs right after the heaviest one.
    order = variants[rep % len(variants):] + variants[:rep % len(variants)]
    for name, run in order:
        with b.Usage() as usage:
            took, c, split = run()
        total_cpu[name].append(usage.ours)
        kworkers[name].append(usage.kworkers)
        others[name].append(usage.others_share * 100)
        results[name].append(took)
        if c is not None:
            cpu[name].append(c)
            splits[name].append(split)
        print(f"  rep {rep + 1} {name:<12} {took:6.2f} s  {TOTAL / took / 1e6:5.2f} M lines/s"
              f"  CPU: this run {total_cpu[name][-1]:5.1f} s ({total_cpu[name][-1] / took / CORES * 100:3.0f}% of {CORES} cores),"
              f" other processes {others[name][-1]:3.0f}% of the machine"
              + f"  kernel workers {usage.kworkers:4.1f} s"
              + (f"  swiftproc CPU {c:.1f} s, {split} lines split" if c is not None else ""), file=sys.stderr)

goals = {"--no-tty": 0.5, "pty": 0.3}
floor_goals = {"pty": 0.8}
rows = []
for name, _ in variants:
    times = results[name]
    ratios = [results["baseline"][i] / times[i] for i in range(REPS)]
    floor_ratios = [results["pty floor"][i] / times[i] for i in range(REPS)] if "pty floor" in results else []
    rate = [TOTAL / t / 1e6 for t in times]
    goal = goals.get(name)
    floor_goal = floor_goals.get(name) if floor_ratios else None
    rows.append([
        {"baseline": "baseline: sh starts children, each > own file",
         "--no-tty": "swiftproc start --no-tty > file (pipes)",
         "pty": "swiftproc start > file (ptys, default)",
         "pty floor": "reference: one `script` pty relay per child",
         "pty sessions": "diagnostic: the pty run, each child under `setsid -w`"}[name],
        b.summary(rate, "{:.2f}"),
        "1" if name == "baseline" else b.summary(ratios, "{:.2f}", "×"),
        "" if name in ("baseline", "--no-tty") or not floor_ratios else
        ("1" if name == "pty floor" else b.summary(floor_ratios, "{:.2f}", "×")),
        b.summary(total_cpu[name], "{:.1f}", " s"),
        "1" if name == "baseline" else b.summary([total_cpu["baseline"][i] / total_cpu[name][i] for i in range(REPS)], "{:.2f}", "×"),
        b.summary(kworkers[name], "{:.1f}", " s"),
        b.summary(others[name], "{:.0f}", "%"),
        b.summary(cpu[name], "{:.1f}", " s") if cpu[name] else "",
        b.summary(splits[name], "{:.0f}") if splits[name] else "",
        f"≥ {goal}× — {b.met(b.med(ratios) >= goal)}" if goal else "",
        f"≥ {floor_goal}× — {b.met(b.med(floor_ratios) >= floor_goal)}" if floor_goal else "",
    ])
text = (f"log-throughput ({time.strftime('%Y-%m-%d', time.gmtime())}): {CHILDREN} children × {LINES} lines, "
        f"median (range) of {REPS} runs, every output verified complete and in order "
        f"(\"lines split\": lines printed in two pieces, see README). \"others' CPU share\": CPU the rest of the "
        f"machine used during the run — a high figure marks a noisy repetition\n\n" +
        b.table(["run", "M lines/s", "throughput vs baseline", "throughput vs pty floor", "CPU, all its processes",
                 "lines per CPU s vs baseline", "kernel workers' CPU", "others' CPU share", "swiftproc's own CPU",
                 "lines split", "goal (vs baseline)", "goal (vs pty floor)"], rows))
b.save("log-throughput", text)
PY
