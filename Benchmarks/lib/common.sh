# Shared by the Benchmarks/*.sh scripts: builds release binaries into .build-bench (its own
# scratch path, so benchmarks never fight `swift build` over .build; BENCH_SCRATCH=DIR picks
# another, e.g. when two checkouts share a directory or another build is using it) and sets
#   REPO       the repository root
#   SWIFTPROC  $BENCH_SCRATCH/release/swiftproc (.build-bench by default)
#   DEMO       $BENCH_SCRATCH/release/swiftproc-demo
#   BENCH_LIB  this directory (benchlib.py lives here)
# and bench_build_static builds the self-contained binaries (--static-swift-stdlib: Swift runtime
# and Foundation linked in, what README recommends for installing) into $BENCH_SCRATCH-static:
#   SWIFTPROC_STATIC, DEMO_STATIC
# Sourced with `. "$(dirname "$0")/lib/common.sh"`.

BENCH_LIB=$(cd "$(dirname "$0")/lib" && pwd)
REPO=$(cd "$BENCH_LIB/../.." && pwd)
# Relative to the repository, or absolute.
BENCH_SCRATCH=${BENCH_SCRATCH:-.build-bench}
export BENCH_LIB REPO BENCH_SCRATCH

bench_build() {
  echo "building release binaries (swift build -c release --scratch-path $BENCH_SCRATCH)…" >&2
  if ! (cd "$REPO" && swift build -c release --scratch-path "$BENCH_SCRATCH" >"${TMPDIR:-/tmp}/swiftproc-bench-build.$$.log" 2>&1); then
    cat "${TMPDIR:-/tmp}/swiftproc-bench-build.$$.log" >&2
    rm -f "${TMPDIR:-/tmp}/swiftproc-bench-build.$$.log"
    echo "build failed" >&2
    exit 1
  fi
  rm -f "${TMPDIR:-/tmp}/swiftproc-bench-build.$$.log"
  SWIFTPROC="$(cd "$REPO" && cd "$BENCH_SCRATCH" && pwd)/release/swiftproc"
  DEMO="$(cd "$REPO" && cd "$BENCH_SCRATCH" && pwd)/release/swiftproc-demo"
  export SWIFTPROC DEMO
}

bench_build_static() {
  echo "building self-contained release binaries (swift build -c release --static-swift-stdlib --scratch-path $BENCH_SCRATCH-static)…" >&2
  if ! (cd "$REPO" && swift build -c release --static-swift-stdlib --scratch-path "$BENCH_SCRATCH-static" >"${TMPDIR:-/tmp}/swiftproc-bench-build-static.$$.log" 2>&1); then
    cat "${TMPDIR:-/tmp}/swiftproc-bench-build-static.$$.log" >&2
    rm -f "${TMPDIR:-/tmp}/swiftproc-bench-build-static.$$.log"
    echo "build failed" >&2
    exit 1
  fi
  rm -f "${TMPDIR:-/tmp}/swiftproc-bench-build-static.$$.log"
  SWIFTPROC_STATIC="$(cd "$REPO" && cd "$BENCH_SCRATCH-static" && pwd)/release/swiftproc"
  DEMO_STATIC="$(cd "$REPO" && cd "$BENCH_SCRATCH-static" && pwd)/release/swiftproc-demo"
  export SWIFTPROC_STATIC DEMO_STATIC
}

bench_require_python() {
  command -v python3 >/dev/null 2>&1 || { echo "python3 is needed to time and parse the benchmark" >&2; exit 1; }
}
