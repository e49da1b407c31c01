#!/usr/bin/env bash
# The storm in instructions (valgrind --tool=callgrind): CALLERS tasks asking for one expired token
# (Benchmarks/StormCount: the first leads the refresh, the others follow), next to the bare single
# flight, CALLERS tasks awaiting one shared task that makes the same refresh call to the same emulator.
# A run with the same set-up and no callers is subtracted, so each figure is the work per caller
# (the storm's one refresh, load, lock, write and commit included, spread over its callers).
#
#   Scripts/callgrind-storm.sh [CALLERS]     (default 10000; builds it first, with the benchmarks)
#
# Valgrind runs one thread at a time, so this counts work, not waiting: wall clock on two cores
# moves by half between runs, the count does not. Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
callers="${1:-10000}"
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
build_log="$(mktemp)"
LINEAR_OAUTH_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --product StormCount >"$build_log" 2>&1 \
    || { cat "$build_log" >&2; rm -f "$build_log"; exit 1; }
rm -f "$build_log"
# valgrind cannot read the debug information Swift emits; totals do not need it.
binary="$(mktemp -d)/StormCount"
trap 'rm -rf "$(dirname "$binary")"' EXIT
objcopy --strip-debug "$(LINEAR_OAUTH_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --show-bin-path)/StormCount" "$binary"
count() {
    local out
    out="$(mktemp)"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" "$1" "$callers" >"$out" 2>&1 || { cat "$out" >&2; exit 1; }
    grep -q "^$1: $callers callers" "$out" || { cat "$out" >&2; exit 1; }
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out" | tail -1
    rm -f "$out"
}
none="$(count none)"
floor="$(count floor)"
storm="$(count storm)"
python3 - "$callers" "$none" "$floor" "$storm" <<'PY'
import sys
n, none, floor, storm = (int(x) for x in sys.argv[1:])
f, s = (floor - none) / n, (storm - none) / n
print(f"callers {n}; set-up {none:,} instructions")
print(f"bare single flight (tasks awaiting one shared task):  {f:,.0f} instructions a caller")
print(f"storm (accessToken(for:) of one expired token):       {s:,.0f} instructions a caller")
print(f"ratio: {s / f:.2f}x")
PY
