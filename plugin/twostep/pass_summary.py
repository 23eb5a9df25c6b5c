"""What the last sync pass saw, stored for the admin overview (docs/formats.md, `twostep.last_pass`;
Python only, the provider never reads it): an attribute of the top-level group `twostep-state`, which
sync's account writes with manage-users (a realm attribute needs manage-realm, which it does not hold).
Keycloak keeps a group attribute value to 255 characters, so the JSON is stored as numbered pieces
(`000|...`, `001|...`) of one attribute and joined in that order; pieces that do not join read as damaged.

The overview must not scan the realm on every page view (on 100,000 users a scan is minutes), so
the counts that need one (users in scope, enrolled, backup codes) come from here, with their age.
The sync pass writes the summary once at its end (`record`); the counts are taken again by a full
pass when the stored ones are older than COUNT_EVERY_S, bounded by COUNT_LIMIT users, and carried
forward otherwise. An uneventful pass rewrites the summary at most every WRITE_EVERY_S (each write
is a group update: an admin event and a cache invalidation in every node).

Readers fail closed: no summary, an unreadable one, or one older than STALE_AFTER_S is shown as
such, never as "all fine".
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import coverage, logs
from .errors import Forbidden, TwostepError
from .keycloak_adapter import KeycloakClient
from .policy import STATE_GROUP, RealmPolicy, parse_strict_time, utc_iso
from .realm_status import scope_counts

ATTR = "twostep.last_pass"
VERSION = 1
COUNT_EVERY_S = 3600
COUNT_LIMIT = 5000
LIST_LIMIT = 20
WRITE_EVERY_S = 60.0
STALE_AFTER_S = 30 * 60
PIECE = 250  # characters of JSON per attribute value (Keycloak's column holds 255)
"""A summary older than this means sync is not running (watch writes one at least every minute;
a cron sync runs every few minutes)."""

log = logs.get("twostep.sync")
_written: dict[str, float] = {}  # realm -> monotonic time of this process's last write
_lock = threading.Lock()


@dataclass(frozen=True)
class PassSummary:
    at: datetime
    run_id: str
    kind: str  # "full" | "expiry"
    ok: bool
    errors: int
    bypassed_active: int
    ended: int  # bypasses this pass ended (expired or early)
    next_expiry: str | None
    counts: dict[str, Any] | None  # realm_status counts; None: not counted yet
    lists: dict[str, list[dict[str, Any]]] | None
    counted_at: datetime | None
    # Coverage (issue 25), optional in the record: by group (coverage.by_group, with the counts),
    # the daily trend [[YYYY-MM-DD, in scope, enrolled], ...] (at most coverage.HISTORY_DAYS), and
    # the bypasses ending within 24 h of the last full pass.
    groups: list[dict[str, Any]] | None = None
    history: list[list[Any]] = field(default_factory=list)
    ending_24h: int | None = None

    def to_json(self) -> str:
        return json.dumps({
            "groups": self.groups, "history": self.history, "ending_24h": self.ending_24h,
            "v": VERSION, "at": utc_iso(self.at), "run_id": self.run_id, "kind": self.kind, "ok": self.ok,
            "errors": self.errors, "bypassed_active": self.bypassed_active, "ended": self.ended,
            "next_expiry": self.next_expiry, "counts": self.counts, "lists": self.lists,
            "counted_at": utc_iso(self.counted_at) if self.counted_at else None,
        }, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Reading:
    """What the overview shows: `summary` None with `state` "none" (no pass yet) or "damaged"."""

    state: str  # "ok" | "stale" | "none" | "damaged"
    summary: PassSummary | None
    age_s: float | None
    counts_age_s: float | None

    @property
    def fresh(self) -> bool:
        return self.state == "ok"


def parse(text: str | None) -> PassSummary | None:
    """The stored summary, or None when missing or not exactly what `to_json` writes."""
    if not text:
        return None
    try:
        d = json.loads(text)
        if not isinstance(d, dict) or d.get("v") != VERSION:
            return None
        at = parse_strict_time(d["at"])
        counted = parse_strict_time(d["counted_at"]) if d.get("counted_at") else None
        counts, lists = d.get("counts"), d.get("lists")
        if at is None or (d.get("counted_at") and counted is None):
            return None
        if not (isinstance(d["run_id"], str) and d["kind"] in ("full", "expiry") and isinstance(d["ok"], bool)
                and type(d["errors"]) is int and type(d["bypassed_active"]) is int and type(d["ended"]) is int
                and (d["next_expiry"] is None or isinstance(d["next_expiry"], str))
                and (counts is None or isinstance(counts, dict)) and (lists is None or isinstance(lists, dict))):
            return None
        groups, history, ending = d.get("groups"), d.get("history") or [], d.get("ending_24h")
        if not ((groups is None or (isinstance(groups, list) and all(isinstance(x, dict) for x in groups)))
                and isinstance(history, list) and all(coverage.valid_entry(e) for e in history)
                and (ending is None or type(ending) is int)):
            return None
        return PassSummary(at, d["run_id"], d["kind"], d["ok"], d["errors"], d["bypassed_active"], d["ended"],
                           d["next_expiry"], counts, lists, counted, groups, history[-coverage.HISTORY_DAYS:], ending)
    except (ValueError, KeyError, TypeError):
        return None


def pieces(text: str) -> list[str]:
    """The attribute values `text` is stored as: numbered pieces that each fit Keycloak's column."""
    return [f"{i:03d}|{text[at:at + PIECE]}" for i, at in enumerate(range(0, len(text), PIECE))]


