"""The provider's expiry task as the Python side sees it (docs/provider.md, "The expiry task").

With the JAR, Keycloak ends bypasses itself: a scheduled task, once per cluster, every 30 s by
default. Its heartbeat is the attribute `twostep.expiry_task` of the index root group
`twostep-bypass` (docs/formats.md): JSON `{"v":1,"at":...,"duration_ms":...,"interval_s":...,
"ended":...,"grace_ended":...,"errors":...}`, written after a run that ended something, else at most
once a minute. `status`, `doctor` and sync read it: fresh (under 5 minutes old) means the task serves
the realm and sync leaves the expiries to it; missing or stale means sync ends them (the fallback
path) and `status`/`doctor` fail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import Forbidden, NotFound
from .keycloak_adapter import KeycloakClient
from .policy import BYPASS_INDEX_GROUP, RealmPolicy, parse_strict_time, utc_iso

HEARTBEAT_ATTR = "twostep.expiry_task"
STALE_AFTER = timedelta(minutes=5)
FUTURE_SLACK = timedelta(minutes=1)
FIX = ("install the current twostep provider JAR on every node (docs/provider.md) and check Keycloak's "
       "log for 'twostep: bypass expiry task scheduled'; until it runs, `twostep sync` ends the bypasses")


@dataclass(frozen=True)
class Heartbeat:
    at: datetime
    duration_ms: int
    interval_s: int
    ended: int
    grace_ended: int
    errors: int


def parse(raw: str | None) -> Heartbeat | None:
    """None for anything that is not a heartbeat of version 1 (read as "no heartbeat": fail closed)."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
        at = parse_strict_time(str(data["at"])) if isinstance(data, dict) and data.get("v") == 1 else None
        if at is None:
            return None
        values = [data[k] for k in ("duration_ms", "interval_s", "ended", "grace_ended", "errors")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            return None
        return Heartbeat(at, *values)
    except (ValueError, KeyError, TypeError):
        return None


def read(kc: KeycloakClient) -> Heartbeat | None:
    try:
        group = kc.find_group_by_path(BYPASS_INDEX_GROUP)
    except (NotFound, Forbidden):
        return None
    values = ((group or {}).get("attributes") or {}).get(HEARTBEAT_ATTR) or [""]
    return parse(str(values[0]))


def fresh(beat: Heartbeat | None, now: datetime) -> bool:
    return beat is not None and -FUTURE_SLACK <= now - beat.at < STALE_AFTER


def serves(policy: RealmPolicy) -> bool:
    """Whether the realm is the task's to serve: provider mode, task not switched off."""
    return policy.provider_mode and policy.expiry_task != "off"


def task_has_it(kc: KeycloakClient, policy: RealmPolicy, now: datetime) -> bool:
    """Whether sync leaves this realm's expiries to the task: it serves the realm and ran lately."""
    return serves(policy) and fresh(read(kc), now)


def describe(policy: RealmPolicy, beat: Heartbeat | None, now: datetime) -> tuple[bool, str, str]:
    """(ok, detail, fix) of the status line "bypass expiry" (provider mode only)."""
    if policy.expiry_task == "off":
        return True, "by `twostep sync` (the provider's expiry task is off for this realm: policy expiry_task)", ""
    if beat is None:
        # Right after setup the task has not had its first run yet: only a policy older than 5 minutes
        # (enforce_since, the setup that last changed enforcement) makes a missing heartbeat a failure.
        since = parse_strict_time(policy.enforce_since)
        if since is not None and timedelta(0) <= now - since < STALE_AFTER:
            return True, ("the provider's expiry task has not reported yet (policy set up "
                          f"{int((now - since).total_seconds())} s ago; it reports within its interval)"), ""
        return False, "the provider's expiry task has not run in this realm (no heartbeat)", FIX
    ago = int((now - beat.at).total_seconds())
    last = (f"last run {utc_iso(beat.at)} ({max(ago, 0)} s ago, {beat.duration_ms} ms), ended since the run "
            f"before: {beat.ended} bypass(es), {beat.grace_ended} grace session set(s), {beat.errors} error(s)")
    if not fresh(beat, now):
        return False, f"the provider's expiry task has not run for more than 5 minutes: {last}", FIX
    return True, f"in Keycloak, every {beat.interval_s} s; {last}", ""
