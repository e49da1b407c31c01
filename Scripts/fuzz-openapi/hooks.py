"""Schemathesis hooks for Scripts/fuzz-openapi.sh (loaded through `hooks = ...` in the generated config).

Every HTTP request schemathesis makes goes through `requests.adapters.HTTPAdapter.send` (the schema
download, the capability probes, the test cases and the checks' own probes). Wrapping it here:

- refuses any request whose origin is not the base URL (redirects are not followed either, but this
  makes "only the given base URL" a guarantee rather than a setting);
- appends one JSON line per request to LINEAR_OAUTH_FUZZ_REQUEST_LOG: method, path and query,
  status, and whether the Authorization header carried the API key, never a header value. For a 5xx
  the start of the request and response bodies is kept too, to reproduce it.

The counts in the summary line are read from that log and from schemathesis's JSON report.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from urllib.parse import urlsplit

import requests.adapters
import requests.exceptions

_LOG_PATH = os.environ["LINEAR_OAUTH_FUZZ_REQUEST_LOG"]
_BASE_URL = os.environ["LINEAR_OAUTH_FUZZ_BASE_URL"]
_EXPECTED_AUTHORIZATION = "Bearer " + os.environ["LINEAR_OAUTH_FUZZ_API_KEY"]
_BODY_LIMIT = 4096
_DEFAULT_PORTS = {"http": 80, "https": 443}
_lock = threading.Lock()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


_BASE_ORIGIN = _origin(_BASE_URL)


def _text(body: object) -> str | None:
    if body is None:
        return None
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    if not isinstance(body, (bytes, bytearray)):
        return f"<{type(body).__name__} body>"
    return bytes(body[:_BODY_LIMIT]).decode("utf-8", "backslashreplace")


def _auth_kind(request: requests.PreparedRequest) -> str:
    value = request.headers.get("Authorization")
    if value is None:
        return "none"
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return "key" if hmac.compare_digest(value.encode(), _EXPECTED_AUTHORIZATION.encode()) else "other"


def _write(entry: dict) -> None:
    line = json.dumps(entry, ensure_ascii=True)
    with _lock, open(_LOG_PATH, "a", encoding="utf-8") as log:
        log.write(line + "\n")


def _install() -> None:
    adapter = requests.adapters.HTTPAdapter
    if getattr(adapter, "_fuzz_openapi_wrapped", False):
        return
    original_send = adapter.send

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        parts = urlsplit(request.url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        entry = {
            "method": request.method,
            "target": target,
            "auth": _auth_kind(request),
            "case": request.headers.get("X-Schemathesis-TestCaseId"),
        }
        if _origin(request.url) != _BASE_ORIGIN:
            scheme, host, port = _origin(request.url)
            entry.update(status=None, error="blocked", origin=f"{scheme}://{host}:{port}")
            _write(entry)
            raise requests.exceptions.InvalidURL(
                f"fuzz-openapi: refused a request outside the base URL ({scheme}://{host}:{port})"
            )
        try:
            response = original_send(self, request, *args, **kwargs)
        except Exception as exc:
            entry.update(status=None, error=type(exc).__name__)
            _write(entry)
            raise
        entry["status"] = response.status_code
        if response.status_code >= 500:
            entry["request_body"] = _text(request.body)
            try:
                entry["response_body"] = _text(response.content)
            except Exception as exc:  # a broken body is part of the finding
                entry["response_body"] = f"<unreadable: {type(exc).__name__}>"
        _write(entry)
        return response

    adapter.send = send
    adapter._fuzz_openapi_wrapped = True


_install()
