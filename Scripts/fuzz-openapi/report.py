"""Helpers for Scripts/fuzz-openapi.sh, run with the fuzz venv's Python.

  report.py mask LOGFILE        copy stdin to stderr and LOGFILE with the API key masked
  report.py summarize DIR       print the failing cases and the summary line; exit 0 only when clean

The API key comes from LINEAR_OAUTH_FUZZ_API_KEY (never from the command line).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

KEY = os.environ.get("LINEAR_OAUTH_FUZZ_API_KEY", "")
MASK = "[Filtered]"
# Any Authorization header value that schemathesis did not already filter, in curl commands,
# `Name: value` lines, or Python/JSON reprs of header maps.
AUTH_PATTERNS = [
    re.compile(r"(?i)(authorization\s*+:\s*+)(?!\[Filtered\])[^'\"\r\n]*"),
    re.compile(r"(?i)(['\"]authorization['\"]\s*+:\s*+\[?\s*+['\"])(?!\[Filtered\])[^'\"]*"),
]
LIST_LIMIT = 50


def mask(text: str) -> str:
    if KEY:
        text = text.replace(KEY, MASK)
    for pattern in AUTH_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def cmd_mask(log_path: str) -> int:
    with open(log_path, "a", encoding="utf-8") as log:
        for line in sys.stdin:
            line = mask(line)
            sys.stderr.write(line)
            sys.stderr.flush()
            log.write(line)
    return 0


def scrub_files(directory: Path) -> None:
    """Mask the key in every report file (schemathesis sanitizes them already; this is a backstop)."""
    if not KEY:
        return
    needle = KEY.encode()
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if needle in data:
                path.write_bytes(data.replace(needle, MASK.encode()))


def read_ndjson(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if line:
                events.append(json.loads(line))
    return events


def target_of(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.path + ("?" + parts.query if parts.query else "")


def short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def case_templates(events: list[dict]) -> dict[str, str]:
    """Test case id -> the operation's path template, e.g. /v1/installations/{organization}."""
    templates: dict[str, str] = {}
    for event in events:
        recorder = (event.get("ScenarioFinished") or {}).get("recorder") or {}
        for case_id, case in (recorder.get("cases") or {}).items():
            path = ((case or {}).get("value") or {}).get("path")
            if path:
                templates[case_id] = path
    return templates


class Group:
    """Failing requests that share a check, method, path template and status; shows the shortest one."""

    def __init__(self) -> None:
        self.count = 0
        self.example = ""

    def add(self, target: str) -> None:
        self.count += 1
        if not self.example or len(target) < len(self.example):
            self.example = target

    def describe(self, method: str, template: str, status: object, noun: str) -> str:
        if self.count == 1 and self.example.split("?")[0] == template:
            return f"{method} {short(self.example)} -> {status}"
        return f"{method} {template} -> {status} ({self.count} {noun}, e.g. {method} {short(self.example)})"


def failing_cases(events: list[dict]) -> dict[tuple[str, str, str, str, str], Group]:
    """(code, title, method, path template, status) -> the failing requests, in order of discovery."""
    groups: dict[tuple[str, str, str, str, str], Group] = {}
    seen: set[tuple[str, str, str, str]] = set()
    for event in events:
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished.get("recorder") or {}
        interactions = recorder.get("interactions") or {}
        cases = recorder.get("cases") or {}
        for case_id, checks in (recorder.get("checks") or {}).items():
            for check in checks:
                if check.get("status") != "failure":
                    continue
                failure = (check.get("failure_info") or {}).get("failure") or {}
                interaction = interactions.get(case_id) or {}
                request = interaction.get("request") or {}
                response = interaction.get("response") or {}
                case = (cases.get(case_id) or {}).get("value") or {}
                method = request.get("method") or case.get("method") or "?"
                template = case.get("path") or "?"
                target = target_of(request["uri"]) if request.get("uri") else template
                status = str(response.get("status_code", "-"))
                code = failure.get("code", "?")
                # The same request is reported again by later scenarios of a run; count it once.
                if (code, method, target, status) in seen:
                    continue
                seen.add((code, method, target, status))
                key = (code, failure.get("title", check.get("name", "?")), method, template, status)
                groups.setdefault(key, Group()).add(target)
    return groups


