#!/usr/bin/env bash
# The SQLite cold path in instructions (valgrind --tool=callgrind), next to a bare SQLiteNIO SELECT
# of the same row, counted in the same way: each path runs N times in a release executable
# (Benchmarks/ColdPathCount),
# and a run with no iterations is subtracted, so what is left is the path's own instructions.
#
#   Scripts/callgrind-cold-path.sh [N]     (default 2000; builds it first, with the benchmarks)
#
# Prints instructions per call of each path and their ratio, and where ours spends its extra: the
# store's load alone (`load`), the load and the access token's decryption (`open`), the rest being
# the token manager's (cache, single flight). Needs valgrind (apt-get install valgrind).
set -euo pipefail
source "$(dirname "$0")/callgrind-lib.sh"
iterations="${1:-2000}"
callgrind_prepare ColdPathCount
none="$(callgrind_count none "$iterations" iterations)"
bare="$(callgrind_count bare "$iterations" iterations)"
ours="$(callgrind_count ours "$iterations" iterations)"
load="$(callgrind_count load "$iterations" iterations)"
open="$(callgrind_count open "$iterations" iterations)"
python3 - "$iterations" "$none" "$bare" "$ours" "$load" "$open" <<'PY'
import sys
n, none, bare, ours, load, opened = (int(x) for x in sys.argv[1:])
b, o, l, p = (bare - none) / n, (ours - none) / n, (load - none) / n, (opened - none) / n
print(f"iterations {n}; set-up {none:,} instructions")
print(f"bare SELECT of the row:               {b:,.0f} instructions a call")
print(f"accessToken(for:), empty cache:       {o:,.0f} instructions a call")
print(f"ratio: {o / b:.2f}x (goal 1.2x)")
print(f"ours over the bare SELECT, {o - b:,.0f} instructions: the store's load and decoding {l - b:,.0f}, "
      f"decrypting the access token {p - l:,.0f}, the token manager {o - p:,.0f}")
PY
