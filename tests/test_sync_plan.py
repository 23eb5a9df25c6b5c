"""The sync planner is pure: state + clock in, actions out (no Keycloak, no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twostep.policy import Enforcement, RealmPolicy, utc_iso
from twostep.records import AttributeStore
from twostep.sync.reconcile import Options, State, next_expiry, plan
from twostep.sync.watch import sleep_seconds

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def user(
    uid: str,
    *,
    until: datetime | None,
    granted: datetime | None = None,
    marker: str = "true",
    totp: bool = False,
    reset: bool = False,
    by: str = "admin",
    reason: str = "r",
) -> dict[str, Any]:
    attrs: dict[str, list[str]] = {"twostep_bypass": [marker]}
    if until is not None:
        attrs["twostep_bypass_until"] = [utc_iso(until)]
    if granted is not None:
        attrs["twostep_bypass_granted_at"] = [utc_iso(granted)]
    attrs["twostep_bypass_by"] = [by]
    attrs["twostep_bypass_reason"] = [reason]
    attrs["twostep_bypass_reset_device"] = ["true" if reset else "false"]
    return {
        "id": uid,
        "username": uid,
        "attributes": attrs,
        "totp": totp,
        "createdTimestamp": 0,
        "requiredActions": [],
    }


def read_record(u: dict[str, Any]) -> Any:
    return AttributeStore().read(None, u)  # type: ignore[arg-type]  # the attribute store reads no Keycloak


def state(*users: dict[str, Any], **kw: Any) -> State:
    return State("r", RealmPolicy(Enforcement("all", (), 0)), bypassed=[(u, read_record(u)) for u in users], **kw)


def kinds(actions: list[Any]) -> list[tuple[str, str]]:
    return [(a.kind, a.name) for a in actions]


def test_expired_active_and_hand_set() -> None:
    s = state(
        user("expired", until=NOW - timedelta(seconds=1), granted=NOW - timedelta(hours=1)),
        user("exactly", until=NOW, granted=NOW - timedelta(hours=1)),
        user("active", until=NOW + timedelta(minutes=5), granted=NOW - timedelta(hours=1)),
        user("handset", until=None, granted=None),
        user("garbled", until=NOW + timedelta(days=1), granted=NOW + timedelta(days=2)),
        user("noreason", until=NOW + timedelta(days=1), granted=NOW, reason=""),
    )
    assert kinds(plan(s, NOW)) == [
        ("expire", "expired"),
        ("expire", "exactly"),
        ("drift_user", "handset"),
        ("drift_user", "garbled"),
        ("drift_user", "noreason"),
    ]
    # One second earlier, "exactly" is still active.
    assert ("expire", "exactly") not in kinds(plan(s, NOW - timedelta(seconds=1)))


def test_end_early_only_for_device_enrolled_after_grant_and_configurable() -> None:
    granted = NOW - timedelta(hours=1)
    s = state(
        user("new", until=NOW + timedelta(hours=1), granted=granted, totp=True),
        user("old", until=NOW + timedelta(hours=1), granted=granted, totp=True),
        otp_created_ms={
            "new": [int((granted + timedelta(minutes=5)).timestamp() * 1000)],
            "old": [int((granted - timedelta(days=5)).timestamp() * 1000)],
        },
    )
    assert kinds(plan(s, NOW)) == [("end_early", "new")]
    assert plan(s, NOW, Options(end_early=False)) == []


def test_end_plans_require_device_when_in_scope() -> None:
    s = state(
        user("lost", until=NOW - timedelta(seconds=1), granted=NOW - timedelta(hours=2), reset=True),
        in_scope={"lost": True},
    )
    (a,) = plan(s, NOW)
    assert a.end is not None and a.end.require_device and a.end.end_sessions
    out = state(
        user("lost", until=NOW - timedelta(seconds=1), granted=NOW - timedelta(hours=2), reset=True),
        in_scope={"lost": False},
    )
    (b,) = plan(out, NOW, Options(end_sessions=False))
    assert b.end is not None and not b.end.require_device and not b.end.end_sessions


def test_finish_groups_definitions_and_enforce() -> None:
    s = state(
        ending=[({"id": "u9", "username": "half"}, read_record({"id": "u9", "username": "half"}))],
        group_markers=[{"id": "g", "path": "/ops"}],
        profile_drift=True,
        flow_drift=["x"],
        to_enforce=[{"id": "u7", "username": "late"}],
    )
    assert kinds(plan(s, NOW)) == [
        ("finish", "half"),
        ("drift_group", "/ops"),
        ("repair_profile", "user profile"),
        ("repair_flow", "twostep browser"),
        ("enforce", "late"),
    ]


def test_next_expiry_and_watch_sleep() -> None:
    s = state(
        user("a", until=NOW + timedelta(seconds=7), granted=NOW - timedelta(hours=1)),
        user("b", until=NOW + timedelta(hours=1), granted=NOW - timedelta(hours=1)),
        user("gone", until=NOW - timedelta(seconds=3), granted=NOW - timedelta(hours=1)),
    )
    assert next_expiry(s, NOW) == NOW + timedelta(seconds=7)
    assert abs(sleep_seconds(s, NOW, 30) - 7.05) < 1e-6
    assert sleep_seconds(s, NOW, 2) == 2
    assert sleep_seconds(state(), NOW, 30) == 30
    assert sleep_seconds(None, NOW, 5) == 5


def test_record_states() -> None:
    assert read_record(user("x", until=NOW, granted=NOW, marker="ending")).state(NOW) == "ending"
    assert read_record(user("x", until=NOW, granted=NOW, marker="TRUE")).state(NOW) == "damaged-marker"
    assert read_record({"id": "x", "attributes": {}}).state(NOW) == "none"
