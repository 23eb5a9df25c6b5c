"""`twostep bypass`: grant / extend / revoke / list / show, proven by real logins."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Admin, Browser, MakeUser, Twostep
from tests.support.bypass_helpers import audit_events, record_fields
from tests.support.twofactor import finish_sign_in


def _setup(twostep: Twostep) -> None:
    # Backup codes only offered at enrollment: these users sign in with a code and are not held up by the
    # codes page that `required` shows to OTP users without codes (tests/test_provider_bypass.py has it).
    r = twostep("setup", "--no-service-client", "--backup-codes", "offered")
    assert r.code == 0, r.err



def test_grant_lets_user_in_with_password_alone_others_still_asked(
    twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin, realm: str, tmp_path: Path
) -> None:
    _setup(twostep)
    alice = make_user("alice", otp=True)
    bob = make_user("bob", otp=True)
    audit = tmp_path / "audit.jsonl"
    env = {"TWOSTEP_AUDIT_FILE": str(audit)}
    r = twostep("bypass", "grant", "alice", "--for", "8h", "--reason", "lost phone", "--password", env=env)
    assert r.code == 0, r.err
    assert record_fields(admin, realm, alice.id)["marker"] == "true"

    b = browser()
    b.login(alice.username, alice.password)
    assert b.logged_in(), "during the bypass the password alone is enough"
    b2 = browser()
    assert b2.login(bob.username, bob.password).kind == "otp", "others are still asked for their code"

    listed = twostep("bypass", "list", "--json")
    rows = json.loads(listed.out)["bypasses"]
    assert [x["username"] for x in rows] == ["alice"]
    assert rows[0]["reason"] == "lost phone" and 8 * 3600 - 120 < rows[0]["seconds_left"] <= 8 * 3600
    text = twostep("bypass", "list")
    assert "alice" in text.out and "lost phone" in text.out and "admin@master" in text.out
    shown = json.loads(twostep("bypass", "show", "alice@example.test", "--json").out)
    assert shown["state"] == "active" and shown["granted_by"] == "admin@master via cli"

    rv = twostep("bypass", "revoke", "alice", "--reason", "found it", env=env)
    assert rv.code == 0, rv.err
    attrs = record_fields(admin, realm, alice.id)
    assert "marker" not in attrs and "until" not in attrs
    assert admin.get(f"/{realm}/users/{alice.id}/sessions") == [], (
        "the session opened during the bypass ended"
    )
    b3 = browser()
    assert b3.login(alice.username, alice.password).kind == "otp"
    events = audit_events(audit)
    assert [e["event"] for e in events if e["event"] != "notify"] == ["bypass.grant", "bypass.revoke"]
    assert [e["event"] for e in events].count("notify") == 1, "the grant is notified (or its skip audited)"
    assert not [r for r in admin.get(f"/{realm}/roles") if r["name"].startswith("twostep-lock-")]


def test_extend_needs_flag_and_is_recorded(twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str,
                                           tmp_path: Path) -> None:
    _setup(twostep)
    carol = make_user("carol", otp=True)
    env = {"TWOSTEP_AUDIT_FILE": str(tmp_path / "a.jsonl")}
    assert twostep("bypass", "grant", "carol", "--for", "1h", "--reason", "trip", env=env).code == 0
    first = record_fields(admin, realm, carol.id)["until"]
    again = twostep("bypass", "grant", "carol", "--for", "1d", "--reason", "longer trip", env=env)
    assert again.code != 0 and again.err.startswith("twostep: error:") and "--extend" in again.err
    assert record_fields(admin, realm, carol.id)["until"] == first
    ext = twostep(
        "bypass", "grant", "carol", "--for", "1d", "--reason", "longer trip", "--extend", "--json", env=env
    )
    assert ext.code == 0, ext.err
    assert json.loads(ext.out)["action"] == "bypass.extend"
    attrs = record_fields(admin, realm, carol.id)
    assert attrs["extended"] == "1" and attrs["until"] != first
    assert attrs["reason"] == "longer trip"
    events = [e for e in audit_events(tmp_path / "a.jsonl") if e["event"] != "notify"]
    assert [e["event"] for e in events] == ["bypass.grant", "bypass.extend"]
    assert events[1]["previous_until"] == first


def test_reset_device_removes_otp_and_ends_sessions(
    twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin, realm: str
) -> None:
    _setup(twostep)
    dan = make_user("dan", otp=True)
    b = browser()
    b.login(dan.username, dan.password)
    b.submit({"otp": dan.code()})
    finish_sign_in(b, admin, realm)
    assert len(admin.get(f"/{realm}/users/{dan.id}/sessions")) == 1
    dry = twostep(
        "bypass", "grant", "dan", "--for", "1d", "--reason", "lost phone", "--reset-device", "--dry-run"
    )
    assert dry.code == 0 and "would remove the user's OTP devices" in dry.out
    assert [c["type"] for c in admin.get(f"/{realm}/users/{dan.id}/credentials")].count("otp") == 1
    r = twostep("bypass", "grant", "dan", "--for", "1d", "--reason", "lost phone", "--password", "--reset-device")
    assert r.code == 0, r.err
    assert "otp" not in [c["type"] for c in admin.get(f"/{realm}/users/{dan.id}/credentials")]
    assert admin.get(f"/{realm}/users/{dan.id}/sessions") == []
    assert b.open().kind == "login", "the lost phone's session is gone"
    b2 = browser()
    b2.login(dan.username, dan.password)
    assert b2.logged_in(), "not forced to enroll during the bypass"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--for", "0m"], "longer than zero"),
        (["--for", "0"], "cannot read duration"),
        (["--for", "-1h"], "cannot read duration"),
        (["--for", "8d"], "at most 7d"),
        (["--for", "4m"], "at least 5 minutes"),
        (["--for", "soon"], "cannot read duration"),
        (["--until", "2000-01-01T00:00:00Z"], "not in the future"),
        (["--until", "tomorrow"], "cannot read --until"),
        (["--for", "1h", "--until", "2099-01-01T00:00:00Z"], "exactly one"),
        ([], "exactly one"),
    ],
)
def test_bad_durations_change_nothing(twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str,
                                      args: list[str], needle: str) -> None:
    _setup(twostep)
    eve = make_user("eve", otp=True)
    before = admin.get(f"/{realm}/users/{eve.id}")
    r = twostep("bypass", "grant", "eve", *args, "--reason", "x")
    assert r.code != 0
    assert r.err.startswith("twostep: error:") and needle in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert admin.get(f"/{realm}/users/{eve.id}") == before


def test_bad_users_self_bypass_and_empty_revoke(
    twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str, tmp_path: Path
) -> None:
    _setup(twostep)
    frank = make_user("frank", otp=True)
    # Two people sharing one e-mail (allowed by this realm's settings): the e-mail is ambiguous.
    admin.put(f"/{realm}", {"duplicateEmailsAllowed": True, "loginWithEmailAllowed": False})
    make_user("amb1", email="amb@example.test")
    make_user("amb2", email="amb@example.test")
    audit = tmp_path / "audit.jsonl"
    env = {"TWOSTEP_AUDIT_FILE": str(audit)}
    cases = [
        (("bypass", "grant", "nobody", "--for", "1h", "--reason", "x"), {}, "no user 'nobody'"),
        (("bypass", "grant", "amb@example.test", "--for", "1h", "--reason", "x"), {}, "ambiguous"),
        (("bypass", "grant", "frank", "--for", "1h"), {}, "reason is required"),
        (
            ("bypass", "grant", "frank", "--for", "1h", "--reason", "x"),
            {"TWOSTEP_ACTOR": "frank"},
            "yourself",
        ),
        (
            ("bypass", "grant", "frank@example.test", "--for", "1h", "--reason", "x"),
            {"TWOSTEP_ACTOR": "Frank"},
            "yourself",
        ),
        (("bypass", "revoke", "frank"), {}, "no bypass to revoke"),
        (
            ("bypass", "grant", "frank", "--for", "1h", "--reason", "x", "--reset-device", "--keep-sessions"),
            {},
            "always ends",
        ),
    ]
    before = admin.get(f"/{realm}/users/{frank.id}")
    for args, extra, needle in cases:
        r = twostep(*args, env={**env, **extra})
        assert r.code != 0, args
        assert r.err.startswith("twostep: error:") and needle in r.err, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1
    assert admin.get(f"/{realm}/users/{frank.id}") == before
    assert audit_events(audit) == []

    # The one exception: break-glass with operator credentials, marked in the audit.
    bg = twostep(
        "bypass",
        "grant",
        "frank",
        "--for",
        "1h",
        "--reason",
        "sole admin lost phone",
        "--break-glass",
        env={**env, "TWOSTEP_ACTOR": "frank"},
    )
    assert bg.code == 0, bg.err
    events = [e for e in audit_events(audit) if e["event"] != "notify"]
    assert [e["event"] for e in events] == ["bypass.grant", "bypass.break_glass"]
    assert events[0]["break_glass"] is True and events[0]["self_bypass"] is True


def test_break_glass_refused_with_service_account(
    twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    assert twostep("setup", "--secret-file", str(secret_file)).code == 0
    gina = make_user("gina", otp=True)
    env = {
        "TWOSTEP_CLIENT_ID": "twostep-cli",
        "TWOSTEP_CLIENT_SECRET": secret_file.read_text().strip(),
        "TWOSTEP_ADMIN_USERNAME": "",
        "TWOSTEP_ADMIN_PASSWORD": "",
        "TWOSTEP_ACTOR": "gina",
    }
    r = twostep("bypass", "grant", "gina", "--for", "1h", "--reason", "x", "--break-glass", env=env)
    assert r.code != 0 and "operator credentials" in r.err
    r = twostep("bypass", "grant", "gina", "--for", "1h", "--reason", "x", env=env)
    assert r.code != 0 and "yourself" in r.err
    assert "marker" not in record_fields(admin, realm, gina.id)
    ok = twostep(
        "bypass", "grant", "gina", "--for", "1h", "--reason", "x", env={**env, "TWOSTEP_ACTOR": "helpdesk"}
    )
    assert ok.code == 0, ok.err
    assert record_fields(admin, realm, gina.id)["by"] == f"helpdesk@{realm} via service account twostep-cli"


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _secs(later: datetime, earlier: datetime) -> int:
    return int((later.replace(microsecond=0) - earlier.replace(microsecond=0)).total_seconds())


def _en_left(secs: int) -> str:
    hours, minutes = divmod(secs // 60, 60)
    return f"{hours} hours" + (f", {minutes} minute{'s' if minutes != 1 else ''}" if minutes else "")


def _de_left(secs: int) -> str:
    hours, minutes = divmod(secs // 60, 60)
    return f"{hours} Stunden" + (f", {minutes} Minute{'n' if minutes != 1 else ''}" if minutes else "")


def _ru_unit(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return f"{n} {one}"
    if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return f"{n} {few}"
    return f"{n} {many}"


def _ru_left(secs: int) -> str:
    hours, minutes = divmod(secs // 60, 60)
    return " ".join([_ru_unit(hours, "час", "часа", "часов")]
                    + ([_ru_unit(minutes, "минута", "минуты", "минут")] if minutes else []))


def test_text_output_has_friendly_times_and_json_keeps_iso(
    twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str
) -> None:
    """`bypass list/show` and `otp list` word their times in --locale / $LANG (default en); --json
    keeps ISO-8601. The clock of the CLI is the real one: the text is checked against every value the
    seconds between before and after the command allow."""
    _setup(twostep)
    dora = make_user("dora", otp=True)
    done = twostep("bypass", "grant", "dora", "--for", "8h", "--reason", "lost phone", "--password")
    assert done.code == 0, done.err
    rec = record_fields(admin, realm, dora.id)
    until, granted = _iso(rec["until"]), _iso(rec["granted_at"])
    tag = "today" if until.date() == granted.date() else "tomorrow"
    assert done.out.splitlines()[0] in {
        f"done: set the bypass marker on dora until {until:%H:%M} UTC {tag}, {left} left"
        for left in ("8 hours", "7 hours, 59 minutes")}, done.out

    listed = json.loads(twostep("bypass", "list", "--json").out)
    assert [(r["username"], r["until"]) for r in listed["bypasses"]] == [("dora", rec["until"])]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listed["now"])
    shown = json.loads(twostep("bypass", "show", "dora", "--json", "--locale", "ru").out)
    assert shown["until"] == rec["until"] and shown["granted_at"] == rec["granted_at"]

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[str, list[datetime]]:
        before = datetime.now(UTC)
        r = twostep(*args, env=env)
        assert r.code == 0, r.err
        after = datetime.now(UTC)
        return r.out, [before + timedelta(seconds=s) for s in range(_secs(after, before) + 2)]

    def day(ts: datetime, now: datetime, words: tuple[str, str, str]) -> str:
        return words[(ts.date() - now.date()).days + 1]

    out, nows = run("bypass", "list")
    assert out.strip() in {
        f"dora  until {until:%H:%M} UTC {day(until, n, ('yesterday', 'today', 'tomorrow'))}, "
        f"{_en_left(_secs(until, n))} left  by admin@master via cli  reason: lost phone" for n in nows}, out

    out, nows = run("bypass", "list", env={"LANG": "de_DE.UTF-8"})
    assert out.strip() in {
        f"dora  bis {day(until, n, ('gestern', 'heute', 'morgen'))} {until:%H:%M} UTC, "
        f"noch {_de_left(_secs(until, n))}"
        f"  by admin@master via cli  reason: lost phone" for n in nows}, out

    out, nows = run("bypass", "show", "dora", "--locale", "ru")
    lines = out.splitlines()
    assert "kind: password" in lines, lines
    lines.remove("kind: password")
    assert lines[2] in {f"until: до {until:%H:%M} UTC {day(until, n, ('вчера', 'сегодня', 'завтра'))}, "
                        f"осталось: {_ru_left(_secs(until, n))}" for n in nows}, lines
    assert lines[3] in {f"time left: {_ru_left(_secs(until, n))}" for n in nows}, lines
    assert lines[5] in {f"granted at: {day(granted, n, ('вчера', 'сегодня', 'завтра'))} в {granted:%H:%M} UTC, "
                        + _ru_unit(_secs(n, granted), "секунду", "секунды", "секунд") + " назад"
                        for n in nows if _secs(n, granted) < 60}, lines

    [otp] = [c for c in admin.get(f"/{realm}/users/{dora.id}/credentials") if c["type"] == "otp"]
    created = datetime.fromtimestamp(otp["createdDate"] // 1000, UTC)
    out, nows = run("otp", "list", "dora", env={"TWOSTEP_LOCALE": "en"})
    ago = {_secs(n, created) for n in nows}
    assert out.splitlines()[1] in {
        f"  - {otp.get('userLabel') or '(no label)'}  created "
        f"{day(created, nows[0], ('yesterday', 'today', 'tomorrow'))} {created:%H:%M} UTC, "
        + (f"{s} seconds ago" if s < 60 else f"{s // 60} minute{'s' if s >= 120 else ''} ago")
        + f"  id {otp['id']}" for s in ago}, out

    out, nows = run("sync", "--dry-run")
    summary = out.splitlines()[0]
    assert any(summary.endswith(f"active bypasses 1, next expiry {day(until, n, ('yesterday', 'today', 'tomorrow'))} "
                                f"{until:%H:%M} UTC, in {_en_left(_secs(until, n))}") for n in nows), out

    bad = twostep("bypass", "list", "--locale", "fr")
    assert bad.code == 2 and bad.out == ""
    assert bad.err == "twostep: error: --locale 'fr' is not supported: use one of en, de, ru\n"
