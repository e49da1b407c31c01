#!/usr/bin/env bash
# The token API against a bare route, out of process: wrk (a C load generator, apt-get install wrk)
# loads `linear-oauth serve`'s GET /v1/installations/{org}/access-token and a bare Hummingbird route
# at the same path answering as many bytes (Benchmarks/BareRoute, on the HTTP server serve runs), each its own
# process, alternately, ROUNDS times (which goes first alternates too), and prints each round's
# requests a second and their ratio, and the median ratio (goal: at least 0.9x).
#
#   Scripts/wrk-token-api.sh [ROUNDS] [SECONDS] [CONNECTIONS]     (default 6, 10 and 32)
#
# `ServiceBenchmarks` measures the same pair in one process, its AsyncHTTPClient load sharing the
# process and two cores with both servers; here the client is wrk's one thread and each server a
# release build of its own. serve runs on SQLite with one installation whose token is valid for a
# day (no refresh; nothing is sent to Linear, whose address is a closed port), as a service in
# front of the token cache answers most requests. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-6}" seconds="${2:-10}" connections="${3:-32}"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing: apt-get install curl" >&2; exit 1; }

build_log="$(mktemp)"
for product in linear-oauth BareRoute; do
    LINEAR_OAUTH_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --product "$product" >"$build_log" 2>&1 \
        || { cat "$build_log" >&2; rm -f "$build_log"; exit 1; }
done
rm -f "$build_log"
bin="$(LINEAR_OAUTH_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --show-bin-path)"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits up to 30 s for URL to answer 200 (with the API key).
wait_for() {
    local url="$1" deadline=$((SECONDS + 30))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer bench-key' "$url")" = 200 ]; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "no answer from $url within 30 s" >&2; cat "$work"/*.log >&2; exit 1; }
        sleep 0.1
    done
}

umask 077
"$bin/linear-oauth" keys generate >"$work/keys"
export LINEAR_OAUTH_ENCRYPTION_KEYS_FILE="$work/keys"
export DATABASE_URL="sqlite:$work/bench.sqlite"
expires="$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)"
echo "{\"organization_id\":\"org-acme\",\"app_user_id\":\"app-user-acme\",\"access_token\":\"lin_oauth_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')\",\"refresh_token\":\"lin_refresh_bench\",\"expires_at\":\"$expires\",\"scopes\":[\"read\",\"write\"]}" \
    | "$bin/linear-oauth" installations import >/dev/null

serve_port="$(free_port)"
LINEAR_OAUTH_API_KEYS=bench-key LINEAR_WEBHOOK_SECRET=bench LINEAR_CLIENT_ID=bench LINEAR_CLIENT_SECRET=bench \
    LINEAR_API_URL=http://127.0.0.1:9 LINEAR_OAUTH_LOG_LEVEL=warning \
    "$bin/linear-oauth" serve --host 127.0.0.1 --port "$serve_port" >"$work/serve.log" 2>&1 &
pids+=($!)
token_url="http://127.0.0.1:$serve_port/v1/installations/org-acme/access-token"
wait_for "$token_url"
bytes="$(curl -s -H 'Authorization: Bearer bench-key' "$token_url" | wc -c)"

bare_port="$(free_port)"
"$bin/BareRoute" "$bare_port" "$bytes" >"$work/bare.log" 2>&1 &
pids+=($!)
bare_url="http://127.0.0.1:$bare_port/v1/installations/org-acme/access-token"
wait_for "$bare_url"

# Requests a second of one wrk run against URL (after a 2 s warm-up run).
rate() {
    local url="$1" out
    wrk -t1 -c"$connections" -d2s -H 'Authorization: Bearer bench-key' "$url" >/dev/null
    out="$(wrk -t1 -c"$connections" -d"${seconds}s" -H 'Authorization: Bearer bench-key' "$url")"
    if grep -q "Non-2xx" <<<"$out"; then echo "$out" >&2; echo "answers other than 200 from $url" >&2; exit 1; fi
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out"
}

echo "token answer $bytes bytes; $rounds rounds of ${seconds} s each, $connections connections, wrk on one thread"
ratios=()
for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then bare="$(rate "$bare_url")"; ours="$(rate "$token_url")"
    else ours="$(rate "$token_url")"; bare="$(rate "$bare_url")"; fi
    ratio="$(python3 -c "print(f'{$ours / $bare:.2f}')")"
    ratios+=("$ratio")
    printf 'round %d: token route %.0f requests/s, bare route %.0f requests/s, ratio %sx\n' "$round" "$ours" "$bare" "$ratio"
done
python3 -c "import statistics, sys; r = sorted(float(x) for x in sys.argv[1:]); print(f'median ratio {statistics.median(r):.2f}x (rounds {r[0]:.2f}-{r[-1]:.2f}x; goal at least 0.9x)')" "${ratios[@]}"
