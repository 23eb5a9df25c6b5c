"""Benchmark (not a test), issue 23: the provider's expiry task vs the sync pass doing the same work
over HTTP, 1,000 bypasses ending in the same minute on a 100,000-user realm on PostgreSQL, in one run.

    TWOSTEP_PROVIDER_JAR=plugin/keycloak/target/keycloak-twostep-0.2.0.jar CLUSTER_NODES=1 \\
      bash deploy/local/cluster.sh start expbench                     # prints the node URL
    PYTHONPATH=. python bench/expiry_task.py --url NODE --pg-cluster expbench [--users 100000] [--bypasses 1000]

Steps: a realm under `twostep setup` (provider mode, admin events on); its users inserted by SQL
(`seed_sql`: the rows Keycloak's JPA store writes for a user made without credentials); then
 1. idle: the task running with nothing due, `--idle-s` seconds (the baseline of statements a second);
 2. task: 1,000 records (written as `bypass grant` writes them) ending in one minute; the task ends them;
    until all are gone, its heartbeat (`twostep.expiry_task`: duration and ends per run) is polled;
 3. sync: the task switched off for the realm (`setup --expiry-task off`), the same 1,000 records
    written again ending in one minute, and once all are due one sync pass (`run_once`, what
    `twostep sync` runs) ends them over HTTP.
Database statements are counted from PostgreSQL's own log (`log_statement=all`, switched on by
`ALTER SYSTEM` + `pg_reload_conf()` for each measured window only) and `pg_stat_database` (commits,
rows); the idle rate times the window's length is subtracted from the task's window.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import OPTS, bench_realms, breakdown, log, request_log, settings, twostep
from twostep import bypass_index
from twostep.audit import MemorySink
from twostep.keycloak_adapter import KeycloakClient
from twostep.lock import lease_seconds
from twostep.policy import BYPASS_VALUE, utc_iso
from twostep.records import realm_context
from twostep.sync.reconcile import run_once

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
HEARTBEAT = "twostep.expiry_task"


class Pg:
    """PostgreSQL of a deploy/local/cluster.sh cluster: psql through `cluster.sh psql`, its log file."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        cache = Path.home() / ".cache" / "keycloak-twostep" / "clusters" / cluster
        self.logfile = cache / "pg" / "postgres.log"

    def sql(self, query: str) -> str:
        out = subprocess.run(["bash", str(ROOT / "deploy/local/cluster.sh"), "psql", self.cluster, "-tAc", query],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()}")
        return out.stdout.strip()

    def log_all(self, on: bool) -> None:
        self.sql(f"alter system set log_statement = '{'all' if on else 'none'}'")
        self.sql("select pg_reload_conf()")
        time.sleep(1)  # the reload reaches every backend at its next command

    def counters(self) -> dict[str, int]:
        row = self.sql("select xact_commit, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted "
                       "from pg_stat_database where datname = 'keycloak'")
        names = ["xact_commit", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted"]
        return dict(zip(names, (int(v) for v in row.split("|")), strict=True))


STMT = re.compile(r"LOG:  (?:execute [^:]*|statement): (.*)")


def statements(pg: Pg, offset: int) -> dict[str, Any]:
    """Statements in PostgreSQL's log from byte `offset` on (only Keycloak's connections log: the
    psql calls of this script run `alter system`/`select`, counted apart)."""
    with pg.logfile.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    kinds: dict[str, int] = {}
    total = 0
    for m in STMT.finditer(text):
        sql = m.group(1).strip()
        if "pg_stat_database" in sql or "pg_reload_conf" in sql or sql.startswith("alter system"):
            continue
        words = sql.split()
        verb = words[0].upper() if words else "?"
        if verb in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            table = re.search(r"(?:from|into|update)\s+(\w+)", sql, re.I)
            key = f"{verb} {table.group(1).lower() if table else '?'}"
        else:
            key = verb
        kinds[key] = kinds.get(key, 0) + 1
        total += 1
    data = sum(v for k, v in kinds.items() if k.split()[0] in ("SELECT", "INSERT", "UPDATE", "DELETE"))
    return {"all": total, "data": data, "by_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1]))}


def seed_sql(pg: Pg, kc: KeycloakClient, n: int) -> float:
    """`n` users as SQL rows: user_entity and the realm's default-roles mapping, what Keycloak's JPA
    store writes for a user created without credentials or attributes. A partial import of 100,000
    users took 890-973 s on this machine (docs/performance.md); this takes seconds."""
    rep = kc.get_realm()
    realm_id, role_id = rep["id"], rep["defaultRole"]["id"]
    t0 = time.monotonic()
    pg.sql(f"""insert into user_entity (id, email, email_constraint, email_verified, enabled, first_name,
        last_name, realm_id, username, created_timestamp, not_before)
        select gen_random_uuid()::text, e, e, true, true, 'U', i::text, '{realm_id}', u,
               (extract(epoch from now()) * 1000)::bigint, 0
        from (select i, 'u' || lpad(i::text, 6, '0') as u, 'u' || lpad(i::text, 6, '0') || '@bench.test' as e
              from generate_series(0, {n - 1}) i) s""")
    pg.sql(f"""insert into user_role_mapping (role_id, user_id)
        select '{role_id}', id from user_entity where realm_id = '{realm_id}'
        on conflict do nothing""")
    pg.sql("analyze user_entity; analyze user_role_mapping")
    return time.monotonic() - t0


def fields(granted: datetime, until: datetime) -> dict[str, str]:
    return {"marker": BYPASS_VALUE, "until": utc_iso(until), "granted_at": utc_iso(granted), "by": "bench",
            "reason": "bench", "extended": "0", "reset_device": "false"}


def write_records(url: str, realm: str, users: list[dict[str, Any]], minute: datetime, workers: int) -> float:
    """One record per user (the store's own write: credential, then index entry), ending spread over
    the minute `minute` (one every 60/len(users) s)."""
    t0 = time.monotonic()
    step = 60.0 / len(users)
    granted = datetime.now(UTC).replace(microsecond=0)

    def one(chunk: list[tuple[int, dict[str, Any]]]) -> None:
        kc = KeycloakClient(settings(url, realm))
        _policy, store = realm_context(kc)
        for i, u in chunk:
            store.write(kc, dict(u), fields(granted, minute + timedelta(seconds=int(i * step))))

    items = list(enumerate(users))
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, [items[k::workers] for k in range(workers)]))
    return time.monotonic() - t0


