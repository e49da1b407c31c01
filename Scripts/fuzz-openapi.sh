#!/usr/bin/env bash
# Fuzz every operation of a running linear-oauth service from its own OpenAPI document
# (GET BASE/openapi.json) with schemathesis.
#
#   Scripts/fuzz-openapi.sh --setup
#       Create the venv (${LINEAR_OAUTH_FUZZ_VENV:-<repo>/.build/fuzz-venv}) and install the pinned
#       schemathesis into it, unless it is already there. Quiet when nothing is to do.
#
#   Scripts/fuzz-openapi.sh --base-url http://127.0.0.1:PORT --api-key KEY
#                           [--max-examples N] [--seed S] [--report-dir DIR] [--checks LIST]
#                           [--organization ID]...
#       Set up if needed, then fuzz. Every request carries `Authorization: Bearer KEY`, except the
#       cases schemathesis sends without or with a wrong key on purpose (the auth checks). Requests
#       go to the base URL only, which must be a loopback address; redirects are not followed.
#       --max-examples  test cases per operation in the fuzzing phase (default 100)
#       --seed          the run is reproducible with the same seed, service state and venv (default 1)
#       --report-dir    keep the reports there (JUnit, HAR, JSON, NDJSON events, the request log,
#                       schemathesis's output); default: a temporary directory, removed afterwards
#       --checks        schemathesis checks, comma-separated (default: $DEFAULT_CHECKS below; `all`
#                       adds unsupported_method and object_level_authorization)
#       --organization  an installed organization id (repeatable): about half of the generated
#                       {organization} values are taken from these, so the /v1 operations also run
#                       on a real installation instead of only answering 404. DELETE revokes it.
#       The API key may also come from LINEAR_OAUTH_FUZZ_API_KEY instead of --api-key (keeps it out
#       of the process list). It is never printed: schemathesis's output and reports are masked.
#
#   Output: schemathesis's own output goes to standard error. Standard output gets one line per
#   failing case (FAIL code title: METHOD path -> status; SERVER ERROR METHOD path -> status) and
#   ends with exactly one line:
#       fuzz-openapi: operations=<n> requests=<n> server_errors=<n> failures=<n>
#   requests counts every HTTP request the service answered (test cases, the checks' own probes, the
#   schema download and schemathesis's two capability probes: each logged on the wire by
#   fuzz-openapi/hooks.py); server_errors the 5xx answers among them; failures schemathesis's unique
#   failures (one per operation and kind of failure, from its JSON report) plus its errors.
#   Exit status: 0 when server_errors=0 and failures=0 and every operation was tested; 1 when not;
#   2 usage error; 3 setup failed or schemathesis produced no report.
#
#   Environment: LINEAR_OAUTH_FUZZ_VENV (venv path), LINEAR_OAUTH_FUZZ_PYTHON (python for the venv,
#   default python3), LINEAR_OAUTH_FUZZ_TIMEOUT (seconds for the whole run, default 900),
#   LINEAR_OAUTH_FUZZ_REQUEST_TIMEOUT (seconds for one request, default 30).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
# Everything schemathesis 4.32.5 pulls in, pinned too: hypothesis's version decides which data a
# seed generates, so an unpinned dependency would make runs with the same seed differ over time.
requirements() {
    cat <<EOF
schemathesis==$SCHEMATHESIS_VERSION
anyio==4.16.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
graphql-core==3.3.2
harfile==0.6.0
hypothesis==6.170.17
hypothesis-graphql==0.13.5
idna==3.20
iniconfig==2.3.1
jsonschema_rs==0.60.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
packaging==26.4
pluggy==1.7.0
Pygments==2.21.0
pyrate-limiter==4.5.1
pytest==9.2.0
PyYAML==6.0.4
requests==2.34.2
rich==15.0.0
sortedcontainers==2.4.0
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9
EOF
}

# Every check that the service passes as it is. Left out: unsupported_method (the router answers
# 404, not 405, to a method a path does not have) and object_level_authorization (needs two
# identities). positive_data_acceptance also accepts 400 from GET /oauth/callback (see the config).
DEFAULT_CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,positive_data_acceptance,missing_required_header,ignored_auth,allow_header_conformance,use_after_free,ensure_resource_availability

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
SUPPORT_DIR="$SCRIPT_DIR/fuzz-openapi"
VENV=${LINEAR_OAUTH_FUZZ_VENV:-$REPO_ROOT/.build/fuzz-venv}
PYTHON=${LINEAR_OAUTH_FUZZ_PYTHON:-python3}
RUN_TIMEOUT=${LINEAR_OAUTH_FUZZ_TIMEOUT:-900}
REQUEST_TIMEOUT=${LINEAR_OAUTH_FUZZ_REQUEST_TIMEOUT:-30}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
}

