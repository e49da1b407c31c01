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
source "$(dirname "$0")/callgrind-lib.sh"
iterations="${1:-2000}"
callgrind_prepare ColdPathCount
none="$(callgrind_count none "$iterations" iterations)"
bare="$(callgrind_count bare "$iterations" iterations)"
ours="$(callgrind_count ours "$iterations" iterations)"
python3 - "$iterations" "$none" "$bare" "$ours" <<'PY'
import sys
n, none, bare, ours = (int(x) for x in sys.argv[1:])
b, o = (bare - none) / n, (ours - none) / n
print(f"iterations {n}; set-up {none:,} instructions")
print(f"bare SELECT of the row:               {b:,.0f} instructions a call")
print(f"accessToken(for:), empty cache:       {o:,.0f} instructions a call")
print(f"ratio: {o / b:.2f}x (goal 1.2x)")
PY
