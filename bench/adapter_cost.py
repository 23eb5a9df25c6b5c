"""Benchmark (not a test): does python-keycloak earn its place in the adapter?

What we use of it, what it costs to import and install, and the per-request overhead of its
connection against `requests` and Authlib's OAuth2Session (a requests.Session that fetches and
refreshes the token), on a loopback server answering like Keycloak's token and admin endpoints.

    python bench/adapter_cost.py [--requests 2000] [--imports 5]
    python bench/adapter_cost.py --uses-only    # what the tree still uses of python-keycloak

python-keycloak is no longer a dependency: to compare again, install it into a scratch virtualenv
beside the project (its figures are skipped when it is missing). The run that decided:
bench/results/adapter_cost-python-keycloak.out.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata as md
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "plugin" / "twostep", REPO / "sync"]


def uses() -> Counter[str]:
    """Names imported from `keycloak` and attributes called on a python-keycloak connection."""
    found: Counter[str] = Counter()
    conn_attrs = re.compile(r"_conn\.(\w+)")
    for root in SOURCES:
        for path in root.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "keycloak":
                    found.update(f"import {node.module}.{a.name}" for a in node.names)
            found.update(f"call {m}" for m in conn_attrs.findall(text))
    return found


def _installed(dist: str) -> bool:
    try:
        md.version(dist)
    except md.PackageNotFoundError:
        return False
    return True


def import_seconds(statement: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(out.stdout))
    return statistics.median(times)


def _name(req: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0].lower().replace("_", "-")


def closure(names: list[str]) -> set[str]:
    """Installed distributions needed by `names` (extras and markers of optional parts ignored)."""
    seen: set[str] = set()
    todo = [n.lower() for n in names]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        try:
            reqs = md.requires(n) or []
        except md.PackageNotFoundError:
            continue
        seen.add(n)
        todo += [_name(r) for r in reqs if "extra ==" not in r]
    return seen


class _Keycloak(BaseHTTPRequestHandler):
    """A token endpoint and one admin list endpoint, answering like Keycloak (JSON, keep-alive)."""

    protocol_version = "HTTP/1.1"
    # One write per answer, sent at once: a split write meets delayed ACKs (40 ms per request).
    wbufsize = 65536
    disable_nagle_algorithm = True

    def _send(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # the token endpoint
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send({"access_token": "t" * 900, "expires_in": 300, "refresh_expires_in": 1800,
                    "refresh_token": "r" * 600, "token_type": "Bearer"})

    def do_GET(self) -> None:
        self._send([{"id": "u1", "username": "alice", "attributes": {"a": ["b"]}}])

    def log_message(self, *args: Any) -> None:
        pass


def per_request_us(get: Callable[[], Any], n: int) -> float:
    for _ in range(50):
        get()
    t0 = time.perf_counter()
    for _ in range(n):
        get()
    return (time.perf_counter() - t0) / n * 1e6


def request_overhead(n: int) -> dict[str, float]:
    import requests
    from authlib.integrations.requests_client import OAuth2Session

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Keycloak)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    path = "admin/realms/r/users"
    out: dict[str, float] = {}
    try:
        if _installed("python-keycloak"):
            # Imported by name: an optional package this project does not depend on (no types for mypy).
            connection: Any = importlib.import_module("keycloak").KeycloakOpenIDConnection
            kc = connection(server_url=base, realm_name="r", client_id="c", client_secret_key="s",
                            grant_type="client_credentials", max_retries=0)
            kc.get_token()
            out["python-keycloak raw_get"] = per_request_us(lambda: kc.raw_get(path), n)
        oauth = OAuth2Session("c", "s", token_endpoint=f"{base}/realms/r/protocol/openid-connect/token",
                              grant_type="client_credentials")
        oauth.fetch_token()
        plain = requests.Session()
        plain.headers["Authorization"] = "Bearer " + "t" * 900
        out["authlib OAuth2Session.get"] = per_request_us(lambda: oauth.get(f"{base}/{path}", timeout=10), n)
        out["requests Session.get"] = per_request_us(lambda: plain.get(f"{base}/{path}", timeout=10), n)
        return out
    finally:
        server.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--imports", type=int, default=5)
    ap.add_argument("--uses-only", action="store_true")
    args = ap.parse_args()
    print("python-keycloak used by the tree:", dict(uses()) or "nothing")
    if args.uses_only:
        return
    base = ["requests", "pyotp", "jinja2", "click", "prometheus-client"]
    with_keycloak = _installed("python-keycloak")
    if with_keycloak:
        keycloak_only = sorted(closure(["python-keycloak"]) - closure(base))
        print(f"distributions python-keycloak adds over the other runtime deps: {len(keycloak_only)} {keycloak_only}")
    else:
        print("python-keycloak is not installed: its figures are skipped")
    authlib_only = sorted(closure(["authlib"]) - closure(base))
    print(f"distributions authlib adds over the other runtime deps: {len(authlib_only)} {authlib_only}")
    imports = [("authlib OAuth2Session", "from authlib.integrations.requests_client import OAuth2Session"),
               ("requests", "import requests")]
    if with_keycloak:
        imports.insert(0, ("keycloak (KeycloakOpenIDConnection)", "from keycloak import KeycloakOpenIDConnection"))
    for label, stmt in imports:
        print(f"import {label}: {import_seconds(stmt, args.imports) * 1000:.0f} ms (median of {args.imports})")
    for label, us in request_overhead(args.requests).items():
        print(f"{label}: {us:.0f} us per request (loopback, {args.requests} sequential GETs)")


if __name__ == "__main__":
    main()
