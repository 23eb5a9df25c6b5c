"""Benchmark (not a test): the admin pages on a 10,000-user realm.

The users list page (a search that matches many users) and one user's page, 200 requests each,
sequential, from one signed-in admin; p50/p95 latency and Keycloak calls per page (the app's
X-Keycloak-Calls header, counted by the adapter). Loopback only.

    python bench/web_pages.py --url http://127.0.0.1:49091 [--users 10000] [--requests 200]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyotp
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import seed
from twostep.keycloak_adapter import KeycloakClient
from twostep.otp_credential import new_totp_secret, otp_credential_representation
from twostep.settings import Settings
from twostep.web.app import WebConfig, create_app

from tests.support.login import LoginDriver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:49091")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    realm = "benchweb-" + uuid.uuid4().hex[:8]
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    settings = Settings(url=args.url, realm=realm, admin_username="admin", admin_password="admin", timeout=120)
    master = KeycloakClient(settings, "master")
    master.request("POST", "", what="create realm", body={"realm": realm, "enabled": True}, realm_level=False)
    tmp = Path(tempfile.mkdtemp())
    env = {"TWOSTEP_URL": args.url, "TWOSTEP_ADMIN_USERNAME": "admin", "TWOSTEP_ADMIN_PASSWORD": "admin",
           "TWOSTEP_REALM": realm, "PATH": "/usr/bin:/bin"}
    try:
        subprocess.run([sys.executable, "-m", "twostep", "setup", "--no-service-client", "--enforce", "none",
                        "--web-url", web_url, "--web-secret-file", str(tmp / "secret")],
                       env=env, check=True, capture_output=True)
        kc = KeycloakClient(settings)
        seed(kc, args.users, 100, 0, datetime.now(UTC))
        secret = new_totp_secret()
        uid = kc.created_id(kc.post("/users", {
            "username": "bench-admin", "enabled": True, "email": "bench-admin@bench.test", "firstName": "B",
            "lastName": "A", "credentials": [{"type": "password", "value": "bench-pass", "temporary": False},
                                             otp_credential_representation(secret, "phone")]}, "admin"))
        rm = kc.find_client("realm-management")
        assert rm is not None
        kc.add_user_client_roles(uid, rm["id"], [r for r in kc.client_roles(rm["id"]) if r["name"] == "realm-admin"])
        target = kc.find_users(username="u000042", exact="true")[0]["id"]

        app = create_app(Settings(url=args.url, realm=realm, audit_file=str(tmp / "audit.jsonl")),
                         WebConfig(public_url=web_url, client_secret=(tmp / "secret").read_text().strip(),
                                   token_dir=str(tmp / "tokens")))
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        d = LoginDriver(args.url, realm, client_id="twostep-web")
        d.open_url(f"{web_url}/auth/login?next=/admin/users")
        d.submit({"username": "bench-admin", "password": "bench-pass"})
        d.submit({"otp": pyotp.TOTP(secret).now()})
        rows = []
        for name, path in (("users list (search 'u0', page 3)", "/admin/users?q=u0&page=3"),
                           ("users list (first page)", "/admin/users"),
                           ("one user", f"/admin/users/{target}")):
            times, calls = [], set()
            for _ in range(args.requests):
                t0 = time.perf_counter()
                r = d.s.get(web_url + path, allow_redirects=False, timeout=60)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (path, r.status_code)
                calls.add(r.headers.get("X-Keycloak-Calls"))
            rows.append((name, statistics.median(times), pct(times, 95), ",".join(sorted(c or "?" for c in calls))))
        server.shutdown()
        print(f"\nadmin pages on a {args.users}-user realm, {args.requests} sequential requests each "
              f"(Keycloak {args.url}, 2 cores shared with Keycloak)")
        print(f"{'page':38} {'p50 ms':>8} {'p95 ms':>8} {'Keycloak calls':>15}")
        for name, p50, p95, calls_s in rows:
            print(f"{name:38} {p50:8.1f} {p95:8.1f} {calls_s:>15}")
    finally:
        master.request("DELETE", f"/{realm}", what="delete realm", realm_level=False)


if __name__ == "__main__":
    main()
