#!/usr/bin/env bash
# The token API's request in instructions (valgrind --tool=callgrind), next to a bare route answering
# as many bytes on the same HTTP server: REQUESTS sequential keep-alive GETs of each in a release
# executable (Benchmarks/ServeCount: serve's router, Prometheus and refresh-ahead, one cached
# installation on SQLite), less a run with none. The client's instructions are in both figures; the
# difference is the token route's own work. Repeatable where wall clock (ServiceBenchmarks,
# Scripts/wrk-token-api.sh) is not.
#
#   Scripts/callgrind-token-api.sh [REQUESTS]     (default 2000; builds it first, with the benchmarks)
#
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
source "$(dirname "$0")/callgrind-lib.sh"
requests="${1:-2000}"
callgrind_prepare ServeCount
none="$(callgrind_count none "$requests" requests)"
bare="$(callgrind_count bare "$requests" requests)"
ours="$(callgrind_count ours "$requests" requests)"
python3 - "$requests" "$none" "$bare" "$ours" <<'PY'
import sys
n, none, bare, ours = (int(x) for x in sys.argv[1:])
b, o = (bare - none) / n, (ours - none) / n
print(f"requests {n}; set-up {none:,} instructions")
print(f"bare route, client and server:          {b:,.0f} instructions a request")
print(f"token route, client and server:         {o:,.0f} instructions a request")
print(f"the token route's own work:             {o - b:,.0f} instructions a request")
PY
