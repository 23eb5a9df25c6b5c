"""The sync planner is pure: state + clock in, actions out (no Keycloak, no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twostep.policy import Enforcement, RealmPolicy, utc_iso
from twostep.records import AttributeStore
from twostep.sync.plan import Options, State, next_expiry, plan
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


def test_a_device_from_the_second_of_the_grant_does_not_end_it_early() -> None:
    """granted_at has whole seconds, credential times milliseconds: a device made 0.6 s into the
    second the grant was written in (before the grant itself) is not a new device."""
    granted = (NOW - timedelta(hours=1)).replace(microsecond=0)
    s = state(
        user("same", until=NOW + timedelta(hours=1), granted=granted, totp=True),
        user("next", until=NOW + timedelta(hours=1), granted=granted, totp=True),
        otp_created_ms={
            "same": [int(granted.timestamp() * 1000) + 600],
            "next": [int(granted.timestamp() * 1000) + 1000],
        },
    )
    assert kinds(plan(s, NOW)) == [("end_early", "next")]


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


# -- provider mode: the expiry index (docs/formats.md, "The bypass index") ---------------------------

def entry(uid: str, until: datetime | None, *, claimed: bool = False, reset: bool = False) -> Any:
    from twostep.bypass_index import Entry

    return Entry(f"g-{uid}", "2030-01-01T11", uid, f"c-{uid}", uid, utc_iso(until) if until else "garbled",
                 utc_iso(NOW - timedelta(hours=2)), "admin", "r", reset, claimed)


def indexed(**kw: Any) -> State:
    return State("r", RealmPolicy(Enforcement("all", (), 0)), indexed=True, **kw)


def test_index_due_entries_expire_and_only_a_reset_device_requires_enrollment() -> None:
    due = [entry("a", NOW - timedelta(minutes=1)), entry("b", NOW, reset=True), entry("c", None)]
    actions = plan(indexed(due=due), NOW)
    assert kinds(actions) == [("expire", "a"), ("expire", "b"), ("expire", "c")]
    assert [a.entry for a in actions] == due, "each end names the record version it claims"
    assert [a.end.require_device for a in actions if a.end] == [False, True, False]
    assert "no readable end ('garbled')" in actions[2].detail


def test_index_bucket_over_is_dropped_after_its_unclaimed_entries() -> None:
    done, open_ = entry("a", NOW - timedelta(hours=1), claimed=True), entry("b", NOW - timedelta(minutes=70))
    bucket = {"id": "bk", "name": "2030-01-01T10"}
    actions = plan(indexed(due=[open_], buckets_over=[(bucket, [done, open_])]), NOW)
    assert kinds(actions) == [("expire", "b"), ("drop_bucket", "twostep-bypass/2030-01-01T10")]
    assert actions[1].needs == ("g-b",), "dropped only once this pass has claimed b (a was claimed before)"


def test_index_full_pass_tidies_claimed_entries_and_reindexes_old_members() -> None:
    claimed = entry("a", NOW + timedelta(hours=1), claimed=True)
    actions = plan(indexed(claimed=[claimed], legacy=[{"id": "u1", "username": "old"}]), NOW)
    assert kinds(actions) == [("reindex", "old"), ("finish", "a")]
    assert actions[1].entry == claimed


def test_index_next_expiry_is_the_index_one() -> None:
    s = indexed(next_until=NOW + timedelta(minutes=3))
    assert next_expiry(s, NOW) == NOW + timedelta(minutes=3)
    assert next_expiry(indexed(), NOW) is None


def test_one_enum_of_kinds_drives_handlers_counters_and_output() -> None:
    from twostep.sync import apply
    from twostep.sync.plan import Action, ActionKind

    assert set(apply.COUNTER) == set(ActionKind) == set(apply._HANDLERS)
    a = Action(ActionKind.EXPIRE, "x", "why")
    assert a.as_dict() == {"kind": "expire", "target": "x", "detail": "why"}
    assert a.kind == "expire", "a kind compares with its string"


def test_bucket_names_and_entries_read_from_groups() -> None:
    from twostep import bypass_index as ix

    until = datetime(2030, 1, 1, 20, 59, 59, tzinfo=UTC)
    assert ix.bucket_name(until) == "2030-01-01T20"
    assert ix.bucket_span("2030-01-01T20") == (until.replace(minute=0, second=0), until.replace(hour=21, minute=0,
                                                                                                  second=0))
    assert ix.bucket_span("not-a-bucket") is None
    group = {"id": "g", "name": "u1.c1", "subGroupCount": 1,
             "attributes": {"until": [utc_iso(until)], "username": ["ann"], "reset_device": ["true"]}}
    e = ix.entry_from_group(group, "2030-01-01T20")
    assert e is not None and (e.user_id, e.credential_id, e.username, e.until, e.reset_device, e.claimed) == (
        "u1", "c1", "ann", until, True, True)
    assert ix.entry_from_group({"id": "g", "name": "no-dot"}, "b") is None
