# Shared by the Scripts/callgrind-*.sh counters: builds a release executable of Benchmarks/ (with the
# benchmarks, in a build folder of their own), strips its debug information (valgrind cannot read
# what Swift emits; totals do not need it), and counts one run's instructions with callgrind.
#
#   source Scripts/callgrind-lib.sh; callgrind_prepare PRODUCT; callgrind_count MODE N WHAT [ARGUMENTS...]
#
# Sourcing it moves the caller to the package's folder, and `callgrind_prepare` sets the caller's
# EXIT trap (to remove the stripped copy).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

callgrind_prepare() {
    local product="$1" build_log
    build_log="$(mktemp)"
    LINEAR_OAUTH_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --product "$product" >"$build_log" 2>&1 \
        || { cat "$build_log" >&2; rm -f "$build_log"; exit 1; }
    rm -f "$build_log"
    callgrind_binary="$(mktemp -d)/$product"
    trap 'rm -rf "$(dirname "$callgrind_binary")"' EXIT
    objcopy --strip-debug "$(LINEAR_OAUTH_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --show-bin-path)/$product" "$callgrind_binary"
}

# Prints the instructions of one run of the prepared executable with MODE and N (and any further
# arguments after N); fails unless its output has the line "MODE: N <what>".
callgrind_count() {
    local mode="$1" n="$2" what="$3" out count
    shift 3
    out="$(mktemp)"
    if ! valgrind --tool=callgrind --callgrind-out-file=/dev/null "$callgrind_binary" "$mode" "$n" "$@" >"$out" 2>&1 \
        || ! grep -q "^$mode: $n $what" "$out"; then
        cat "$out" >&2
        rm -f "$out"
        exit 1
    fi
    count="$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out" | tail -1)"
    rm -f "$out"
    [ -n "$count" ] || { echo "callgrind printed no count for $mode" >&2; exit 1; }
    echo "$count"
}
