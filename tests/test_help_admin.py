"""Help requests, the admins' side, on a real Keycloak with the provider JAR: the queue (a damaged entry
included), answering from the CLI (grant: the user signs in with the password alone and the device
is gone; dismiss: a reason is required), a second answer refused, the admins e-mailed once per
request across sync passes (real SMTP server on loopback), the user told of the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twostep.policy import RealmPolicy, help_admins_valid, readable

from tests.conftest import Admin, Browser, MakeUser, Twostep
from tests.support.bypass_helpers import audit_events, record_fields
from tests.support.help_helpers import file_request, in_index, join_index, stored_request
from tests.support.smtp_sink import SmtpSink
from tests.support.twofactor import setup_realm
from tests.test_help_request_login import ask


@pytest.fixture
def mail(admin: Admin, realm: str) -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        admin.put(f"/{realm}", {"smtpServer": sink.realm_settings()})
        yield sink


def otp_types(admin: Admin, realm: str, uid: str) -> list[str]:
    return [c["type"] for c in admin.get(f"/{realm}/users/{uid}/credentials") if c["type"] == "otp"]


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(lines) == 1 and lines[0].startswith("twostep: error: "), err
    return lines[0]


def test_queue_oldest_first_and_damaged_entries(twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin,
                                                realm: str) -> None:
    setup_realm(twostep)
    now = datetime.now(UTC)
    amy, ben = make_user("amy", otp=True), make_user("ben", otp=True)
    cat, dan = make_user("cat", otp=True), make_user("dan", otp=True)
    file_request(admin, realm, ben.id, "at the office", asked_at=now - timedelta(hours=1))
    file_request(admin, realm, amy.id, "lost <b>phone</b>\non the train", asked_at=now - timedelta(hours=2))
    join_index(admin, realm, cat.id)  # in the index, no credential
    file_request(admin, realm, dan.id, credential_data='["not", "an", "object"]')

    r = twostep("help", "list", "--json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)["requests"]
    assert [x["username"] for x in rows] == ["amy", "ben", "cat", "dan"]
    assert [x["state"] for x in rows] == ["open", "open", "damaged", "damaged"]
    assert rows[0]["message"] == "lost <b>phone</b>\non the train" and rows[0]["age_seconds"] >= 7190
    assert rows[2]["asked_at"] is None and rows[2]["age_seconds"] is None and "without a request" in rows[2]["damaged"]
    text = twostep("help", "list")
    assert text.code == 0 and len(text.out.splitlines()) == 4, text.out
    assert "[damaged" in text.out.splitlines()[3] and "'lost <b>phone</b>\\non the train'" in text.out

    # A request is a message, a damaged entry never anything more: the code is still asked of both,
    # and a damaged entry cannot be granted.
    for who in (amy, cat):
        assert browser().login(who.username, who.password).kind == "otp", who.username
    g = twostep("help", "grant", "dan")
    assert g.code != 0 and "damaged" in one_line_error(g.err)
    assert otp_types(admin, realm, dan.id) == ["otp"]
    d = twostep("help", "dismiss", "cat", "--reason", "stray entry")
    assert d.code == 0, d.err
    assert not in_index(admin, realm, cat.id)


def test_grant_from_cli_closes_request_and_user_signs_in_with_password(
        twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin, realm: str, mail: SmtpSink,
        tmp_path: Path) -> None:
    setup_realm(twostep)
    eve = make_user("eve", otp=True)
    file_request(admin, realm, eve.id, "phone fell in the lake")
    audit = tmp_path / "audit.jsonl"
    env = {"TWOSTEP_AUDIT_FILE": str(audit)}

    dry = twostep("help", "grant", "eve", "--password", "--dry-run", env=env)
    assert dry.code == 0 and "would close the help request" in dry.out and stored_request(admin, realm, eve.id)
    r = twostep("help", "grant", "eve", "--password", env=env)
    assert r.code == 0, r.err
    assert "user notified: sent" in r.out
    assert stored_request(admin, realm, eve.id) is None and not in_index(admin, realm, eve.id)
    rec = record_fields(admin, realm, eve.id)
    assert rec["marker"] == "true" and rec["reset_device"] == "true" and "help request" in rec["reason"]
    granted = datetime.strptime(rec["granted_at"], "%Y-%m-%dT%H:%M:%SZ")
    until = datetime.strptime(rec["until"], "%Y-%m-%dT%H:%M:%SZ")
    assert until - granted == timedelta(days=1), "the preset: a day (within the policy maximum of 7 days)"
    assert otp_types(admin, realm, eve.id) == [], "the lost device is gone"

    b = browser()
    b.login(eve.username, eve.password)
    assert b.logged_in(), b.page.summary() if b.page else None

    (ev,) = audit_events(audit, "help.grant")
    assert ev["username"] == "eve" and ev["until"] == rec["until"] and ev["devices_removed"] == 1
    (bev,) = audit_events(audit, "bypass.grant")
    assert bev["reset_device"] is True and bev["username"] == "eve"
    (msg,) = mail.wait_for("eve@example.test")
    assert "answered" in str(msg["Subject"]) and "Your password alone lets you in, until " in SmtpSink.body(msg)
    assert "phone fell" not in SmtpSink.body(msg)

    # A second answer is refused in one line, whichever it is.
    again = twostep("help", "grant", "eve", env=env)
    assert again.code != 0 and "no open help request" in one_line_error(again.err)
    dis = twostep("help", "dismiss", "eve", "--reason", "late", env=env)
    assert dis.code != 0 and "no open help request" in one_line_error(dis.err)
    assert len(audit_events(audit, "help.grant")) == 1 and audit_events(audit, "help.dismiss") == []
    assert len([m for m in mail.messages if "eve@" in str(m["To"])]) == 1


def test_grant_longer_than_policy_is_refused_and_preset_is_capped(twostep: Twostep, make_user: MakeUser, admin: Admin,
                                                                   realm: str) -> None:
    setup_realm(twostep, "--bypass-max", "8h")
    fay, gus = make_user("fay", otp=True), make_user("gus", otp=True)
    file_request(admin, realm, fay.id, "")
    file_request(admin, realm, gus.id, "")
    r = twostep("help", "grant", "fay", "--for", "2d")
    assert r.code == 2 and "at most 8h" in one_line_error(r.err)
    assert stored_request(admin, realm, fay.id) is not None and otp_types(admin, realm, fay.id) == ["otp"]
    bad = twostep("help", "grant", "fay", "--for", "soon")
    assert bad.code == 2 and "cannot read duration" in one_line_error(bad.err)
    ok = twostep("help", "grant", "gus")
    assert ok.code == 0, ok.err
    rec = record_fields(admin, realm, gus.id)
    span = datetime.strptime(rec["until"], "%Y-%m-%dT%H:%M:%SZ") - datetime.strptime(
        rec["granted_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert span == timedelta(hours=8), "the day's preset is cut to the policy maximum"


def test_grant_that_stopped_before_closing_is_finished_not_refused(twostep: Twostep, make_user: MakeUser, keycloak: Any,
                                                                   admin: Admin, realm: str) -> None:
    from twostep import bypass
    from twostep.actor import Actor
    from twostep.audit import MemorySink
    from twostep.clock import system_clock

    from tests.support.bypass_helpers import client

    setup_realm(twostep)
    ida = make_user("ida", otp=True)
    asked = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    file_request(admin, realm, ida.id, "", asked_at=asked)
    # What an answer does first, as if it had died right after writing the bypass (devices, request left).
    kc = client(keycloak.url, realm)
    req = bypass.GrantRequest(who=ida.id, reason=f"help request of {asked.strftime('%Y-%m-%dT%H:%M:%SZ')}: lost device",
                              duration=timedelta(hours=1))
    bypass.grant(kc, system_clock, MemorySink([]), Actor("tester@master", True, (("master", "tester"),)), req)
    until = record_fields(admin, realm, ida.id)["until"]
    r = twostep("help", "grant", "ida")
    assert r.code == 0, r.err
    assert "earlier answer" in r.out and stored_request(admin, realm, ida.id) is None
    assert otp_types(admin, realm, ida.id) == [] and record_fields(admin, realm, ida.id)["until"] == until
    # A bypass of another origin is not taken for an answer: refused as any grant over an active bypass.
    jay = make_user("jay", otp=True)
    file_request(admin, realm, jay.id, "")
    other = bypass.GrantRequest(who=jay.id, reason="travel", duration=timedelta(hours=1))
    bypass.grant(kc, system_clock, MemorySink([]), Actor("tester@master", True, (("master", "tester"),)), other)
    refused = twostep("help", "grant", "jay")
    assert refused.code == 5 and "already bypassed" in one_line_error(refused.err)
    assert stored_request(admin, realm, jay.id) is not None and otp_types(admin, realm, jay.id) == ["otp"]


def test_dismiss_needs_a_reason_and_changes_nothing_else(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                         admin: Admin,
                                                         realm: str, mail: SmtpSink, tmp_path: Path) -> None:
    setup_realm(twostep)
    hal = make_user("hal", otp=True)
    file_request(admin, realm, hal.id, "it is me, really")
    audit = tmp_path / "audit.jsonl"
    env = {"TWOSTEP_AUDIT_FILE": str(audit)}
    for args in (("help", "dismiss", "hal"), ("help", "dismiss", "hal", "--reason", "   ")):
        r = twostep(*args, env=env)
        assert r.code == 2 and "a reason is required" in one_line_error(r.err)
    assert stored_request(admin, realm, hal.id) is not None and in_index(admin, realm, hal.id)
    nobody = twostep("help", "dismiss", "nobody-here", "--reason", "x")
    assert nobody.code == 4 and "no user" in one_line_error(nobody.err)

    r = twostep("help", "dismiss", "hal", "--reason", "could not reach you by phone", env=env)
    assert r.code == 0, r.err
    assert stored_request(admin, realm, hal.id) is None and not in_index(admin, realm, hal.id)
    assert otp_types(admin, realm, hal.id) == ["otp"] and record_fields(admin, realm, hal.id) == {}
    assert browser().login(hal.username, hal.password).kind == "otp", "the second factor is still asked"
    (ev,) = audit_events(audit, "help.dismiss")
    assert ev["reason"] == "could not reach you by phone" and ev["username"] == "hal"
    (msg,) = mail.wait_for("hal@example.test")
    assert "declined" in str(msg["Subject"]) and "could not reach you by phone" in SmtpSink.body(msg)
    again = twostep("help", "dismiss", "hal", "--reason", "twice", env=env)
    assert again.code != 0 and "no open help request" in one_line_error(again.err)


def _metric(path: Path, name: str, realm: str) -> float:
    for fam in text_string_to_metric_families(path.read_text()):
        for s in fam.samples:
            if s.name == name and s.labels.get("realm") == realm:
                return float(s.value)
    raise AssertionError(f"{name} not in {path}")


def test_admins_emailed_once_per_request_across_sync_passes(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                            admin: Admin,
                                                            realm: str, mail: SmtpSink, tmp_path: Path) -> None:
    admin.post(f"/{realm}/groups", {"name": "helpdesk"})
    hd = next(g for g in admin.get(f"/{realm}/groups") if g["name"] == "helpdesk")
    admin.post(f"/{realm}/groups/{hd['id']}/children", {"name": "night"})
    ann = make_user("ann", groups=["/helpdesk"])
    nik = make_user("nik", groups=["/helpdesk/night"])
    bad = twostep("setup", "--no-service-client", "--help-admins", "helpdesk")
    assert bad.code == 2 and "group:PATH" in one_line_error(bad.err)
    missing = twostep("setup", "--no-service-client", "--help-admins", "group:/nope")
    assert missing.code == 2 and "no group" in one_line_error(missing.err)
    setup_realm(twostep, "--help-admins", "group:/helpdesk")
    policy = RealmPolicy.from_json(admin.get(f"/{realm}")["attributes"]["twostep.policy"])
    assert policy is not None and policy.help_admins == "group:/helpdesk"
    again = twostep("setup", "--no-service-client", "--dry-run")
    assert "no changes" in again.out, "the recipients are kept when not given again: " + again.out
    st = json.loads(twostep("status", "--json").out)
    (check,) = [c for c in st["checks"] if c["name"] == "help request e-mails"]
    assert check["ok"] and "2 recipient(s)" in check["detail"], check

    ivy, jon = make_user("ivy", otp=True), make_user("jon", otp=True)
    file_request(admin, realm, ivy.id, "new phone, same number", asked_at=datetime.now(UTC) - timedelta(minutes=30))
    # jon asks from the login page himself (the provider's step that setup put into the flow).
    admin.put(f"/{realm}", {"loginTheme": "twostep"})
    sent = ask(browser(), jon, "")
    assert 'data-twostep-help="sent"' in sent.text, sent.summary()
    audit = tmp_path / "audit.jsonl"
    textfile = tmp_path / "twostep.prom"
    env = {"TWOSTEP_AUDIT_FILE": str(audit)}
    for _ in range(2):
        r = twostep("sync", "--json", "--textfile", str(textfile), env=env)
        assert r.code == 0, r.out + r.err
        assert json.loads(r.out)["ok"], r.out
    for who in (ann, nik):
        got = mail.wait_for(f"{who.username}@example.test", count=2)
        assert len(got) == 2, "one e-mail per request, not one per pass"
        bodies = sorted(SmtpSink.body(m) for m in got)
        assert any('"ivy"' in b and "new phone, same number" in b for b in bodies)
        assert any('"jon"' in b for b in bodies)
    # Four to the admins, and jon's own notice from the provider when he filed (issue 24 item 5).
    assert sorted(str(m["To"]) for m in mail.messages).count("jon@example.test") == 1
    assert len(mail.messages) == 5
    stored = stored_request(admin, realm, ivy.id)
    assert stored is not None and stored["notified_at"], stored
    assert stored["message"] == "new phone, same number"
    assert len(audit_events(audit, "help.notify")) == 2
    assert _metric(textfile, "twostep_help_requests_open", realm) == 2
    assert _metric(textfile, "twostep_help_request_oldest_age_seconds", realm) >= 1790

    # Answered: the queue and the gauge follow at the next pass; no more mail.
    assert twostep("help", "dismiss", "jon", "--reason", "asked by mistake").code == 0
    assert twostep("sync", "--textfile", str(textfile)).code == 0
    assert _metric(textfile, "twostep_help_requests_open", realm) == 1
    assert len([m for m in mail.messages if "ann@" in str(m["To"]) or "nik@" in str(m["To"])]) == 4


def test_role_recipients_and_no_smtp_retries(twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str,
                                             tmp_path: Path) -> None:
    admin.post(f"/{realm}/roles", {"name": "helpers"})
    role = admin.get(f"/{realm}/roles/helpers")
    kim = make_user("kim")
    admin.post(f"/{realm}/users/{kim.id}/role-mappings/realm", [role])
    setup_realm(twostep, "--help-admins", "role:helpers")
    lou = make_user("lou", otp=True)
    file_request(admin, realm, lou.id, "")
    # No SMTP configured: nothing sent, so the request stays "not e-mailed" for the next pass.
    assert twostep("sync").code == 0
    stored = stored_request(admin, realm, lou.id)
    assert stored is not None and stored["notified_at"] == "", stored
    with SmtpSink() as sink:
        admin.put(f"/{realm}", {"smtpServer": sink.realm_settings()})
        assert twostep("sync").code == 0
        (msg,) = sink.wait_for("kim@example.test")
        assert '"lou"' in SmtpSink.body(msg)
        assert twostep("sync").code == 0
        assert len(sink.messages) == 1
    stored = stored_request(admin, realm, lou.id)
    assert stored is not None and stored["notified_at"], stored

    # A hand-edited, malformed help_admins: nobody is mailed, the policy stays readable, status says so.
    attrs = admin.get(f"/{realm}")["attributes"]
    attrs["twostep.policy"] = json.dumps({**json.loads(attrs["twostep.policy"]), "help_admins": "helpers"})
    admin.put(f"/{realm}", {"attributes": attrs})
    st = json.loads(twostep("status", "--json").out)
    (check,) = [c for c in st["checks"] if c["name"] == "help request e-mails"]
    assert not check["ok"] and "nobody is e-mailed" in check["detail"], check
    assert next(c for c in st["checks"] if c["name"] == "policy record")["ok"]


def test_help_admins_is_read_strictly_but_never_damages_the_record() -> None:
    base = {"enforcement": {"mode": "all", "grace_days": 0}}
    for good in ("group:/helpdesk", "role:helpers", "group:/a/b c"):
        assert help_admins_valid(good)
        policy = RealmPolicy.from_json(json.dumps({**base, "help_admins": good}))
        assert policy is not None and policy.help_admins == good
    for bad in ("helpdesk", "group:", "role: ", "user:bob", "group: /x", 7, None, ["role:x"]):
        assert not help_admins_valid(bad), bad
        # A key the provider ignores never makes the record unreadable: the policy stands, nobody is mailed.
        assert readable({**base, "help_admins": bad}), bad
        policy = RealmPolicy.from_json(json.dumps({**base, "help_admins": bad}))
        assert policy is not None and policy.help_admins == "" and policy.bypass_max_s == 604800, bad
    assert "help_admins" not in RealmPolicy().to_json(), "absent when nobody: older records stay as they were"


def test_help_gauges_carried_over_by_a_cron_run_that_could_not_read(tmp_path: Path) -> None:
    import os
    import time

    from twostep import metrics

    path = tmp_path / "twostep.prom"
    metrics.reset_for_tests()
    try:
        metrics.record_help("acme", open_count=3, oldest=time.time() - 5000)
        metrics.write_textfile(str(path))
        os.utime(path, (time.time() - 1000, time.time() - 1000))  # written 1000 s ago
        metrics.reset_for_tests()
        metrics.load_textfile(str(path))
        metrics.record_failed_pass("acme")
        metrics.write_textfile(str(path))
        assert _metric(path, "twostep_help_requests_open", "acme") == 3
        assert 5990 <= _metric(path, "twostep_help_request_oldest_age_seconds", "acme") <= 6100
    finally:
        metrics.reset_for_tests()


@pytest.mark.parametrize("lang", ["en", "de", "ru"])
def test_help_mails_in_every_language(lang: str) -> None:
    from twostep.notify import LOCALIZED_SUBJECTS, SUBJECTS, render

    now = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    user = {"username": "eve", "firstName": "Eve", "attributes": {"locale": [lang]}}
    cases = {"help.grant": {"until": "2026-12-02T23:30:00Z", "asked_at": "2026-12-01T23:00:00Z"},
             "help.dismiss": {"reason": "could not reach you", "asked_at": "2026-12-01T23:00:00Z"},
             "help.new": {"requester": "ann", "asked_at": "2026-12-01T23:00:00Z", "message": "new phone"}}
    for kind, details in cases.items():
        subject, body = render(kind, user, "acme", details, "boss", now)
        assert subject == (SUBJECTS if lang == "en" else LOCALIZED_SUBJECTS[lang])[kind]
        assert "23:00 UTC" in body and "2026-12-01T23:00:00Z" not in body, (lang, kind, body)
        assert "Eve" in body and "{{" not in body
    assert "23:30 UTC" in render("help.grant", user, "acme", cases["help.grant"], "boss", now)[1]
    assert "could not reach you" in render("help.dismiss", user, "acme", cases["help.dismiss"], "boss", now)[1]
    new = render("help.new", user, "acme", cases["help.new"], "boss", now)[1]
    assert "ann" in new and "new phone" in new
