"""E-mail to the user when an admin changes their second factor, through the realm's own SMTP
settings, received by a real SMTP server on loopback (aiosmtpd); and no secret anywhere."""

from __future__ import annotations

import email
import json
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from twostep.audit import MemorySink
from twostep.notify import notify_user

from tests.conftest import Admin, Keycloak, MakeUser, Twostep
from tests.support.bypass_helpers import audit_events, record_fields
from tests.support.locale import enable_locales, set_user_locale
from tests.support.twofactor import kc_client, setup_realm


class Sink:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def wait(self, n: int, timeout: float = 20) -> list[Message]:
        end = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.05)
        return self.messages


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_sink(admin: Admin, realm: str) -> Iterator[Sink]:
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    admin.put(f"/{realm}", {"smtpServer": {"host": "127.0.0.1", "port": str(port), "from": "it@example.test",
                                           "fromDisplayName": "Example IT", "ssl": "false", "starttls": "false",
                                           "auth": "false"}})
    try:
        yield sink
    finally:
        controller.stop()


def body(msg: Message) -> str:
    part = msg.get_payload(decode=True)
    assert isinstance(part, bytes)
    return part.decode().replace("\r\n", "\n")  # SMTP line ends; the templates' lines are what we check


def test_admin_actions_email_the_user_without_secrets(twostep: Twostep, make_user: MakeUser, smtp_sink: Sink,
                                                      tmp_path: Path,
                                                      admin: Admin, realm: str) -> None:
    setup_realm(twostep)
    joan = make_user("joan", otp=True, email="joan@example.test")
    audit_file = tmp_path / "audit.jsonl"
    env = {"TWOSTEP_AUDIT_FILE": str(audit_file)}
    out = tmp_path / "codes.txt"
    r = twostep("codes", "generate", "joan", "--count", "6", "--out", str(out), "--reason", "lost phone", env=env)
    assert r.code == 0, r.err
    assert "user notified: sent" in r.out
    codes = [ln.split()[-1] for ln in out.read_text().splitlines() if ln.strip().startswith("#")]
    r2 = twostep("otp", "reset", "joan", "--reason", "phone stolen", env=env)
    assert r2.code == 0, r2.err
    assert "user notified: sent" in r2.out
    r3 = twostep("codes", "revoke", "joan", env=env)
    assert r3.code == 0, r3.err

    msgs = smtp_sink.wait(3)
    assert len(msgs) == 3
    gen, reset, revoke = msgs
    for m in msgs:
        assert m["To"] == "joan@example.test"
        assert "it@example.test" in m["From"] and "Example IT" in m["From"]
    assert "backup codes" in gen["Subject"]
    text = body(gen)
    assert "6 backup codes" in text and "admin@master via cli" in text and "Reason given: lost phone" in text
    assert "no longer work" in text and "Joan Test" in text
    assert "authenticator device was reset" in reset["Subject"]
    assert "set up a new device" in body(reset) and "phone stolen" in body(reset)
    assert "revoked" in revoke["Subject"]

    everything = "".join(m.as_string() for m in msgs)
    assert joan.totp_secret and joan.totp_secret not in everything
    for code in codes:
        assert code not in everything and code.replace("-", "") not in everything

    events = [json.loads(line) for line in audit_file.read_text().splitlines()]
    notes = [e for e in events if e["event"] == "notify"]
    assert [(e["about"], e["outcome"]) for e in notes] == [
        ("codes.generate", "sent"), ("otp.reset", "sent"), ("codes.revoke", "sent")]


def test_notification_skipped_is_audited(twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, admin: Admin,
                                         realm: str) -> None:
    setup_realm(twostep)
    kim = make_user("kim", otp=True)
    kc = kc_client(keycloak.url, realm)
    user = kc.get_user(kim.id)
    sink = MemorySink([])
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    assert notify_user(kc, user, "otp.reset", {}, sink, "admin:x", now) == \
        "skipped: the realm has no SMTP server configured"
    no_mail = dict(user, email="")
    assert notify_user(kc, no_mail, "otp.reset", {}, sink, "admin:x", now) == \
        "skipped: the user has no e-mail address"
    admin.put(f"/{realm}", {"smtpServer": {"host": "127.0.0.1", "port": "2", "from": "it@example.test",
                                           "auth": "true", "user": "mailer", "password": "pw"}})
    assert notify_user(kc, user, "otp.reset", {}, sink, "admin:x", now).startswith("skipped: SMTP needs a password")
    assert [e["outcome"] for e in sink.events] == ["skipped", "skipped", "skipped"]
    assert all(e["event"] == "notify" and e["about"] == "otp.reset" for e in sink.events)
    with pytest.raises(Exception, match="not allowed"):
        notify_user(kc, user, "otp.reset", {"totp_secret": "X"}, sink, "admin:x", now)
    r = twostep("codes", "generate", "kim", "--count", "5")
    assert r.code == 0 and "user notified: skipped: SMTP needs a password" in r.out


