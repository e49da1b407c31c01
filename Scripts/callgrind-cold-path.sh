#!/usr/bin/env bash
# The SQLite cold path in instructions (valgrind --tool=callgrind), next to a bare SQLiteNIO SELECT
# of the same row, counted in the same way: each path runs N times in a release executable
# (Benchmarks/ColdPathCount),
# and a run with no iterations is subtracted, so what is left is the path's own instructions.
#
#   Scripts/callgrind-cold-path.sh [N]     (default 2000; builds it first, with the benchmarks)
#
# Prints instructions per call of each path and their ratio. Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-2000}"
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
# Built with the benchmarks, in a build folder of their own (the tests' release flags differ).
build_log="$(mktemp)"
LINEAR_OAUTH_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --product ColdPathCount >"$build_log" 2>&1 \
    || { cat "$build_log" >&2; rm -f "$build_log"; exit 1; }
rm -f "$build_log"
# valgrind cannot read the debug information Swift emits; totals do not need it.
binary="$(mktemp -d)/ColdPathCount"
trap 'rm -rf "$(dirname "$binary")"' EXIT
objcopy --strip-debug "$(LINEAR_OAUTH_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --show-bin-path)/ColdPathCount" "$binary"
count() {
    local out
    out="$(mktemp)"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" "$1" "$iterations" >"$out" 2>&1 || { cat "$out" >&2; exit 1; }
    grep -q "^$1: $iterations iterations" "$out" || { cat "$out" >&2; exit 1; }
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out" | tail -1
    rm -f "$out"
}
none="$(count none)"
bare="$(count bare)"
ours="$(count ours)"
python3 - "$iterations" "$none" "$bare" "$ours" <<'PY'
import sys
n, none, bare, ours = (int(x) for x in sys.argv[1:])
b, o = (bare - none) / n, (ours - none) / n
print(f"iterations {n}; set-up {none:,} instructions")
print(f"bare SELECT of the row:               {b:,.0f} instructions a call")
print(f"accessToken(for:), empty cache:       {o:,.0f} instructions a call")
print(f"ratio: {o / b:.2f}x (goal 1.2x)")
PY