die() {
    echo "fuzz-openapi: error: $1" >&2
    exit "${2:-2}"
}

# The installed set is recorded in the venv; a different pin list means install again.
requirements_stamp() {
    { requirements; "$VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null; } | sha256sum | cut -d' ' -f1
}

is_set_up() {
    [[ -x "$VENV/bin/python" && -x "$VENV/bin/schemathesis" && -f "$VENV/.fuzz-openapi-stamp" ]] || return 1
    [[ "$(cat "$VENV/.fuzz-openapi-stamp")" == "$(requirements_stamp)" ]] || return 1
    "$VENV/bin/python" - "$SCHEMATHESIS_VERSION" <<'EOF' 2>/dev/null
import importlib.metadata, sys
sys.exit(importlib.metadata.version("schemathesis") != sys.argv[1])
EOF
}

setup() {
    if is_set_up; then
        return 0
    fi
    mkdir -p "$(dirname "$VENV")"
    # Two callers setting up at once (parallel tests) take turns.
    exec 9>"$VENV.lock"
    flock 9
    if ! is_set_up; then
        echo "fuzz-openapi: installing schemathesis==$SCHEMATHESIS_VERSION into $VENV" >&2
        if [[ ! -x "$VENV/bin/python" ]]; then
            "$PYTHON" -m venv "$VENV" >&2 || die "could not create the venv with $PYTHON -m venv" 3
        fi
        rm -f "$VENV/.fuzz-openapi-stamp"
        local requirements_file
        requirements_file=$(mktemp)
        requirements >"$requirements_file"
        if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install --quiet \
            --requirement "$requirements_file" >&2; then
            rm -f "$requirements_file"
            die "pip could not install schemathesis==$SCHEMATHESIS_VERSION" 3
        fi
        rm -f "$requirements_file"
        requirements_stamp >"$VENV/.fuzz-openapi-stamp"
        is_set_up || die "schemathesis==$SCHEMATHESIS_VERSION is not usable in $VENV after installing it" 3
    fi
    exec 9>&-
}

# Only loopback targets: this is a load-generating tool.
check_base_url() {
    "$PYTHON" - "$1" <<'EOF' || die "--base-url must be http(s)://HOST:PORT on a loopback address (127.0.0.0/8, localhost, [::1]), without a path: $1"
import ipaddress, sys
from urllib.parse import urlsplit
parts = urlsplit(sys.argv[1])
host = parts.hostname or ""
try:
    parts.port
    loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
except ValueError:
    loopback = False
sys.exit(0 if parts.scheme in ("http", "https") and loopback and parts.path in ("", "/")
         and not parts.query and not parts.fragment and not parts.username else 1)
EOF
}

do_setup=false
base_url=""
api_key=${LINEAR_OAUTH_FUZZ_API_KEY:-}
max_examples=100
seed=1
report_dir=""
checks=$DEFAULT_CHECKS
organizations=()
while (($#)); do
    case "$1" in
        --setup) do_setup=true; shift ;;
        --base-url) (($# >= 2)) || usage; base_url=$2; shift 2 ;;
        --api-key) (($# >= 2)) || usage; api_key=$2; shift 2 ;;
        --max-examples) (($# >= 2)) || usage; max_examples=$2; shift 2 ;;
        --seed) (($# >= 2)) || usage; seed=$2; shift 2 ;;
        --report-dir) (($# >= 2)) || usage; report_dir=$2; shift 2 ;;
        --checks) (($# >= 2)) || usage; checks=$2; shift 2 ;;
        --organization) (($# >= 2)) || usage; organizations+=("$2"); shift 2 ;;
        -h | --help) usage ;;
        *) echo "fuzz-openapi: unknown argument: $1" >&2; usage ;;
    esac
done

if $do_setup && [[ -z "$base_url" ]]; then
    setup
    exit 0
fi

[[ -n "$base_url" ]] || usage
[[ -n "$api_key" ]] || die "--api-key (or LINEAR_OAUTH_FUZZ_API_KEY) is required"
[[ "$api_key" != *[[:cntrl:]]* ]] || die "the API key contains control characters"
[[ "$max_examples" =~ ^[1-9][0-9]*$ ]] || die "--max-examples must be a positive integer"
[[ "$seed" =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer"
[[ "$checks" =~ ^[a-z_,]+$ ]] || die "--checks must be a comma-separated list of check names"
base_url=${base_url%/}
check_base_url "$base_url"

setup

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-openapi.XXXXXX")
keep_reports=true
if [[ -z "$report_dir" ]]; then
    report_dir="$work_dir/reports"
    keep_reports=false
fi
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    rm -rf "$work_dir"
}
trap cleanup EXIT
mkdir -p "$report_dir"
report_dir=$(cd "$report_dir" && pwd)
# A report directory given twice must not mix two runs.
rm -f "$report_dir"/{junit.xml,har.json,report.json,events.ndjson,requests.ndjson,schemathesis.log,server-errors.json}

# The key reaches schemathesis through the environment (config placeholder), not its command line.
# shellcheck disable=SC2016 # Python code, and `${` is schemathesis's placeholder syntax
hooks_path_toml=$("$PYTHON" -c 'import json, sys; print(json.dumps(sys.argv[1]).replace("${", "$${"))' "$SUPPORT_DIR/hooks.py")
cat >"$work_dir/schemathesis.toml" <<EOF
hooks = $hooks_path_toml
workers = 1
max-redirects = 0
continue-on-failure = true
request-timeout = $REQUEST_TIMEOUT
wait-for-schema = $REQUEST_TIMEOUT

[headers]
Authorization = "Bearer \${LINEAR_OAUTH_FUZZ_API_KEY}"

[generation]
database = "none"

[output.sanitization]
enabled = true

# The callback's parameters are each optional in the document (an error-only callback is valid), but
# a callback without state or code is answered 400, which the document declares. Valid input that
# gets that documented 400 is not a bug, so this check accepts 400 here.
[[operations]]
include-path = "/oauth/callback"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
EOF
if ((${#organizations[@]})); then
    "$PYTHON" - "${organizations[@]}" >>"$work_dir/schemathesis.toml" <<'EOF'
import json, sys
# A JSON string is a valid TOML basic string.
print("\n[dictionaries.organizations]")
print("values = [" + ", ".join(json.dumps(value) for value in sys.argv[1:]) + "]")
print("\n[parameters]")
print('organization = { dictionary = "organizations", probability = 0.5 }')
EOF
fi

# Nothing from the caller's environment steers schemathesis but this script.
while IFS= read -r name; do
    unset "$name"
done < <(compgen -e | grep -E '^(SCHEMATHESIS_|HYPOTHESIS_)' || true)

export LINEAR_OAUTH_FUZZ_API_KEY=$api_key
export PYTHONDONTWRITEBYTECODE=1
export LINEAR_OAUTH_FUZZ_BASE_URL=$base_url
export LINEAR_OAUTH_FUZZ_REQUEST_LOG="$report_dir/requests.ndjson"
: >"$LINEAR_OAUTH_FUZZ_REQUEST_LOG"

cd "$work_dir"
set +e
timeout --kill-after=10 "$RUN_TIMEOUT" "$VENV/bin/schemathesis" --config-file "$work_dir/schemathesis.toml" --no-color \
    run "$base_url/openapi.json" \
    --url "$base_url" \
    --checks "$checks" \
    --seed "$seed" \
    --max-examples "$max_examples" \
    --report junit,har,json,ndjson \
    --report-junit-path "$report_dir/junit.xml" \
    --report-har-path "$report_dir/har.json" \
    --report-json-path "$report_dir/report.json" \
    --report-ndjson-path "$report_dir/events.ndjson" \
    2>&1 | "$VENV/bin/python" -u "$SUPPORT_DIR/report.py" mask "$report_dir/schemathesis.log"
statuses=("${PIPESTATUS[@]}")
set -e
if ((statuses[0] == 124 || statuses[0] == 137)); then
    echo "fuzz-openapi: error: schemathesis did not finish within ${RUN_TIMEOUT}s" >&2
fi

set +e
"$VENV/bin/python" "$SUPPORT_DIR/report.py" summarize "$report_dir"
result=$?
set -e
if $keep_reports; then
    echo "fuzz-openapi: reports in $report_dir" >&2
fi
# schemathesis itself failing without failures in its report (a crash, a timeout) fails the run too.
if ((result == 0 && statuses[0] != 0)); then
    echo "fuzz-openapi: error: schemathesis exited with status ${statuses[0]}" >&2
    result=1
fi
exit "$result"
