"""Scale figures for issue 7 (benchmarks, not tests). Loopback only; every part bounded in count and time.

    PYTHONPATH=. python bench/scale.py expiry  [--url URL]   # 10k vs 100k realm, 1,000 bypasses, vs naive
    PYTHONPATH=. python bench/scale.py enforce [--url URL]   # require_totp vs raw PUT at 1/4/8 concurrent
    PYTHONPATH=. python bench/scale.py login   [--url URL]   # twostep flow vs stock browser flow, 200 each
    PYTHONPATH=. python bench/scale.py memory  [--url URL] [--minutes 10]   # RSS of sync --watch and web,
                                                  # signed-in admin pages and security page included

Each prints a table and writes bench/results/<part>.json. Realms are named bench-*, and deleted at the
end unless --keep. The Keycloak is shared with other developers' tests: figures are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pyotp
import requests
from twostep import bypass
from twostep.actor import Actor
from twostep.audit import MemorySink
from twostep.clock import fixed_clock
from twostep.enforcement import require_totp
from twostep.keycloak_adapter import KeycloakClient, path_template
from twostep.lock import lease_seconds
from twostep.otp_credential import new_totp_secret, otp_credential_representation
from twostep.policy import BYPASS_ATTR, BYPASS_VALUE, utc_iso
from twostep.records import realm_context
from twostep.settings import Settings
from twostep.sync.reconcile import Options, run_once

from tests.support.login import LoginDriver

RESULTS = Path(__file__).parent / "results"
OPTS = Options(end_sessions=True, end_early=False, enforce=False, full=False)
BATCH = 2000


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def settings(url: str, realm: str) -> Settings:
    return Settings(url=url, realm=realm, admin_username="admin", admin_password="admin", timeout=300)


def env_for(url: str, realm: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWOSTEP_")}
    env.update({"TWOSTEP_URL": url, "TWOSTEP_ADMIN_USERNAME": "admin", "TWOSTEP_ADMIN_PASSWORD": "admin",
                "TWOSTEP_REALM": realm, "TWOSTEP_LOG_FORMAT": "json"})
    return env


def twostep(url: str, realm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twostep", *args], env=env_for(url, realm), check=True,
                          capture_output=True, text=True)


@contextmanager
def bench_realms(url: str, n: int, keep: bool, *setup_args: str) -> Iterator[list[str]]:
    master = KeycloakClient(settings(url, "master"), "master")
    names = ["bench-" + uuid.uuid4().hex[:8] for _ in range(n)]
    try:
        for name in names:
            master.request("POST", "", what="create realm", body={"realm": name, "enabled": True}, realm_level=False)
            if setup_args:
                twostep(url, name, "setup", "--no-service-client", *setup_args)
        yield names
    finally:
        if not keep:
            for name in names:
                try:
                    master.request("DELETE", f"/{name}", what="delete realm", realm_level=False)
                    log(f"deleted realm {name}")
                except Exception as exc:  # report and go on: the other realms must go too
                    log(f"could not delete {name}: {exc}")


def record(now: datetime, expired: bool) -> dict[str, list[str]]:
    """The fallback store's attributes of one bypass (seed's `bypassed` users)."""
    until = now - timedelta(minutes=5) if expired else now + timedelta(hours=4)
    return {BYPASS_ATTR: [BYPASS_VALUE], "twostep_bypass_until": [utc_iso(until)],
            "twostep_bypass_granted_at": [utc_iso(now - timedelta(hours=2))], "twostep_bypass_by": ["bench"],
            "twostep_bypass_reason": ["bench"], "twostep_bypass_extended": ["0"],
            "twostep_bypass_reset_device": ["false"]}


def seed(kc: KeycloakClient, n: int, bypassed: int, expired: int, now: datetime,
         extra: Callable[[int], dict[str, Any]] | None = None) -> list[str]:
    """Partial import in batches of 2,000; the first `bypassed` users carry a bypass, `expired` of them over."""
    expired_names = []
    t0 = time.monotonic()
    for start in range(0, n, BATCH):
        users = []
        for i in range(start, min(n, start + BATCH)):
            u: dict[str, Any] = {"username": f"u{i:06d}", "enabled": True, "email": f"u{i:06d}@bench.test",
                                 "firstName": "U", "lastName": f"{i}"}
            if i < bypassed:
                u["attributes"] = record(now, i < expired)
                if i < expired:
                    expired_names.append(u["username"])
            if extra:
                u.update(extra(i))
            users.append(u)
        kc.post("/partialImport", {"ifResourceExists": "SKIP", "users": users}, "partial import")
        if (start // BATCH) % 10 == 9:
            log(f"  {kc.realm}: {start + BATCH} users ({time.monotonic() - t0:.0f}s)")
    log(f"seeded {kc.realm}: {n} users ({bypassed} bypassed, {expired} expired) in {time.monotonic() - t0:.1f}s")
    return expired_names


def measure(kc: KeycloakClient, fn: Callable[[], Any]) -> tuple[float, int, Any]:
    kc.get_realm()  # signed in outside the measurement
    kc.calls.count = 0
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, kc.calls.count, out


# -- expiry ----------------------------------------------------------------------------------------

def request_log(kc: KeycloakClient) -> list[tuple[str, str]]:
    """Every admin request the client sends from now on, as (method, path template)."""
    seen: list[tuple[str, str]] = []
    original = kc._observe

    def observe(method: str, path: str, params: dict[str, Any] | None, status: int | None, seconds: float) -> None:
        seen.append((method, path_template(path)))
        original(method, path, params, status, seconds)

    kc._observe = observe  # type: ignore[method-assign]
    return seen


def breakdown(log_: list[tuple[str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for method, path in log_:
        out[f"{method} {path}"] = out.get(f"{method} {path}", 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def bypass_fields(now: datetime, expired: bool) -> dict[str, str]:
    until = now - timedelta(minutes=1) if expired else now + timedelta(hours=4)
    return {"marker": BYPASS_VALUE, "until": utc_iso(until), "granted_at": utc_iso(now - timedelta(hours=2)),
            "by": "bench", "reason": "bench", "extended": "0", "reset_device": "false"}


def write_bypasses(kc: KeycloakClient, store: Any, users: list[Any], now: datetime, expired: int) -> None:
    """Through the store's own write (credential, then index entry): what a grant does."""
    t0 = time.monotonic()
    for i, u in enumerate(users):
        store.write(kc, dict(u), bypass_fields(now, i < expired))
    log(f"{kc.realm}: {len(users)} bypass records written ({expired} due) in {time.monotonic() - t0:.0f}s")


