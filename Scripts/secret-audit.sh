#!/usr/bin/env bash
# The secrets check: runs the whole test suite (`swift test`, the README's test command; extra
# arguments are passed on) with every secret the tests make recorded, and every log record (all
# levels), HTTP answer, error message and child-process output captured, then searches all of it
# and the run's own output for every secret (Scripts/secret-audit/scan.py). Exit status: the tests'
# if they failed, else 1 if a secret was found (or nothing was captured), else 0.
#
#   Scripts/secret-audit.sh [swift test arguments]
#   LINEAR_OAUTH_SECRET_AUDIT_DIR  where the capture goes (default .build/secret-audit, emptied first)
set -uo pipefail
cd "$(dirname "$0")/.."

directory="${LINEAR_OAUTH_SECRET_AUDIT_DIR:-.build/secret-audit}"
rm -rf "$directory"
mkdir -p "$directory/secrets" "$directory/logs" "$directory/captured"
LINEAR_OAUTH_SECRET_AUDIT="$(cd "$directory" && pwd)"
export LINEAR_OAUTH_SECRET_AUDIT

swift test "$@" 2>&1 | tee "$LINEAR_OAUTH_SECRET_AUDIT/swift-test.log"
tests=${PIPESTATUS[0]}

python3 Scripts/secret-audit/scan.py "$LINEAR_OAUTH_SECRET_AUDIT"
scan=$?

if [ "$tests" -ne 0 ]; then
    echo "secret-audit: the tests failed (exit $tests)" >&2
    exit "$tests"
fi
exit "$scan"
