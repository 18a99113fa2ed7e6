#!/bin/sh
# Memory per spawn (issue 13): a scale storm makes the supervisor spawn ROUNDS × BATCH children
# (`scale app=BATCH`, then `scale app=0`, repeated); its VmRSS is read after WARMUP rounds and
# at the end. Reported: the ratio end/warm-up (goal ≤ 1.10: flat memory) and KB per spawn.
# Before the fix it was 5–10 KB per spawn (24,000 spawns: 23 → 136 MB).
#
#   Benchmarks/spawn-memory.sh                          # 40 rounds of 50 = 2,000 spawns
#   ROUNDS=200 BATCH=100 Benchmarks/spawn-memory.sh     # 20,000 spawns
#   SWIFTPROC=.build-hard/debug/swiftproc Benchmarks/spawn-memory.sh   # any build, no rebuild
set -eu
. "$(dirname "$0")/lib/common.sh"
ROUNDS=${ROUNDS:-40}
BATCH=${BATCH:-50}
WARMUP=${WARMUP:-4}
if [ -z "${SWIFTPROC:-}" ]; then bench_build; fi
app=$(mktemp -d)
trap 'cd /; [ -n "${pid:-}" ] && kill -INT "$pid" 2>/dev/null; sleep 1; rm -rf "$app"' EXIT
printf 'app: exec sleep 1000\n' > "$app/Procfile"
cd "$app"
"$SWIFTPROC" start --no-color --log-lines ${LOG_LINES:-10000} -m app=0 >/dev/null 2>&1 &
pid=$!
i=0
while ! "$SWIFTPROC" status >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 200 ] && { echo "no supervisor" >&2; exit 1; }; sleep 0.05; done
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
round=0
while [ $round -lt "$ROUNDS" ]; do
  "$SWIFTPROC" scale "app=$BATCH" >/dev/null
  "$SWIFTPROC" scale app=0 >/dev/null
  round=$((round+1))
  [ $round -eq "$WARMUP" ] && warm=$(rss)
done
end=$(rss)
spawns=$(( (ROUNDS - WARMUP) * BATCH ))
python3 - "$warm" "$end" "$spawns" <<'PY'
import sys
warm, end, spawns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"RSS after warm-up {warm} KB, after {spawns} more spawns {end} KB: "
      f"ratio {end / warm:.2f} (goal <= 1.10), {(end - warm) / spawns:.2f} KB per spawn")
PY
