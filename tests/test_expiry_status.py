"""The provider's expiry task as status, doctor and sync read it (plugin/twostep/expiry_task.py):
its heartbeat, strictly read, and when it counts as running. No Keycloak needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from twostep import expiry_task
from twostep.policy import RealmPolicy

NOW = datetime(2026, 12, 1, 20, 15, tzinfo=UTC)
GOOD = {"v": 1, "at": "2026-12-01T20:14:30Z", "duration_ms": 12, "interval_s": 30, "ended": 1, "grace_ended": 0,
        "errors": 0}
PROVIDER = RealmPolicy(record_store="credential", decided_by="provider")


@pytest.mark.parametrize("raw", [
    None, "", "not json", "[]", json.dumps({**GOOD, "v": 2}), json.dumps({**GOOD, "at": "2026-12-01 20:14:30"}),
    json.dumps({**GOOD, "ended": -1}), json.dumps({**GOOD, "errors": True}), json.dumps({**GOOD, "interval_s": "30"}),
    json.dumps({k: v for k, v in GOOD.items() if k != "grace_ended"}),
])
def test_anything_but_a_heartbeat_is_none(raw: str | None) -> None:
    assert expiry_task.parse(raw) is None


@pytest.mark.parametrize(("age", "fresh"), [
    (timedelta(seconds=30), True), (timedelta(minutes=4, seconds=59), True), (timedelta(minutes=5), False),
    (timedelta(hours=3), False), (-timedelta(seconds=59), True), (-timedelta(minutes=2), False),
])
def test_fresh_is_under_five_minutes(age: timedelta, fresh: bool) -> None:
    beat = expiry_task.parse(json.dumps({**GOOD, "at": (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")}))
    assert beat is not None
    assert expiry_task.fresh(beat, NOW) is fresh
    ok, detail, fix = expiry_task.describe(PROVIDER, beat, NOW)
    assert ok is fresh
    if fresh:
        assert detail.startswith("in Keycloak, every 30 s;"), detail
    else:
        assert "more than 5 minutes" in detail and fix


def test_missing_heartbeat_fails_and_off_is_sync() -> None:
    ok, detail, fix = expiry_task.describe(PROVIDER, None, NOW)
    assert (ok, "no heartbeat" in detail, bool(fix)) == (False, True, True)
    off = RealmPolicy(record_store="credential", decided_by="provider", expiry_task="off")
    assert expiry_task.describe(off, None, NOW)[0] is True
    assert not expiry_task.serves(off)
    assert expiry_task.serves(PROVIDER)
    assert not expiry_task.serves(RealmPolicy())  # fallback mode: sync


def test_policy_key_round_trips_and_stays_absent_when_on() -> None:
    assert "expiry_task" not in json.loads(PROVIDER.to_json())
    off = RealmPolicy(record_store="credential", decided_by="provider", expiry_task="off")
    text = off.to_json()
    assert json.loads(text)["expiry_task"] == "off"
    parsed = RealmPolicy.from_json(text)
    assert parsed is not None and parsed.expiry_task == "off"
    odd = json.loads(text)
    odd["expiry_task"] = 7  # lenient: never makes the record unreadable
    again = RealmPolicy.from_json(json.dumps(odd))
    assert again is not None and again.expiry_task == "on"


@pytest.mark.parametrize(("set_up_ago", "ok"), [
    (timedelta(seconds=10), True), (timedelta(minutes=4), True), (timedelta(minutes=5), False),
    (timedelta(days=3), False), (-timedelta(minutes=1), False),
])
def test_no_heartbeat_is_a_failure_once_the_task_had_five_minutes(set_up_ago: timedelta, ok: bool) -> None:
    policy = RealmPolicy(record_store="credential", decided_by="provider",
                         enforce_since=(NOW - set_up_ago).strftime("%Y-%m-%dT%H:%M:%SZ"))
    got, detail, _fix = expiry_task.describe(policy, None, NOW)
    assert got is ok, detail