def cmd_summarize(directory: str) -> int:
    root = Path(directory)
    scrub_files(root)
    report_path = root / "report.json"
    if not report_path.exists():
        print("fuzz-openapi: error: schemathesis wrote no JSON report (see schemathesis.log)", file=sys.stderr)
        return 3
    report = json.loads(report_path.read_text(encoding="utf-8"))
    # Every request that got an answer; attempts that never reached the service (refused
    # connections while waiting for the schema, timeouts, blocked origins) are reported apart.
    attempts = read_ndjson(root / "requests.ndjson")
    requests_log = [entry for entry in attempts if entry.get("status") is not None]
    events = read_ndjson(root / "events.ndjson")

    operations = report.get("operations") or {}
    total, tested = operations.get("total", 0), operations.get("tested", 0)
    test_cases = report.get("test_cases") or {}
    errors = report.get("errors") or []
    failures = int(test_cases.get("unique_failures", 0)) + len(errors)
    server_errors = [entry for entry in requests_log if (entry.get("status") or 0) >= 500]
    blocked = [entry for entry in attempts if entry.get("error") == "blocked"]
    unanswered = len(attempts) - len(requests_log)
    unauthenticated = sum(1 for entry in requests_log if entry.get("auth") != "key")

    problems: list[str] = []
    if not report.get("complete", False) or report.get("stop_reason") != "completed":
        problems.append(f"the run did not complete (stop_reason={report.get('stop_reason')})")
    elif total == 0:
        problems.append("the document has no operations")
    elif tested != total or operations.get("errored", 0) or operations.get("skipped", 0):
        problems.append(
            f"not every operation was tested: total={total} tested={tested} "
            f"errored={operations.get('errored', 0)} skipped={operations.get('skipped', 0)}"
        )
    if blocked:
        problems.append(f"{len(blocked)} request(s) outside the base URL were refused")

    out = sys.stdout
    # Server errors are listed from the wire (below), so schemathesis's ST101 is not listed twice.
    groups = [(key, group) for key, group in failing_cases(events).items() if key[0] != "ST101"]
    for (code, title, method, template, status), group in groups[:LIST_LIMIT]:
        print(mask(f"fuzz-openapi: FAIL {code} {title}: {group.describe(method, template, status, 'cases')}"), file=out)
    if len(groups) > LIST_LIMIT:
        print(f"fuzz-openapi: ... and {len(groups) - LIST_LIMIT} more kinds of failing cases (see the reports)", file=out)
    for error in errors:
        label = error.get("label") or error.get("operation")
        message = error.get("title") or error.get("message") or json.dumps(error)[:300]
        print(mask(f"fuzz-openapi: ERROR {label + ': ' if label else ''}{short(str(message), 300)}"), file=out)
    templates = case_templates(events)
    server_error_groups: dict[tuple[str, str, int], Group] = {}
    for entry in server_errors:
        template = templates.get(entry.get("case") or "") or entry["target"].split("?")[0]
        server_error_groups.setdefault((entry["method"], template, entry["status"]), Group()).add(entry["target"])
    for (method, template, status), group in list(server_error_groups.items())[:LIST_LIMIT]:
        print(mask(f"fuzz-openapi: SERVER ERROR {group.describe(method, template, status, 'requests')}"), file=out)
    if len(server_error_groups) > LIST_LIMIT:
        print(f"fuzz-openapi: ... and {len(server_error_groups) - LIST_LIMIT} more kinds of server errors", file=out)
    if server_errors:
        (root / "server-errors.json").write_text(mask(json.dumps(server_errors, indent=2)) + "\n", encoding="utf-8")
        print(f"fuzz-openapi: the 5xx requests and answers (bodies included): {root / 'server-errors.json'}", file=out)
    for problem in problems:
        print(f"fuzz-openapi: error: {problem}", file=out)
    if unanswered:
        print(f"fuzz-openapi: note: {unanswered} request attempts got no answer (not counted in requests=)", file=sys.stderr)
    print(
        f"fuzz-openapi: note: {unauthenticated} of {len(requests_log)} requests were sent without the API key "
        "on purpose (the missing and invalid API key cases of the auth checks)",
        file=sys.stderr,
    )
    print(
        f"fuzz-openapi: operations={tested} requests={len(requests_log)} "
        f"server_errors={len(server_errors)} failures={failures}",
        file=out,
    )
    if server_errors or failures or problems:
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "mask":
        return cmd_mask(argv[1])
    if len(argv) == 2 and argv[0] == "summarize":
        return cmd_summarize(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
