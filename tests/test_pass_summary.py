"""The last sync pass's summary as the overview reads it (pure: no Keycloak): its age, and fail
closed on a missing, damaged or old summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from twostep import pass_summary
from twostep.pass_summary import ATTR, PassSummary, age_text, parse, read

NOW = datetime(2026, 12, 1, 23, 0, 0, tzinfo=UTC)


def summary(at: datetime, counts: dict[str, int] | None = None) -> PassSummary:
    return PassSummary(at, "abc123", "full", True, 0, 2, 1, "2026-12-02T01:00:00Z", counts,
                       {"not_enrolled": [], "low_backup_codes": []} if counts else None,
                       at if counts else None)


def test_round_trip_and_age() -> None:
    s = summary(NOW - timedelta(minutes=4), {"users_in_scope": 10})
    assert parse(s.to_json()) == s
    r = read({ATTR: s.to_json()}, NOW)
    assert r.state == "ok" and r.fresh and r.summary == s and r.age_s == 240 and r.counts_age_s == 240
    assert age_text(r.age_s) == "4 min ago" and age_text(30) == "just now" and age_text(None) == "never"


def test_missing_damaged_and_old_are_not_fine() -> None:
    assert read({}, NOW).state == "none" and read(None, NOW).summary is None
    for bad in ("not json", "[]", '{"v":2}', summary(NOW).to_json().replace('"ok":true', '"ok":"yes"'),
                summary(NOW).to_json().replace("2026-12-01T23:00:00Z", "2026-12-01 23:00")):
        r = read({ATTR: bad}, NOW)
        assert r.state == "damaged" and r.summary is None and not r.fresh, bad
    old = read({ATTR: summary(NOW - timedelta(seconds=pass_summary.STALE_AFTER_S + 1)).to_json()}, NOW)
    assert old.state == "stale" and not old.fresh and old.summary is not None
    future = read({ATTR: summary(NOW + timedelta(hours=1)).to_json()}, NOW)
    assert future.state == "stale", "a summary from the future is not trusted to be recent"


def test_stored_as_pieces_that_fit_a_group_attribute_and_join_in_any_order() -> None:
    lists = {"not_enrolled": [{"id": f"id-{i}", "username": f"user-{i}", "deadline": "2026-12-08T00:00:00Z"}
                              for i in range(20)]}
    s = PassSummary(NOW, "abc123", "full", True, 0, 2, 1, None, {"users_in_scope": 10}, lists, NOW)
    text = s.to_json()
    stored = pass_summary.pieces(text)
    assert len(stored) > 1 and all(len(v) <= 255 for v in stored), "Keycloak keeps 255 characters a value"
    assert read({ATTR: list(reversed(stored))}, NOW).summary == s, "Keycloak does not promise the order"
    for broken in (stored[:-1], stored[1:], [*stored, stored[0]], [v.replace("|", ":", 1) for v in stored]):
        assert read({ATTR: broken}, NOW).state == "damaged", "pieces that do not join are damaged, never fine"


def test_coverage_fields_round_trip_and_history_is_bounded() -> None:
    from dataclasses import replace
    from datetime import date

    from twostep import coverage

    history: list[list[object]] = []
    for i in range(40):  # 40 days of counts, two counts on each day: one entry a day, the last 30 kept
        day = date(2026, 11, 1) + timedelta(days=i)
        history = coverage.add_day(history, day, 10 + i, i)
        history = coverage.add_day(history, day, 10 + i, i + 1)
    assert len(history) == coverage.HISTORY_DAYS == 30
    assert history[0] == ["2026-11-11", 20, 11] and history[-1] == ["2026-12-10", 49, 40]
    s = replace(summary(NOW, {"users_in_scope": 49, "enrolled": 40}), history=history, ending_24h=2,
                groups=[{"name": "/staff", "in_scope": 3, "enrolled": 1, "in_grace": 1, "overdue": 1, "bypassed": 0,
                         "complete": True}])
    assert parse(s.to_json()) == s
    # A record written before these keys reads as before; a damaged history or count is unreadable.
    old = json.loads(s.to_json())
    for key in ("history", "groups", "ending_24h"):
        del old[key]
    assert parse(json.dumps(old)) == replace(s, history=[], groups=None, ending_24h=None)
    for bad in ({"history": [["2026-13-01", 1, 1]]}, {"history": [["2026-12-01", "1", 1]]}, {"history": "x"},
                {"ending_24h": "2"}, {"groups": ["x"]}):
        assert parse(json.dumps({**json.loads(s.to_json()), **bad})) is None, bad