def test_daily_sync_reminds_users_in_grace_without_a_second_factor(
    twostep: Twostep, make_user: MakeUser, smtp_sink: Sink, tmp_path: Path, admin: Admin, realm: str
) -> None:
    setup_realm(twostep, "--enforce", "all", "--grace-days", "7")
    newbie = make_user("newbie")
    make_user("ready", otp=True)
    dry = json.loads(twostep("sync", "--remind", "--dry-run", "--json").out)
    assert [(a["kind"], a["target"]) for a in dry["actions"]] == [("remind", "newbie")], dry
    assert smtp_sink.messages == [], "a dry run sends nothing"
    audit = tmp_path / "audit.jsonl"
    r = twostep("sync", "--remind", "--json", env={"TWOSTEP_AUDIT_FILE": str(audit)})
    assert r.code == 0, r.err
    assert json.loads(r.out)["reminded"] == 1
    [msg] = smtp_sink.wait(1)
    assert msg["To"] == newbie.username + "@example.test"
    assert msg["Subject"] == "Please set up two-step sign-in for your account"
    # The deadline in words, as of the run (7 days of grace from the account's creation moments ago).
    # Times are worded to the whole second: a run in the very second the account was made has all
    # 7 days left, any later one less (the run's second is the audit event's `ts`).
    rep = admin.get(f"/{realm}/users/{newbie.id}")
    due = datetime.fromtimestamp(rep["createdTimestamp"] / 1000, UTC) + timedelta(days=7)
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    (sent,) = (e for e in events if e["event"] == "notify")
    ran = datetime.strptime(sent["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    left = "7 days" if due.replace(microsecond=0) - ran >= timedelta(days=7) else "6 days, 23 hours"
    assert (f'your account "newbie" must use two-step sign-in. Please set it up\n'
            f"by {due:%H:%M} UTC on {due:%b} {due.day}, {due.year}, {left} left:\n") in body(msg)
    assert [(e["event"], e["about"], e["outcome"]) for e in events if e["event"] == "notify"] == [
        ("notify", "enroll.reminder", "sent")]
    plain = twostep("sync", "--json")
    assert json.loads(plain.out)["reminded"] == 0 and len(smtp_sink.messages) == 1, "only a run with --remind"
    watch = twostep("sync", "--watch", "--remind")
    assert watch.code == 2 and "--remind goes with --once" in watch.err


def subject(msg: Message) -> str:
    return str(make_header(decode_header(msg["Subject"])))


def test_emails_are_in_the_recipients_language_with_friendly_times(
    twostep: Twostep, make_user: MakeUser, smtp_sink: Sink, tmp_path: Path, admin: Admin, realm: str
) -> None:
    """The user's `locale` attribute (hans: de), else the realm default (olga: ru), else en (eddy, once
    the realm has no default); the audit keeps ISO-8601."""
    setup_realm(twostep)
    enable_locales(admin, realm, default="ru")
    hans = make_user("hans", otp=True)
    set_user_locale(admin, realm, hans.id, "de")
    olga = make_user("olga", otp=True)
    audit = tmp_path / "audit.jsonl"
    env = {"TWOSTEP_AUDIT_FILE": str(audit)}
    pw_only = ("--password",)  # the e-mail of a password-only bypass ("paused")
    assert twostep("bypass", "grant", "hans", "--for", "8h", "--reason", "Handy verloren", *pw_only, env=env).code == 0
    assert twostep("bypass", "grant", "olga", "--for", "1d", "--reason", "потеряла телефон", *pw_only,
                   env=env).code == 0
    admin.put(f"/{realm}", {"internationalizationEnabled": False})
    ed = make_user("eddy", otp=True)
    assert twostep("bypass", "grant", "eddy", "--for", "90m", "--reason", "lost phone", "--password", env=env).code == 0
    msgs = {m["To"]: m for m in smtp_sink.wait(3)}
    assert len(msgs) == 3, list(msgs)

    def times(user_id: str) -> tuple[datetime, datetime]:
        rec = record_fields(admin, realm, user_id)
        return (datetime.fromisoformat(rec["granted_at"].replace("Z", "+00:00")),
                datetime.fromisoformat(rec["until"].replace("Z", "+00:00")))

    granted, until = times(hans.id)
    de = msgs["hans@example.test"]
    assert subject(de) == "Die Zwei-Schritt-Anmeldung wurde für Ihr Konto ausgesetzt"
    tag = "heute" if until.date() == granted.date() else "morgen"
    assert (f"Zwei-Schritt-Anmeldung für Ihr Konto „hans“\nheute um {granted:%H:%M} UTC ausgesetzt, "
            f"bis {tag} {until:%H:%M} UTC, noch 8 Stunden.\n") in body(de), body(de)
    assert "Angegebener Grund: Handy verloren" in body(de)

    granted, until = times(olga.id)
    ru = msgs["olga@example.test"]
    assert subject(ru) == "Двухэтапный вход для вашей учётной записи приостановлен"
    assert (f"Администратор (admin@master via cli) сегодня в {granted:%H:%M} UTC приостановил двухэтапный вход для "
            f"вашей учётной записи\n«olga»: до {until:%H:%M} UTC завтра, осталось: 1 день.\n") in body(ru), body(ru)

    granted, until = times(ed.id)
    en = msgs["eddy@example.test"]
    tag = "today" if until.date() == granted.date() else "tomorrow"
    assert subject(en) == "Two-step sign-in was paused for your account"
    assert (f'paused two-step sign-in for your account "eddy"\ntoday at {granted:%H:%M} UTC, '
            f"until {until:%H:%M} UTC {tag}, 1 hour, 30 minutes left.\n") in body(en), body(en)

    # The audit keeps the machine form.
    grants = audit_events(audit, "bypass.grant")
    assert [g["until"] for g in grants] == [record_fields(admin, realm, u.id)["until"] for u in (hans, olga, ed)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", g["until"]) for g in grants)
