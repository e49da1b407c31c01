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
# moves by half between runs, the count by a few per cent (how many callers arrive after the
# refresh has finished, and so never wait, depends on the scheduling). Run it a few times.
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
source "$(dirname "$0")/callgrind-lib.sh"
callers="${1:-10000}"
callgrind_prepare StormCount
none="$(callgrind_count none "$callers" callers)"
floor="$(callgrind_count floor "$callers" callers)"
storm="$(callgrind_count storm "$callers" callers)"
python3 - "$callers" "$none" "$floor" "$storm" <<'PY'
import sys
n, none, floor, storm = (int(x) for x in sys.argv[1:])
f, s = (floor - none) / n, (storm - none) / n
print(f"callers {n}; set-up {none:,} instructions")
print(f"bare single flight (tasks awaiting one shared task):  {f:,.0f} instructions a caller")
print(f"storm (accessToken(for:) of one expired token):       {s:,.0f} instructions a caller")
print(f"ratio: {s / f:.2f}x")
PY
