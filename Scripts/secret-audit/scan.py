#!/usr/bin/env python3
"""Search everything a test run captured for every secret it used.

    scan.py AUDIT_DIR

AUDIT_DIR/secrets/*.txt   one secret per line, "KIND<TAB>VALUE" (written by the tests and the emulator)
AUDIT_DIR/logs/*          every log record of the test processes, all levels, with metadata
AUDIT_DIR/captured/*      HTTP answers, error messages, child-process output the tests saw
AUDIT_DIR/test-logs/*     each test's own log (what a failing test prints), child processes' standard error
AUDIT_DIR/swift-test.log  the test run's own output (test failures, failing tests' logs)

Each secret is searched as it is, percent-encoded, JSON-escaped, and (for encryption keys) as hex.
A hit prints the file, the line, the kind of secret and a fingerprint (never the secret) and makes
the exit status 1. The scan also fails when it has nothing to work with (no secrets, no logs), so a
broken capture cannot pass as a clean one.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

MIN_LENGTH = 8


def load_secrets(directory):
    secrets = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as handle:
            for line in handle:
                kind, _, value = line.rstrip("\n").partition("\t")
                if len(value) >= MIN_LENGTH:
                    secrets.setdefault(value, kind)
    return secrets


def variants(value, kind):
    forms = {value, urllib.parse.quote(value, safe=""), json.dumps(value)[1:-1], value.replace("/", "\\/")}
    if kind == "encryption-key":
        try:
            raw = base64.b64decode(value, validate=True)
            forms |= {raw.hex(), base64.urlsafe_b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")}
        except ValueError:
            pass
    return {form for form in forms if len(form) >= MIN_LENGTH}


def fingerprint(value):
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def main():
    if len(sys.argv) != 2:
        print("usage: scan.py AUDIT_DIR", file=sys.stderr)
        return 2
    root = sys.argv[1]
    secrets = load_secrets(os.path.join(root, "secrets"))
    corpus = []
    for sub in ("logs", "captured", "test-logs"):
        folder = os.path.join(root, sub)
        corpus += [os.path.join(folder, name) for name in sorted(os.listdir(folder))] if os.path.isdir(folder) else []
    test_log = os.path.join(root, "swift-test.log")
    if os.path.exists(test_log):
        corpus.append(test_log)
    sizes = {path: os.path.getsize(path) for path in corpus}
    log_records = 0
    for path in corpus:
        if os.sep + "logs" + os.sep in path:
            with open(path, "rb") as handle:
                log_records += sum(1 for _ in handle)
    kinds = {}
    for kind in secrets.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    problems = []
    if not secrets:
        problems.append("no secrets were recorded: the capture did not run")
    if log_records == 0:
        problems.append("no log records were captured")
    if not os.path.exists(test_log):
        problems.append("swift-test.log is missing")

    # grep -F with many patterns (Aho-Corasick) is fast; its matches are read here, never printed.
    owner = {}
    for value, kind in secrets.items():
        for form in variants(value, kind):
            owner.setdefault(form, (value, kind))
    hits = []
    if owner and corpus:
        with tempfile.NamedTemporaryFile("w", delete=False, encoding="utf-8") as patterns:
            patterns.write("\n".join(owner) + "\n")
        try:
            result = subprocess.run(
                ["grep", "-F", "-o", "-n", "-a", "-H", "-f", patterns.name, *corpus],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        finally:
            os.unlink(patterns.name)
        if result.returncode not in (0, 1):
            problems.append("grep failed: " + result.stderr.decode(errors="replace").strip())
        for line in result.stdout.decode("utf-8", errors="replace").splitlines():
            # path:line:match (paths have no colon here)
            path, _, rest = line.partition(":")
            number, _, match = rest.partition(":")
            value, kind = owner.get(match, (match, "?"))
            hits.append((os.path.relpath(path, root), number, kind, fingerprint(value)))

    for path, number, kind, print_ in sorted(set(hits)):
        print(f"LEAK {path}:{number}: a {kind} (sha256 {print_}...)")
    for problem in problems:
        print(f"PROBLEM {problem}")
    summary = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    print(f"secret-audit: secrets={len(secrets)} ({summary}); scanned {len(corpus)} files, "
          f"{sum(sizes.values())} bytes, {log_records} log records; leaks={len(set(hits))}")
    return 1 if hits or problems else 0


if __name__ == "__main__":
    sys.exit(main())
