"""Benchmark (not a test): the admin pages on a large realm, this tree side by side with an older one.

The overview, the users list (a search that matches many users, and the first page) and one user's
page, `--requests` each, sequential, from one signed-in admin per app; p50/p95 latency and Keycloak
calls per page (the app's X-Keycloak-Calls header, counted by the adapter). With `--before REF`
the same pages of the app as it was at git commit REF (exported with `git archive`) are measured in
the same run, against the same realm, request by request interleaved (before, after, after,
before, ...), so the ratio is not a comparison of two moments of a shared machine. Loopback only.

    python bench/web_pages.py --url http://127.0.0.1:49091 [--users 10000] [--requests 200] [--before REF]
        [--pages overview,users-search,users-first,user,export] [--export-requests 3] [--tag -10k]

`export` is /admin/export/not-enrolled.csv (issue 25: streamed, a page of 100 users and one
credentials read per user); after the pages, `twostep report not-enrolled --csv` runs once as a
child process: its time, rows and peak memory (ru_maxrss of the child).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pyotp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import seed
from twostep.keycloak_adapter import KeycloakClient
from twostep.otp_credential import new_totp_secret, otp_credential_representation
from twostep.policy import utc_iso
from twostep.settings import Settings

from tests.support.login import LoginDriver

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
# One web app in its own process, importing `twostep` from the tree on its PYTHONPATH.
SERVE = """
import sys
from werkzeug.serving import make_server
from twostep.settings import Settings
from twostep.web.app import create_app
from twostep.web.auth import WebConfig
url, realm, port, secret, tokens, audit = sys.argv[1:7]
app = create_app(Settings(url=url, realm=realm, audit_file=audit),
                 WebConfig(public_url="http://127.0.0.1:" + port, client_secret=secret, token_dir=tokens))
make_server("127.0.0.1", int(port), app, threaded=True).serve_forever()
"""

# `twostep report not-enrolled --csv` in a child that prints its own peak RSS (KiB) last on stderr.
REPORT = """
import resource, sys
from twostep.cli.main import main
try:
    main(["report", "not-enrolled", "--csv"])