def naive_scan(kc: KeycloakClient, records: bool = False) -> int:
    """Every user's full representation, page by page: what a pass without an index reads. The
    fallback mode finds its attributes in these pages; provider mode (`records`) must also read each
    user's credentials, where its record is. Returns the users read."""
    n = 0
    first = 0
    while True:
        batch = kc.get("/users", "list users", first=first, max=100, briefRepresentation="false")
        if not batch:
            break
        if records:
            for u in batch:
                kc.user_credentials(str(u["id"]))
        n += len(batch)
        first += 100
        if len(batch) < 100:
            break
    return n


@contextmanager
def reuse_realms(names: list[str]) -> Iterator[list[str]]:
    yield names


def part_expiry(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    given = [r for r in args.realms.split(",") if r]
    out: dict[str, Any] = {"bypassed": args.bypassed, "expired": args.expired, "mode": "provider (credential store, "
                           "expiry index)", "realms": {}}
    ctx = reuse_realms(given) if given else bench_realms(args.url, len(sizes), args.keep, "--enforce", "none")
    with ctx as names:
        for size, realm in zip(sizes, names, strict=True):
            kc = KeycloakClient(settings(args.url, realm))
            _policy, store = realm_context(kc)
            if store.name != "credential":
                sys.exit(f"{realm}: not in provider mode (record store {store.name}); load the provider JAR")
            if not given:
                seed(kc, size, 0, 0, datetime.now(UTC))
            users = kc.get("/users", "first users", first=0, max=args.bypassed, briefRepresentation="true")
            now = datetime.now(UTC)
            # --reuse-bypasses: the running ones of an earlier run stay; only the due ones are written again.
            write_bypasses(kc, store, users[: args.expired] if args.reuse_bypasses else users, now, args.expired)
            row: dict[str, Any] = {"users": kc.count_users(), "realm": realm}
            now = datetime.now(UTC)
            seen = request_log(kc)
            t, c, _ = measure(kc, partial(run_once, kc, now, MemorySink([]), "bench", 60, OPTS, dry_run=True))
            row["targeted_find"] = {"s": round(t, 3), "requests": c, "by_path": breakdown(seen)}
            seen.clear()
            t, c, (summary, _) = measure(
                kc, partial(run_once, kc, now, MemorySink([]), "bench", lease_seconds(kc.settings), OPTS))
            find_c = row["targeted_find"]["requests"]
            row["targeted_pass"] = {"s": round(t, 3), "requests": c, "expired": summary.expired,
                                    "errors": len(summary.errors), "by_path": breakdown(seen),
                                    "requests_per_expiry": round((c - find_c) / max(1, summary.expired), 2)}
            log(f"{size}: targeted find {row['targeted_find']['s']}s {find_c} req; pass {t:.2f}s {c} req, "
                f"expired {summary.expired}, {row['targeted_pass']['requests_per_expiry']} req per expiry")
            if args.parallel > 1:
                # The same 100 ends again (records rewritten), `parallel` at a time.
                write_bypasses(kc, store, users[: args.expired], datetime.now(UTC), args.expired)
                now = datetime.now(UTC)
                popts = replace(OPTS, workers=args.parallel)
                seen.clear()
                t, c, (summary, _) = measure(
                    kc, partial(run_once, kc, now, MemorySink([]), "bench", lease_seconds(kc.settings), popts))
                row["targeted_pass_parallel"] = {"s": round(t, 3), "requests": c, "expired": summary.expired,
                                                 "workers": args.parallel, "errors": len(summary.errors),
                                                 "by_path": breakdown(seen)}
                log(f"{size}: targeted pass, {args.parallel} at a time: {t:.2f}s {c} req, expired {summary.expired}")
            seen.clear()
            t, c, n = measure(kc, partial(naive_scan, kc, args.naive_records))
            row["naive_scan"] = {"s": round(t, 3), "requests": c, "users_read": n, "measured": "full scan",
                                 "reads": "pages and every user's credentials" if args.naive_records
                                 else "pages of full user representations"}
            writes_s = row["targeted_pass"]["s"] - row["targeted_find"]["s"]
            row["naive_pass"] = {"s": round(t + writes_s, 3), "requests": c + row["targeted_pass"]["requests"] - find_c,
                                 "note": "naive scan + the same 100 ends (targeted pass minus its find)"}
            row["ratio_scan_to_targeted_pass"] = round(t / row["targeted_pass"]["s"], 1)
            row["ratio_naive_pass_to_targeted_pass"] = round(row["naive_pass"]["s"] / row["targeted_pass"]["s"], 1)
            if "targeted_pass_parallel" in row:
                row["ratio_scan_to_parallel_pass"] = round(t / row["targeted_pass_parallel"]["s"], 1)
            log(f"{size}: naive scan {t:.2f}s {c} req ({n} users); scan / targeted pass "
                f"{row['ratio_scan_to_targeted_pass']}x")
            out["realms"][str(size)] = row
    print_expiry(out)
    return out


def print_expiry(out: dict[str, Any]) -> None:
    print(f"\nsync expiry pass ({out['mode']}): {out['bypassed']} bypassed users, {out['expired']} expired")
    print(f"{'users':>8} {'find s':>7} {'find req':>9} {'pass s':>7} {'pass req':>9} {'req/expiry':>11} "
          f"{'naive scan s':>13} {'scan req':>9} {'scan/pass':>10} {'naive pass/pass':>16}")
    for size, r in out["realms"].items():
        f, t, n = r["targeted_find"], r["targeted_pass"], r["naive_scan"]
        print(f"{size:>8} {f['s']:>7.2f} {f['requests']:>9} {t['s']:>7.2f} {t['requests']:>9} "
              f"{t['requests_per_expiry']:>11} {n['s']:>13.2f} {n['requests']:>9} "
              f"{r['ratio_scan_to_targeted_pass']:>9}x {r['ratio_naive_pass_to_targeted_pass']:>15}x")
        if "targeted_pass_parallel" in r:
            p = r["targeted_pass_parallel"]
            print(f"{'':>8} same ends {p['workers']} at a time: pass {p['s']:.2f} s, {p['requests']} req; "
                  f"scan / pass {r['ratio_scan_to_parallel_pass']}x")


# -- enforcement -----------------------------------------------------------------------------------

def part_enforce(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"users": args.users, "per_run": args.per_run, "max_s": args.max_s, "runs": []}
    with bench_realms(args.url, 1, args.keep, "--enforce", "none") as (realm,):
        kc = KeycloakClient(settings(args.url, realm))
        seed(kc, args.users, 0, 0, datetime.now(UTC))
        ids = [u["id"] for u in kc.iter_users(1000, briefRepresentation="true")]
        random.Random(7).shuffle(ids)
        local = threading.local()

        def client() -> KeycloakClient:
            if not hasattr(local, "kc"):
                local.kc = KeycloakClient(settings(args.url, realm))
            c: KeycloakClient = local.kc
            return c

        def ours(uid: str) -> None:
            require_totp(client(), uid)

        reps: dict[str, Any] = {}

        def raw(uid: str) -> None:
            client().update_user(uid, reps[uid])

        cursor = 0
        for conc in (1, 4, 8):
            for name, fn in (("require_totp", ours), ("raw_put", raw)):
                chunk = ids[cursor: cursor + args.per_run]
                cursor += args.per_run
                if name == "raw_put":  # fetched outside the clock: the raw rate is the write alone
                    for uid in chunk:
                        reps[uid] = kc.get_user(uid)
                deadline = time.monotonic() + args.max_s
                done = 0
                lock = threading.Lock()

                def work(uid: str, fn: Callable[[str], None] = fn, deadline: float = deadline,
                         lock: threading.Lock = lock) -> None:
                    nonlocal done
                    if time.monotonic() > deadline:
                        return
                    fn(uid)
                    with lock:
                        done += 1

                with ThreadPoolExecutor(conc) as pool:
                    list(pool.map(client_warm, [client] * conc))
                    t0 = time.perf_counter()
                    list(pool.map(work, chunk))
                    wall = time.perf_counter() - t0
                row = {"method": name, "concurrency": conc, "users": done, "s": round(wall, 2),
                       "users_per_s": round(done / wall, 1)}
                out["runs"].append(row)
                log(f"enforce {row}")
    print("\nbulk enforcement (users/s), same Keycloak, same concurrency")
    print(f"{'conc':>5} {'require_totp':>13} {'raw PUT':>9} {'ratio':>6}")
    for conc in (1, 4, 8):
        a = next(r for r in out["runs"] if r["concurrency"] == conc and r["method"] == "require_totp")
        b = next(r for r in out["runs"] if r["concurrency"] == conc and r["method"] == "raw_put")
        print(f"{conc:>5} {a['users_per_s']:>13} {b['users_per_s']:>9} {a['users_per_s'] / b['users_per_s']:>6.2f}")
    return out


def client_warm(factory: Callable[[], KeycloakClient]) -> None:
    factory().get_realm()


# -- login latency ---------------------------------------------------------------------------------

def part_login(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.login import REDIRECT_URI, TEST_CLIENT, LoginDriver

    n = args.logins
    password = "Bench-" + uuid.uuid4().hex[:10]
    secrets_ = [pyotp.random_base32() for _ in range(n)]

    def creds(i: int) -> dict[str, Any]:
        return {"credentials": [
            {"type": "password", "value": password, "temporary": False},
            {"type": "otp", "userLabel": "phone", "secretData": json.dumps({"value": secrets_[i]}),
             "credentialData": json.dumps({"subType": "totp", "digits": 6, "counter": 0, "period": 30,
                                           "algorithm": "HmacSHA1", "secretEncoding": "BASE32"})}],
            "emailVerified": True}

    out: dict[str, Any] = {"logins": n}
    with bench_realms(args.url, 2, args.keep) as (ours, stock):
        for realm in (ours, stock):
            kc = KeycloakClient(settings(args.url, realm))
            kc.post("/clients", {"clientId": TEST_CLIENT, "publicClient": True, "standardFlowEnabled": True,
                                 "redirectUris": [REDIRECT_URI]}, "test client")
        # With the provider (auto mode) the condition decides at each sign-in; backup codes offered, so
        # OTP users without codes are not sent to the codes page (the timing is password + OTP).
        twostep(args.url, ours, "setup", "--no-service-client", "--backup-codes", "offered")
        decided = json.loads(KeycloakClient(settings(args.url, ours)).get_realm()["attributes"]["twostep.policy"])
        out["decided_by"] = decided.get("decided_by")
        for realm in (ours, stock):
            seed(KeycloakClient(settings(args.url, realm)), n, 0, 0, datetime.now(UTC), creds)
        flows = {ours: [], stock: []}  # type: dict[str, list[float]]
        for i in range(n):  # interleaved, each user once per realm (a TOTP code is accepted once)
            for realm in ((ours, stock) if i % 2 == 0 else (stock, ours)):
                d = LoginDriver(args.url, realm)
                t0 = time.perf_counter()
                page = d.login(f"u{i:06d}", password)
                assert page.kind == "otp", (realm, page.summary())
                d.submit({"otp": pyotp.TOTP(secrets_[i]).now()})
                dt = time.perf_counter() - t0
                assert d.logged_in(), (realm, d.page.summary() if d.page else None)
                flows[realm].append(dt)
        for label, realm in (("twostep", ours), ("stock", stock)):
            xs = sorted(flows[realm])
            out[label] = {"median_ms": round(statistics.median(xs) * 1000, 1),
                          "p95_ms": round(xs[int(0.95 * (len(xs) - 1))] * 1000, 1), "n": len(xs)}
    out["ratio_median"] = round(out["twostep"]["median_ms"] / out["stock"]["median_ms"], 3)
    out["ratio_p95"] = round(out["twostep"]["p95_ms"] / out["stock"]["p95_ms"], 3)
    print(f"\nlogin latency (password + OTP, {n} logins each, interleaved; decided by {out['decided_by']})")
    print(f"{'flow':<9} {'median ms':>10} {'p95 ms':>8}")
    for label in ("twostep", "stock"):
        print(f"{label:<9} {out[label]['median_ms']:>10} {out[label]['p95_ms']:>8}")
    print(f"{'ratio':<9} {out['ratio_median']:>10} {out['ratio_p95']:>8}")
    return out


# -- memory ----------------------------------------------------------------------------------------

def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Person:
    """A bench user who signs in for real (password + TOTP through Keycloak's login pages)."""

    username: str
    password: str
    secret: str
    last_step: int = -1

    def code_ready(self) -> bool:
        """A TOTP code is accepted once (reuse off): a new sign-in waits for the next time step."""
        return int(time.time()) // 30 != self.last_step

    def code(self) -> str:
        while not self.code_ready():
            time.sleep(0.5)
        self.last_step = int(time.time()) // 30
        return pyotp.TOTP(self.secret).now()


def make_person(kc: KeycloakClient, name: str, admin: bool) -> Person:
    p = Person(name, "bench-pass-" + uuid.uuid4().hex[:8], new_totp_secret())
    uid = kc.created_id(kc.post("/users", {
        "username": name, "enabled": True, "email": f"{name}@bench.test", "firstName": "B", "lastName": name,
        "credentials": [{"type": "password", "value": p.password, "temporary": False},
                        otp_credential_representation(p.secret, "phone")]}, "bench person"))
    if admin:
        rm = kc.find_client("realm-management")
        assert rm is not None
        kc.add_user_client_roles(uid, rm["id"], [r for r in kc.client_roles(rm["id"]) if r["name"] == "realm-admin"])
    return p


def sign_in(kc_url: str, realm: str, web_url: str, person: Person, path: str) -> LoginDriver:
    d = LoginDriver(kc_url, realm, client_id="twostep-web")
    page = d.open_url(f"{web_url}/auth/login?next={path}")
    if page.kind != "login":
        raise RuntimeError(f"sign-in of {person.username}: no login page ({page.summary()})")
    page = d.submit({"username": person.username, "password": person.password})
    if page.kind == "otp":
        page = d.submit({"otp": person.code()})
    if not page.url.startswith(web_url) or page.status != 200:
        raise RuntimeError(f"sign-in of {person.username} did not reach {path}: {page.summary()}")
    return d


def part_memory(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"minutes_planned": args.minutes, "samples": []}
    with bench_realms(args.url, 1, args.keep) as (realm,):
        kc = KeycloakClient(settings(args.url, realm))
        web_port = free_port()
        web_url = f"http://127.0.0.1:{web_port}"
        secret_file = Path(f"/tmp/bench-web-secret-{uuid.uuid4().hex[:6]}")
        # Backup codes offered, not required: the bench people sign in with password + TOTP only.
        twostep(args.url, realm, "setup", "--no-service-client", "--web-url", web_url,
                "--web-secret-file", str(secret_file), "--backup-codes", "offered")
        seed(kc, args.users, 0, 0, datetime.now(UTC))
        boss = make_person(kc, "bench-admin", admin=True)
        alice = make_person(kc, "bench-user", admin=False)
        target = kc.find_users(username="u000042", exact="true")[0]["id"]
        metrics_port = free_port()
        env = env_for(args.url, realm)
        procs = {"sync_watch": subprocess.Popen(
            [sys.executable, "-m", "twostep", "sync", "--watch", "--max-sleep", "2",
             "--metrics-port", str(metrics_port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)}
        web_ok = True
        # The pages refuse the CLI's credentials: they act with their own client twostep-web.
        web_env = {k: v for k, v in env.items() if k not in ("TWOSTEP_ADMIN_USERNAME", "TWOSTEP_ADMIN_PASSWORD",
                                                             "TWOSTEP_CLIENT_ID", "TWOSTEP_CLIENT_SECRET")}
        web_metrics_port = free_port()
        try:
            procs["web"] = subprocess.Popen(
                [sys.executable, "-m", "twostep", "web", "--port", str(web_port), "--workers", "2",
                 "--client-secret-file", str(secret_file), "--metrics-port", str(web_metrics_port)],
                env=web_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            web_ok = False
        actor = Actor("bench@master", True, (("master", "bench"),))
        t_end = time.monotonic() + args.minutes * 60
        grants = scrapes = web_hits = signed_in_hits = sign_ins = page_errors = 0
        next_sample = time.monotonic()
        i = 0
        # Signed-in traffic: the admin pages with an admin's session, the security page with a
        # user's; both sign in again (a new session, a new token record) every --resign-s seconds.
        admin_pages = ["/admin", "/admin/users", "/admin/users?q=u0&page=2", f"/admin/users/{target}",
                       f"/admin/users/{target}/sessions", "/admin/audit"]
        drivers: dict[str, LoginDriver] = {}
        signed_at: dict[str, float] = {}
        try:
            time.sleep(3)
            for _wait in range(60):  # gunicorn's workers up
                try:
                    requests.get(f"{web_url}/healthz", timeout=2)
                    break
                except requests.RequestException:
                    time.sleep(1)
            while time.monotonic() < t_end:
                # a bypass that ends in ~2 s (granted by a clock 298 s in the past), on a rotating user
                who = f"u{i % args.users:06d}"
                i += 1
                until = datetime.now(UTC) + timedelta(seconds=2)
                try:
                    req = bypass.GrantRequest(who=who, reason="bench", duration=timedelta(seconds=bypass.MIN_BYPASS_S))
                    bypass.grant(kc, fixed_clock(until - timedelta(seconds=bypass.MIN_BYPASS_S)), MemorySink([]),
                                 actor, req)
                    grants += 1
                except Exception as exc:  # already bypassed (watch not done yet): skip, keep the loop going
                    log(f"grant {who}: {exc}")
                try:
                    requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
                    scrapes += 1
                except requests.RequestException:
                    pass
                if web_ok and procs["web"].poll() is None:
                    for base, path in ((web_port, "/healthz"), (web_metrics_port, "/metrics"), (web_port, "/")):
                        try:
                            requests.get(f"http://127.0.0.1:{base}{path}", timeout=5, allow_redirects=False)
                            web_hits += 1
                        except requests.RequestException:
                            pass
                if web_ok and procs["web"].poll() is None:
                    for who, person, paths in (("admin", boss, admin_pages), ("user", alice, ["/security"])):
                        due = who not in drivers or time.monotonic() - signed_at[who] > args.resign_s
                        if due and person.code_ready():
                            try:
                                drivers[who] = sign_in(args.url, realm, web_url, person, paths[0])
                                signed_at[who] = time.monotonic()
                                sign_ins += 1
                            except (RuntimeError, requests.RequestException) as exc:
                                page_errors += 1
                                log(f"sign-in: {exc}")
                                continue
                        if who not in drivers:
                            continue
                        for path in paths:
                            try:
                                r = drivers[who].s.get(web_url + path, timeout=30, allow_redirects=False)
                                if r.status_code == 200:
                                    signed_in_hits += 1
                                else:
                                    page_errors += 1
                                    log(f"{path}: HTTP {r.status_code}")
                            except requests.RequestException as exc:
                                page_errors += 1
                                log(f"{path}: {exc}")
                if time.monotonic() >= next_sample:
                    sample: dict[str, Any] = {"t_s": round(args.minutes * 60 - (t_end - time.monotonic())),
                                              "grants": grants, "signed_in_hits": signed_in_hits}
                    if procs["sync_watch"].poll() is None:
                        sample["sync_watch_kb"] = rss_kb(procs["sync_watch"].pid)
                    if web_ok and procs["web"].poll() is None:
                        pids = [procs["web"].pid, *children(procs["web"].pid)]
                        sample["web_kb"] = sum(rss_kb(p) for p in pids)
                        sample["web_processes"] = len(pids)
                    out["samples"].append(sample)
                    log(f"memory {sample}")
                    next_sample += args.sample_s
                time.sleep(args.pause_s)
            text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
            out["final_metrics"] = [ln for ln in text.splitlines()
                                    if ln.startswith(("twostep_bypass_expired_total", "twostep_bypass_active",
                                                      "twostep_sync_errors_total"))]
        finally:
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
            secret_file.unlink(missing_ok=True)
        out.update({"grants": grants, "scrapes": scrapes, "web_hits": web_hits, "signed_in_hits": signed_in_hits,
                    "sign_ins": sign_ins, "page_errors": page_errors, "web_started": web_ok,
                    "web_exit": procs["web"].returncode if "web" in procs else None})
    first, last = out["samples"][0], out["samples"][-1]
    print(f"\nRSS after {last['t_s']} s of traffic ({grants} grants/expiries, {scrapes} scrapes, {web_hits} "
          f"unauthenticated web hits, {signed_in_hits} signed-in page views, {sign_ins} sign-ins, "
          f"{page_errors} page errors)")
    half = [x for x in out["samples"] if x["t_s"] >= last["t_s"] / 2]
    for key in ("sync_watch_kb", "web_kb"):
        if key in last:
            slope = _slope([(x["t_s"], x[key]) for x in half if key in x])
            out[f"{key}_slope_kib_per_h_second_half"] = round(slope * 3600, 1)
            out[f"{key}_slope_kib_per_h_whole"] = round(_slope([(x["t_s"], x[key]) for x in out["samples"]
                                                                if key in x]) * 3600, 1)
            print(f"{key:<14} start {first.get(key, 0) / 1024:.1f} MiB  end {last[key] / 1024:.1f} MiB  "
                  f"max {max(s.get(key, 0) for s in out['samples']) / 1024:.1f} MiB  "
                  f"slope (second half) {slope * 3600 / 1024:+.2f} MiB/h")
    return out


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (units per second); 0 with fewer than two points."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(p[0] for p in points)
    my = statistics.fmean(p[1] for p in points)
    den = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / den if den else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["expiry", "enforce", "login", "memory"])
    ap.add_argument("--url", default="http://127.0.0.1:49091")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--bypassed", type=int, default=1000)
    ap.add_argument("--expired", type=int, default=100)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--per-run", type=int, default=1500)
    ap.add_argument("--max-s", type=float, default=60.0)
    ap.add_argument("--logins", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--sample-s", type=float, default=30.0)
    ap.add_argument("--pause-s", type=float, default=0.5)
    ap.add_argument("--resign-s", type=float, default=120.0, help="memory: sign in again this often")
    ap.add_argument("--pg-cluster", default="", help="expiry: also measure without the attribute index "
                    "in this production cluster's PostgreSQL (deploy/local/cluster.sh NAME)")
    ap.add_argument("--parallel", type=int, default=4, help="expiry: also a pass with this many ends at a "
                    "time (sync's Options.workers; 1: only the default sequential pass)")
    ap.add_argument("--reuse-bypasses", action="store_true", help="expiry: the realms hold the bypasses of an "
                    "earlier run; write only the due ones again")
    ap.add_argument("--naive-records", action="store_true", help="expiry: the naive scan also reads each "
                    "user's credentials (where provider mode keeps the record)")
    ap.add_argument("--realms", default="", help="expiry: realms already seeded (one per size, in order): "
                    "kept, not deleted")
    ap.add_argument("--tag", default="", help="results go to bench/results/<part><tag>.json")
    ap.add_argument("--note", default="shared Keycloak 26.7.3 (dev mode, H2) on a 2-core machine; other "
                    "developers' tests ran against it at the same time")
    args = ap.parse_args()
    if args.part == "memory" and args.users == 10_000:
        args.users = 200
    url = args.url.rstrip("/")
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        sys.exit("loopback only")
    args.url = url
    started = datetime.now(UTC)
    parts = {"expiry": part_expiry, "enforce": part_enforce, "login": part_login, "memory": part_memory}
    result = parts[args.part](args)
    result.update({"started": utc_iso(started), "finished": utc_iso(datetime.now(UTC)), "cores": os.cpu_count(),
                   "note": args.note})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.part}{args.tag}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