def next_minute(after_s: float) -> datetime:
    t = datetime.now(UTC) + timedelta(seconds=after_s + 60)
    return t.replace(second=0, microsecond=0)


def wait_until(t: datetime) -> None:
    while (left := (t - datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(min(left, 1.0))


def heartbeat(kc: KeycloakClient) -> dict[str, Any]:
    groups = kc.get("/groups", "index root", search="twostep-bypass", exact="true", briefRepresentation="false")
    for g in groups:
        if g["name"] == "twostep-bypass":
            value = (g.get("attributes") or {}).get(HEARTBEAT)
            return dict(json.loads(value[0])) if value else {}
    return {}


def left(kc: KeycloakClient, users: list[dict[str, Any]]) -> int:
    return sum(1 for u in users if bypass_index.of_user(kc, str(u["id"])))


def window(pg: Pg, fn: Callable[[], Any]) -> tuple[float, dict[str, Any], dict[str, int], Any]:
    """Runs fn with statement logging on: seconds, statements, pg_stat_database deltas, fn's result."""
    pg.log_all(True)
    offset = pg.logfile.stat().st_size
    c0 = pg.counters()
    t0 = time.monotonic()
    out = fn()
    t = time.monotonic() - t0
    c1 = pg.counters()
    pg.log_all(False)
    return t, statements(pg, offset), {k: c1[k] - c0[k] for k in c0}, out


def per(x: float, n: int) -> float:
    return round(x / max(1, n), 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pg-cluster", required=True)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--bypasses", type=int, default=1000)
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=4, help="threads writing the records (setup, not measured)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    pg = Pg(args.pg_cluster)
    out: dict[str, Any] = {"users": args.users, "bypasses": args.bypasses, "started": utc_iso(datetime.now(UTC))}
    with bench_realms(args.url, 1, args.keep, "--enforce", "none", "--backup-codes", "offered") as (realm,):
        kc = KeycloakClient(settings(args.url, realm))
        kc.put("/events/config", {"adminEventsEnabled": True, "adminEventsDetailsEnabled": True}, "events on")
        out["realm"] = realm
        out["seed_s"] = round(seed_sql(pg, kc, args.users), 1)
        out["users_counted"] = kc.count_users()
        log(f"{realm}: {out['users_counted']} users by SQL in {out['seed_s']} s")
        users = kc.get("/users", "bypassed users", first=0, max=args.bypasses, briefRepresentation="true")

        # 1. idle: the task with nothing due, polled as in step 2.
        def idle() -> int:
            end = time.monotonic() + args.idle_s
            polls = 0
            while time.monotonic() < end:
                heartbeat(kc)
                polls += 1
                time.sleep(1)
            return polls

        t, st, cnt, polls = window(pg, idle)
        out["idle"] = {"s": round(t, 1), "statements": st, "pg_stat": cnt, "polls": polls}
        log(f"idle {t:.0f}s: {st['all']} statements ({st['data']} data), {polls} polls")

        # 2. the task.
        minute = next_minute(after_s=20 + args.bypasses * 0.12)
        out["task_write_s"] = round(write_records(args.url, realm, users, minute, args.workers), 1)
        log(f"task: {args.bypasses} records written in {out['task_write_s']} s, ending {utc_iso(minute)} + 1 min")
        wait_until(minute - timedelta(seconds=2))

        def task() -> dict[str, Any]:
            beats: dict[str, dict[str, Any]] = {}
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                b = heartbeat(kc)
                if b.get("at"):
                    beats[b["at"]] = b
                if sum(int(x.get("ended", 0)) for x in beats.values()) >= args.bypasses \
                        and datetime.now(UTC) > minute + timedelta(seconds=60):
                    break
                time.sleep(1)
            return {"beats": sorted(beats.values(), key=lambda b: str(b["at"]))}

        t, st, cnt, res = window(pg, task)
        beats = [b for b in res["beats"] if int(b.get("ended", 0)) > 0]
        ended = sum(int(b["ended"]) for b in beats)
        idle_rate = out["idle"]["statements"]["data"] / out["idle"]["s"]
        task_data = st["data"] - idle_rate * t
        out["task"] = {"window_s": round(t, 1), "statements": st, "pg_stat": cnt, "runs": beats,
                       "ended": ended, "left": left(kc, users),
                       "run_ms": sum(int(b["duration_ms"]) for b in beats),
                       "data_statements_net": round(task_data),
                       "data_statements_per_expiry": per(task_data, ended),
                       "commits_per_expiry": per(cnt["xact_commit"] - out["idle"]["pg_stat"]["xact_commit"]
                                                 * t / out["idle"]["s"], ended)}
        log(f"task: ended {ended} in {len(beats)} runs, {out['task']['run_ms']} ms of runs; "
            f"{out['task']['data_statements_per_expiry']} statements per expiry (net of idle)")

        # 3. sync, the task off for the realm.
        twostep(args.url, realm, "setup", "--no-service-client", "--enforce", "none", "--backup-codes", "offered",
                "--expiry-task", "off")
        minute = next_minute(after_s=20 + args.bypasses * 0.12)
        out["sync_write_s"] = round(write_records(args.url, realm, users, minute, args.workers), 1)
        wait_until(minute + timedelta(seconds=61))
        seen = request_log(kc)
        kc.get_realm()
        seen.clear()
        kc.calls.count = 0

        def sync() -> Any:
            t0 = time.perf_counter()
            summary, _ = run_once(kc, datetime.now(UTC), MemorySink([]), "bench", lease_seconds(kc.settings), OPTS)
            return summary, time.perf_counter() - t0, kc.calls.count

        t, st, cnt, (summary, pass_s, requests) = window(pg, sync)
        out["sync"] = {"pass_s": round(pass_s, 2), "requests": requests, "expired": summary.expired,
                       "errors": len(summary.errors), "by_path": breakdown(seen), "statements": st, "pg_stat": cnt,
                       "left": left(kc, users),
                       "requests_per_expiry": per(requests, summary.expired),
                       "data_statements_per_expiry": per(st["data"], summary.expired),
                       "commits_per_expiry": per(cnt["xact_commit"], summary.expired)}
        log(f"sync: {summary.expired} in {pass_s:.1f}s, {requests} requests, {st['data']} statements")
        task_s = out["task"]["run_ms"] / 1000
        out["ratios_sync_to_task"] = {
            "wall": round(pass_s / task_s, 1) if task_s else None,
            "data_statements_per_expiry": round(out["sync"]["data_statements_per_expiry"]
                                                / out["task"]["data_statements_per_expiry"], 2)
            if out["task"]["data_statements_per_expiry"] else None,
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"expiry_task{args.tag}.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k not in ("idle",)}, indent=1)[:6000])


if __name__ == "__main__":
    main()