finally:
    sys.stderr.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) + "\\n")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def export_tree(ref: str, dest: Path) -> Path:
    """plugin/ of commit `ref`, unpacked under dest (no worktree, nothing checked out here)."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "plugin"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "plugin"


def make_admin(kc: KeycloakClient, name: str) -> tuple[str, str]:
    secret = new_totp_secret()
    uid = kc.created_id(kc.post("/users", {
        "username": name, "enabled": True, "email": f"{name}@bench.test", "firstName": "B",
        "lastName": "A", "credentials": [{"type": "password", "value": "bench-pass", "temporary": False},
                                         otp_credential_representation(secret, "phone")]}, "admin"))
    rm = kc.find_client("realm-management")
    assert rm is not None
    kc.add_user_client_roles(uid, rm["id"], [r for r in kc.client_roles(rm["id"]) if r["name"] == "realm-admin"])
    return name, secret


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:49091")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--overview-requests", type=int, default=20,
                    help="the old overview scans up to 500 users per view: fewer requests for it")
    ap.add_argument("--before", default="", help="git commit whose app is measured side by side")
    ap.add_argument("--pages", default="overview,users-search,users-first,user")
    ap.add_argument("--export-requests", type=int, default=3, help="requests of the CSV export (a full walk each)")
    ap.add_argument("--sync", action="store_true", help="run one `twostep sync` pass first (overview summary)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--pg-cluster", default="", help="seed the users by SQL into this deploy/local/cluster.sh "
                    "cluster's PostgreSQL (bench/expiry_task.py, seed_sql) instead of a partial import")
    ap.add_argument("--realm", default="", help="reuse this bench realm (set up and seeded by an earlier run "
                    "that did not finish); deleted at the end like a new one")
    args = ap.parse_args()
    if not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        sys.exit("loopback only")
    realm = args.realm or "benchweb-" + uuid.uuid4().hex[:8]
    settings = Settings(url=args.url, realm=realm, admin_username="admin", admin_password="admin", timeout=300)
    master = KeycloakClient(settings, "master")
    if not args.realm:
        master.request("POST", "", what="create realm", body={"realm": realm, "enabled": True}, realm_level=False)
    tmp = Path(tempfile.mkdtemp())
    trees = {"after": ROOT / "plugin"}
    if args.before:
        trees = {"before": export_tree(args.before, tmp / "before"), **trees}
    ports = {name: free_port() for name in trees}
    env = {"TWOSTEP_URL": args.url, "TWOSTEP_ADMIN_USERNAME": "admin", "TWOSTEP_ADMIN_PASSWORD": "admin",
           "TWOSTEP_REALM": realm, "PATH": "/usr/bin:/bin"}
    procs: list[subprocess.Popen[bytes]] = []
    out: dict[str, object] = {"users": args.users, "requests": args.requests, "before": args.before,
                              "started": utc_iso(datetime.now(UTC)), "keycloak": args.url, "pages": {}}
    try:
        first_url = f"http://127.0.0.1:{next(iter(ports.values()))}"
        # (again on a reused realm: it prints the web client's secret to the file only when it makes
        # the client, so the secret is read from Keycloak below)
        subprocess.run([sys.executable, "-m", "twostep", "setup", "--no-service-client", "--enforce", "all",
                        "--backup-codes", "offered", "--web-url", first_url, "--web-secret-file", str(tmp / "secret")],
                       env=env, check=True, capture_output=True)
        kc = KeycloakClient(settings)
        web = kc.find_client("twostep-web")
        assert web is not None
        # Every app of the run signs in through the same client: each one's callback is allowed.
        urls = [f"http://127.0.0.1:{p}" for p in ports.values()]
        web["redirectUris"] = [u + "/auth/callback" for u in urls]
        web["webOrigins"] = urls
        web.setdefault("attributes", {})["post.logout.redirect.uris"] = "##".join(u + "/" for u in urls)
        kc.put(f"/clients/{web['id']}", web, "web client redirect URIs")
        if args.realm:
            args.users = kc.count_users()
            out["users"] = args.users
        else:
            t0 = time.monotonic()
            if args.pg_cluster:
                from expiry_task import Pg, seed_sql
                seed_sql(Pg(args.pg_cluster), kc, args.users)
                out["seed"] = "sql"
            else:
                seed(kc, args.users, 100, 0, datetime.now(UTC))
            out["seed_s"] = round(time.monotonic() - t0, 1)
        admins = {name: make_admin(kc, f"bench-admin-{name}") for name in trees}
        target = kc.find_users(username="u000042", exact="true")[0]["id"]
        if args.sync:
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "twostep", "sync"], env={**env, "PYTHONPATH": str(ROOT / "plugin")},
                           check=True, capture_output=True)
            out["sync_pass_s"] = round(time.monotonic() - t0, 1)
        secret = kc.client_secret(web["id"])
        drivers = {}
        for name, tree in trees.items():
            port = ports[name]
            procs.append(subprocess.Popen(
                [sys.executable, "-c", SERVE, args.url, realm, str(port), secret, str(tmp / f"tokens-{name}"),
                 str(tmp / "audit.jsonl")], env={**os.environ, "PYTHONPATH": str(tree)}))
            web_url = f"http://127.0.0.1:{port}"
            for _ in range(60):
                try:
                    LoginDriver(args.url, realm).s.get(web_url + "/healthz", timeout=2)
                    break
                except Exception:  # not listening yet
                    time.sleep(0.5)
            user, totp = admins[name]
            d = LoginDriver(args.url, realm, client_id="twostep-web")
            d.open_url(f"{web_url}/auth/login?next=/admin/users")
            d.submit({"username": user, "password": "bench-pass"})
            page = d.submit({"otp": pyotp.TOTP(totp).now()})
            assert page.url.startswith(web_url), page.summary()
            drivers[name] = (d, web_url)
        all_pages = {"overview": ("overview", "/admin"),
                     "users-search": ("users list (search 'u0', page 3)", "/admin/users?q=u0&page=3"),
                     "users-first": ("users list (first page)", "/admin/users"),
                     "user": ("one user", f"/admin/users/{target}"),
                     "export": ("CSV export (not enrolled)", "/admin/export/not-enrolled.csv")}
        rows = []
        for key in args.pages.split(","):
            label, path = all_pages[key]
            times: dict[str, list[float]] = {n: [] for n in trees}
            calls: dict[str, set[str]] = {n: set() for n in trees}
            order = list(trees)
            n = {"overview": args.overview_requests, "export": args.export_requests}.get(key, args.requests)
            for i in range(n):
                for name in (order if i % 2 == 0 else list(reversed(order))):
                    d, web_url = drivers[name]
                    t0 = time.perf_counter()
                    r = d.s.get(web_url + path, allow_redirects=False, timeout=600)
                    times[name].append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, (name, path, r.status_code)
                    calls[name].add(r.headers.get("X-Keycloak-Calls") or "?")
            for name in trees:
                row = {"page": label, "app": name, "n": n, "p50_ms": round(statistics.median(times[name]), 1),
                       "p95_ms": round(pct(times[name], 95), 1), "calls": sorted(calls[name], key=int)}
                rows.append(row)
        out["pages"] = rows
        # Peak memory of each app's process (VmHWM), after every page including the export.
        out["web_peak_rss_mib"] = {name: round(int(next(line.split()[1] for line in Path(f"/proc/{p.pid}/status")
                                                        .read_text().splitlines() if line.startswith("VmHWM:")))
                                               / 1024, 1) for name, p in zip(trees, procs, strict=True)}
        print(f"web app peak RSS: {out['web_peak_rss_mib']}")
        if "export" in args.pages.split(","):
            t0 = time.monotonic()
            rep = subprocess.run([sys.executable, "-c", REPORT], env={**env, "PYTHONPATH": str(ROOT / "plugin")},
                                 check=True, capture_output=True)
            peak_kib = int(rep.stderr.decode().strip().splitlines()[-1])
            out["report_cli"] = {"s": round(time.monotonic() - t0, 1), "rows": rep.stdout.count(b"\n") - 1,
                                 "peak_rss_mib": round(peak_kib / 1024, 1)}
            print(f"twostep report not-enrolled --csv: {out['report_cli']}")
        print(f"\nadmin pages on a {args.users}-user realm, {args.requests} sequential requests each, interleaved "
              f"(Keycloak {args.url}; before = {args.before or '-'})")
        print(f"{'page':36} {'app':7} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'Keycloak calls':>15}")
        for row in rows:
            print(f"{row['page']:36} {row['app']:7} {row['n']:4} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} "
                  f"{','.join(row['calls']):>15}")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=20)
        master.request("DELETE", f"/{realm}", what="delete realm", realm_level=False)
        out["finished"] = utc_iso(datetime.now(UTC))
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"web_pages{args.tag}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
