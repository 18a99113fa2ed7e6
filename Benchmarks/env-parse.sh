#!/bin/sh
# .env parsing is linear (issue 13: a 40,000-line file took 12 s — a linear search per line).
# Times `swiftproc start --no-restart` of a Procfile app whose one process exits at once, with a
# SMALL-line and a 10× larger .env, and reports
# the ratio large/small of the time (goal ≤ 25: linear plus start-up and hashing; quadratic is ~100).
# (`check` is not timed: its plan listing had a quadratic merge of its own, reported separately.)
#
#   Benchmarks/env-parse.sh                       # 4,000 and 40,000 lines
#   SWIFTPROC=.build-hard/debug/swiftproc SMALL=2000 Benchmarks/env-parse.sh
set -eu
. "$(dirname "$0")/lib/common.sh"
SMALL=${SMALL:-4000}
if [ -z "${SWIFTPROC:-}" ]; then bench_build; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'web: true\n' > "$dir/Procfile"
python3 - "$dir" "$SMALL" "$SWIFTPROC" <<'PY'
import os, subprocess, sys, time
directory, small, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def run(lines):
    with open(os.path.join(directory, ".env"), "w") as f:
        for i in range(lines):
            f.write(f"VARIABLE_{i}=value-{i}\n")
    best = None
    for _ in range(3):
        start = time.monotonic()
        subprocess.run([binary, "start", "--no-restart", "--no-tty"], cwd=directory, stdout=subprocess.DEVNULL, check=True)
        elapsed = time.monotonic() - start
        best = elapsed if best is None else min(best, elapsed)
    return best
a, b = run(small), run(small * 10)
print(f".env of {small} lines: {a:.3f} s, {small * 10} lines: {b:.3f} s: ratio {b / a:.1f} (goal <= 25)")
PY
