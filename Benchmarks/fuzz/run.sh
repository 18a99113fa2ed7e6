#!/bin/sh
# Fuzzing (issue 13): builds each libFuzzer target in Benchmarks/fuzz/targets/ against the
# TOML and SwiftProcKit sources (swiftc -sanitize=fuzzer,address; Linux only) and runs it for
# FUZZ_SECONDS (default 60) with a seed corpus taken from the tests and samples. A crash leaves
# its input in .build-fuzz/crashes/TARGET/ and fails the script: turn it into a regression test
# (Tests/…/HardeningUnitTests or the parser's own tests) and fix it.
#
#   Benchmarks/fuzz/run.sh                    # every target, 60 s each
#   FUZZ_SECONDS=600 Benchmarks/fuzz/run.sh toml control
#
# Adding a target: put `targets/NAME.swift` defining LLVMFuzzerTestOneInput next to the others,
# and seed it in seed_NAME below (or leave it unseeded). Nothing else changes.
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)
OUT=$REPO/.build-fuzz
SECONDS_EACH=${FUZZ_SECONDS:-60}
if [ "$(uname)" != Linux ]; then echo "fuzzing needs Linux (libFuzzer via swiftc -sanitize=fuzzer); skipped"; exit 0; fi
mkdir -p "$OUT/obj" "$OUT/bin"
FLAGS="-sanitize=fuzzer,address -parse-as-library -swift-version 6 -Onone -gline-tables-only"

build_modules() {
  # Modules are built as objects with coverage instrumentation; -enable-testing exposes internal parsers.
  swiftc $FLAGS -enable-testing -wmo -module-name TOML -emit-module -emit-module-path "$OUT/obj/TOML.swiftmodule" \
    -c Sources/TOML/*.swift -o "$OUT/obj/TOML.o"
  swiftc $FLAGS -enable-testing -wmo -module-name SwiftProcKit -I "$OUT/obj" -emit-module \
    -emit-module-path "$OUT/obj/SwiftProcKit.swiftmodule" -c $(find Sources/SwiftProcKit -name '*.swift') -o "$OUT/obj/SwiftProcKit.o"
}

seed_toml() { find samples Tests -name '*.toml'; }
seed_envfile() { find samples -name '.env*'; printf 'A=1\nB="x\\ny"\nexport C='"'"'z'"'"' # c\n' > "$1/hand.env"; }
seed_procfile() { find samples -name 'Procfile*'; }
seed_dockerfile() { find Tests/Fixtures -name 'Dockerfile*'; }
seed_control() {
  for l in '{"version":1,"command":"status"}' '{"version":1,"command":"scale","arguments":["web=+1","worker=-2"]}' \
           '{"version":1,"command":"logs","arguments":["web.1"],"lines":5,"follow":true}' '{"version":1,"command":"restart"}'; do
    printf '%s' "$l" > "$1/$(printf '%s' "$l" | cksum | cut -d' ' -f1)"
  done
}

build_modules
targets=${*:-$(ls Benchmarks/fuzz/targets | sed 's/\.swift$//')}
status=0
for t in $targets; do
  swiftc $FLAGS -I "$OUT/obj" "Benchmarks/fuzz/targets/$t.swift" "$OUT/obj/TOML.o" "$OUT/obj/SwiftProcKit.o" -o "$OUT/bin/$t"
  corpus="$OUT/corpus/$t"; seeds="$OUT/seeds/$t"; crashes="$OUT/crashes/$t"
  mkdir -p "$corpus" "$seeds" "$crashes"
  if command -v "seed_$t" >/dev/null 2>&1; then
    for f in $("seed_$t" "$seeds"); do cp "$f" "$seeds/$(echo "$f" | tr / _)"; done
  fi
  echo "== fuzz $t for ${SECONDS_EACH}s"
  if ! "$OUT/bin/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -artifact_prefix="$crashes/" -print_final_stats=1 "$corpus" "$seeds" 2>"$OUT/$t.log"; then
    echo "fuzz $t: CRASH — input in $crashes/"; status=1
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE' "$OUT/$t.log" || tail -n 5 "$OUT/$t.log"
done
exit $status
