"""Benchmark (not a test): the sync expiry pass on a 10,000-user realm with 100 bypasses, 50 expired.

Compares, in the same run and on the same data:
  targeted  the sync's own pass: one attribute query (q=twostep_bypass:true, paginated) + the expiries;
  naive     scan every user's full representation page by page, then the same expiries.
Reports wall time and HTTP requests (KeycloakClient.calls), and the ratio.

    python bench/sync_expiry.py --url http://127.0.0.1:49091 [--users 10000] [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import reexpire, seed  # one seeding path for every benchmark
from twostep.audit import MemorySink
from twostep.bypass import lease_seconds, read_record
from twostep.keycloak_adapter import KeycloakClient
from twostep.settings import Settings
from twostep.sync.reconcile import Options, State, Summary, apply, plan, run_once

OPTS = Options(end_sessions=True, end_early=False, enforce=False, full=False)


def naive_pass(kc: KeycloakClient, now: datetime) -> Summary:
    bypassed = [
        u for u in kc.iter_users(100, briefRepresentation="false") if read_record(u).marker is not None
    ]
    state = State(kc.realm, run_policy(kc), True, bypassed=bypassed)
    summary = Summary(run_id=uuid.uuid4().hex[:12])
    return apply(
        kc, plan(state, now, OPTS), now, MemorySink([]), "bench-naive", lease_seconds(kc.settings), summary
    )


def run_policy(kc: KeycloakClient) -> Any:
    from twostep.policy import RealmPolicy

    return RealmPolicy.effective(kc.get_realm().get("attributes") or {})[0]


def measure(kc: KeycloakClient, fn: Any) -> tuple[float, int, Summary]:
    kc.calls.count = 0
    t0 = time.monotonic()
    summary = fn()
    return time.monotonic() - t0, kc.calls.count, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:49091")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    realm = "bench-" + uuid.uuid4().hex[:8]
    settings = Settings(
        url=args.url, realm=realm, admin_username="admin", admin_password="admin", timeout=120
    )
    master = KeycloakClient(settings, "master")
    master.request("POST", "", what="create realm", body={"realm": realm, "enabled": True}, realm_level=False)
    env = {
        "TWOSTEP_URL": args.url,
        "TWOSTEP_ADMIN_USERNAME": "admin",
        "TWOSTEP_ADMIN_PASSWORD": "admin",
        "TWOSTEP_REALM": realm,
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(
        [sys.executable, "-m", "twostep", "setup", "--no-service-client", "--enforce", "none"],
        env=env,
        check=True,
        capture_output=True,
    )
    try:
        kc = KeycloakClient(settings)
        now = datetime.now(UTC)
        names = seed(kc, args.users, 100, 50, now)
        kc.get_realm()  # sign in outside the measurement
        t_time, t_calls, t_sum = measure(
            kc, lambda: run_once(kc, now, MemorySink([]), "bench", lease_seconds(settings), OPTS)[0]
        )
        reexpire(kc, names, now)
        n_time, n_calls, n_sum = measure(kc, lambda: naive_pass(kc, now))
        print(f"\nsync expiry pass, {args.users} users, 100 bypassed, 50 expired (Keycloak at {args.url})")
        print(f"{'pass':<10}{'expired':>9}{'wall s':>10}{'HTTP req':>10}")
        print(f"{'targeted':<10}{t_sum.expired:>9}{t_time:>10.2f}{t_calls:>10}")
        print(f"{'naive':<10}{n_sum.expired:>9}{n_time:>10.2f}{n_calls:>10}")
        print(f"ratio naive/targeted: wall {n_time / t_time:.1f}x, requests {n_calls / t_calls:.1f}x")
        if t_sum.errors or n_sum.errors or t_sum.handled_elsewhere or n_sum.handled_elsewhere:
            print(
                "errors/busy:",
                t_sum.errors[:3],
                n_sum.errors[:3],
                t_sum.handled_elsewhere,
                n_sum.handled_elsewhere,
            )
    finally:
        if not args.keep:
            master.request("DELETE", f"/{realm}", what="delete realm", realm_level=False)


if __name__ == "__main__":
    main()