def joined(values: Any) -> str | None:
    """The text stored as `pieces` (any order), or None when they are not exactly 000..n-1."""
    if isinstance(values, str):  # one plain value (a realm attribute, as before)
        return values
    if not isinstance(values, list) or not values:
        return None
    parts = sorted((str(v)[:3], str(v)[4:]) for v in values if str(v)[3:4] == "|")
    if [n for n, _t in parts] != [f"{i:03d}" for i in range(len(values))]:
        return None
    return "".join(t for _n, t in parts)


def read(attributes: dict[str, Any] | None, now: datetime) -> Reading:
    """From the attributes the summary is stored in (`load` reads them from Keycloak)."""
    raw = (attributes or {}).get(ATTR)
    if not raw:
        return Reading("none", None, None, None)
    summary = parse(joined(raw))
    if summary is None:
        return Reading("damaged", None, None, None)
    age = (now - summary.at).total_seconds()
    counts_age = (now - summary.counted_at).total_seconds() if summary.counted_at else None
    # A summary from the future (clocks apart) is not trusted to be recent either.
    state = "ok" if -120 <= age <= STALE_AFTER_S else "stale"
    return Reading(state, summary, age, counts_age)


def load(kc: KeycloakClient, now: datetime) -> Reading:
    """The stored summary, read with `kc`'s credentials (the overview: the signed-in admin's own).
    Credentials that may not see the group read it as damaged ("cannot be read"), never as fine."""
    try:
        group = kc.find_top_group(STATE_GROUP, brief=False)  # one call, attributes included
        return read(group.get("attributes") if group else None, now)
    except Forbidden:
        return Reading("damaged", None, None, None)


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 60:
        return "just now"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60} min ago"
    return f"{s // 86400} days ago"


def record(kc: KeycloakClient, now: datetime, summary: Any, state: Any, full: bool) -> None:
    """The sync pass's one call at its end: store what it saw (sync/reconcile.py run_once).
    `summary` is its Summary, `state` its State. Never raises: a summary not written only makes
    the overview's age grow, which it shows."""
    eventful = bool(summary.errors or summary.expired or summary.ended_early or summary.enforced
                    or summary.drift_repaired or summary.finished)
    with _lock:
        last = _written.get(kc.realm)
        if not (full or eventful or last is None or time.monotonic() - last >= WRITE_EVERY_S):
            return
    try:
        found = kc.find_top_group(STATE_GROUP)
        group = kc.get_group(str(found["id"]) if found else kc.create_group(STATE_GROUP))
        attrs = dict(group.get("attributes") or {})
        before = parse(joined(attrs.get(ATTR)))
        counts, lists, counted_at = (before.counts, before.lists, before.counted_at) if before else (None, None, None)
        groups, history = (before.groups, before.history) if before else (None, [])
        ending = before.ending_24h if before else None
        if full and (counted_at is None or (now - counted_at).total_seconds() >= COUNT_EVERY_S):
            counts, lists, groups = _count(kc, now, state)
            counted_at = now
            history = coverage.add_day(history, now.astimezone(UTC).date(), int(counts["users_in_scope"]),
                                       int(counts.get("enrolled", 0)))
        if full and state is not None:
            ending = ending_within(state, now, timedelta(hours=24))
        out = PassSummary(now.astimezone(UTC).replace(microsecond=0), summary.run_id, "full" if full else "expiry",
                          summary.ok, len(summary.errors), summary.bypassed_active,
                          summary.expired + summary.ended_early, summary.next_expiry, counts, lists, counted_at,
                          groups, history, ending)
        attrs[ATTR] = pieces(out.to_json())
        # The group's PUT replaces the attribute map: send every attribute as just read, ours changed.
        kc.update_group(str(group["id"]), {**group, "attributes": attrs})
    except TwostepError as exc:
        log.warning("sync.summary_not_written", str(exc), realm=kc.realm, run_id=summary.run_id)
        return
    with _lock:
        _written[kc.realm] = time.monotonic()


def _count(kc: KeycloakClient, now: datetime, state: Any
           ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]], list[dict[str, Any]] | None]:
    policy: RealmPolicy = state.policy
    active = {rec.user_id for _u, rec in state.bypassed if rec.state(now, policy.bypass_max_s) == "active"}
    active |= set(getattr(state, "entries", {}) or {})  # provider mode: the index's running entries
    states: dict[str, str] = {}
    counts, lists = scope_counts(kc, policy, COUNT_LIMIT, now, bypassed=active, list_limit=LIST_LIMIT, states=states)
    try:
        groups: list[dict[str, Any]] | None = coverage.by_group(kc, policy, states, 2 * COUNT_LIMIT)
    except TwostepError as exc:
        log.warning("sync.groups_not_counted", str(exc), realm=kc.realm)
        groups = None
    return counts, lists, groups


def ending_within(state: Any, now: datetime, window: timedelta) -> int:
    """Bypasses in force that end within `window` (a full pass has read them all: the index's running
    entries in provider mode, the marked users' records otherwise)."""
    horizon = now + window
    entries = getattr(state, "entries", None) or {}
    if getattr(state, "indexed", False):
        return sum(1 for e in entries.values() if e.until is not None and now < e.until <= horizon)
    policy: RealmPolicy = state.policy
    return sum(1 for _u, rec in state.bypassed
               if rec.state(now, policy.bypass_max_s) == "active" and rec.until is not None and rec.until <= horizon)
