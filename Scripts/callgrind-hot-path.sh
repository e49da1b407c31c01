#!/usr/bin/env bash
# The cached path in instructions (valgrind --tool=callgrind), over many keys, next to a bare
# lock-protected dictionary read of the same tokens, counted in the same way: each path reads every
# one of KEYS cached tokens ROUNDS times in a release executable (Benchmarks/HotPathCount), always
# the least recently used one (the cache's recency list moves an entry from its back to its front on
# each hit), and a run with no reads is subtracted, so what is left is a hit's own instructions.
#
#   Scripts/callgrind-hot-path.sh [KEYS] [ROUNDS]     (default 10000 and 5; builds it first, with the benchmarks)
#
# Prints instructions per hit of each path and their ratio (goal: within 2x). Needs valgrind
# (apt-get install valgrind).
set -euo pipefail
source "$(dirname "$0")/callgrind-lib.sh"
keys="${1:-10000}"
rounds="${2:-5}"
callgrind_prepare HotPathCount
hits=$((keys * rounds))
none="$(callgrind_count none "$keys" "keys, $rounds rounds" "$rounds")"
bare="$(callgrind_count bare "$keys" "keys, $rounds rounds" "$rounds")"
ours="$(callgrind_count ours "$keys" "keys, $rounds rounds" "$rounds")"
python3 - "$hits" "$keys" "$none" "$bare" "$ours" <<'PY'
import sys
n, keys, none, bare, ours = (int(x) for x in sys.argv[1:])
b, o = (bare - none) / n, (ours - none) / n
print(f"{n:,} hits over {keys:,} cached tokens; set-up {none:,} instructions")
print(f"bare lock-protected dictionary read:  {b:,.0f} instructions a hit")
print(f"accessToken(for:), cached:            {o:,.0f} instructions a hit")
print(f"ratio: {o / b:.2f}x (goal 2x)")
PY
