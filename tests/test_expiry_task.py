"""The provider's expiry task (docs/provider.md, "The expiry task"), end to end on a real Keycloak
with the JAR and no sync process at all: a bypass that ends takes the sessions opened during it
with it (online, offline, the SSO cookie), its record and index entry, and leaves one admin event.

The harness runs the task every 5 s for realms named `exp-*` (tests/conftest.py,
EXPIRY_TASK_OPTIONS); this module's realms have that name. Every wait polls with a deadline of the
task's interval (as its heartbeat reports it) + 10 s after the bypass's end."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from twostep import bypass_end, bypass_index
from twostep.records import CredentialStore

from tests.conftest import Admin, Keycloak, MakeUser, Twostep, User
from tests.support.bypass_helpers import client, utcnow
from tests.support.login import LoginDriver
from tests.support.twofactor import setup_realm
from tests.test_bypass_hardening import OFFLINE, offline_token, refresh

HEARTBEAT = "twostep.expiry_task"


REALM_PREFIX = "exp-"  # served by the harness's expiry task (tests/conftest.py, realm)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def heartbeat(admin: Admin, realm: str) -> dict[str, Any] | None:
    roots = [g for g in admin.get(f"/{realm}/groups", search="twostep-bypass", exact="true",
                                       briefRepresentation="false")
             if g["name"] == "twostep-bypass"]
    if not roots:
        return None
    value = (roots[0].get("attributes") or {}).get(HEARTBEAT)
    return dict(json.loads(value[0])) if value else None


def wait_for(what: str, check: Callable[[], bool], deadline: float, step: float = 0.5) -> None:
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within the deadline: {what}")
        time.sleep(step)


def task_interval(admin: Admin, realm: str) -> float:
    """The task's interval as its heartbeat says (it writes one at its first run in a realm)."""
    beat: dict[str, Any] = {}

    def seen() -> bool:
        beat.update(heartbeat(admin, realm) or {})
        return bool(beat)

    wait_for("the task's first heartbeat", seen, time.monotonic() + 60)
    return float(beat["interval_s"])


def write_record(keycloak: Keycloak, realm: str, user: User, granted: datetime, until: datetime) -> None:
    """The record and its index entry, written as `bypass grant` writes them (CredentialStore), with a
    window shorter than the command's 5-minute minimum."""
    kc = client(keycloak.url, realm)
    fields = {"marker": "true", "until": _iso(until), "granted_at": _iso(granted), "by": "tester@master via cli",
              "reason": "lost phone", "extended": "0", "reset_device": "false"}
    CredentialStore().write(kc, kc.get_user(user.id), fields)


def expiry_events(admin: Admin, realm: str, uid: str) -> list[dict[str, Any]]:
    events = admin.get(f"/{realm}/admin-events", max="500")
    return [e for e in events if e.get("resourcePath") == f"twostep/users/{uid}/bypass"]


def test_bypass_end_takes_the_window_sessions_record_and_entry_with_one_event(
        twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, admin: Admin, realm: str) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    admin.put(f"/{realm}/events/config", {"adminEventsEnabled": True, "adminEventsDetailsEnabled": True})
    interval = task_interval(admin, realm)
    st = twostep("status", "--json")
    checks = {c["name"]: c for c in json.loads(st.out)["checks"]}
    assert checks["bypass expiry"]["ok"], checks["bypass expiry"]
    assert checks["bypass expiry"]["detail"].startswith(f"in Keycloak, every {int(interval)} s;"), checks
    olga: User = make_user("olga", otp=True)

    # Before the window: a sign-in with the second factor and an offline token, and one for an SSO
    # cookie (Keycloak drops the online session of a sign-in made for offline_access at the code
    # exchange: OAuth2GrantTypeBase, FIRST_OFFLINE_ACCESS).
    before_offline = LoginDriver(keycloak.url, realm)
    before_offline.login(olga.username, olga.password, **OFFLINE)
    before_offline.submit({"otp": olga.code()})
    token_before = offline_token(before_offline)
    before = LoginDriver(keycloak.url, realm)
    before.login(olga.username, olga.password)
    before.submit({"otp": olga.code(time.time() + 30)})  # a code is used once: the next period's
    assert before.logged_in(), before.page.summary() if before.page else "no page"
    time.sleep(bypass_end.SESSION_SKEW_MS / 1000 + 1)  # the window is widened by the skew on each side

    granted = utcnow().replace(microsecond=0)
    until = granted + timedelta(seconds=45)
    write_record(keycloak, realm, olga, granted, until)
    kc = client(keycloak.url, realm)
    assert len(bypass_index.of_user(kc, olga.id)) == 1

    # During the window: the password alone, an offline token, and an SSO cookie.
    during_offline = LoginDriver(keycloak.url, realm)
    during_offline.login(olga.username, olga.password, **OFFLINE)
    assert during_offline.logged_in(), "the password alone during the bypass"
    token_during = offline_token(during_offline)
    during = LoginDriver(keycloak.url, realm)
    during.login(olga.username, olga.password)
    assert during.logged_in(), "the password alone during the bypass"
    assert refresh(keycloak.url, realm, token_during).status_code == 200

    end = time.monotonic() + max(0.0, (until - utcnow()).total_seconds())
    deadline = end + interval + 10
    while time.monotonic() < end:
        time.sleep(0.5)

    def refused() -> bool:
        r = refresh(keycloak.url, realm, token_during)
        return r.status_code == 400 and r.json().get("error") == "invalid_grant"

    wait_for("the window's offline token refused", refused, deadline)
    creds = [c["type"] for c in admin.get(f"/{realm}/users/{olga.id}/credentials")]
    assert "twostep-bypass" not in creds
    wait_for("the index entry gone", lambda: not bypass_index.of_user(kc, olga.id), deadline)

    page = during.open(prompt="none")
    assert "error=login_required" in page.url, page.summary()

    events = expiry_events(admin, realm, olga.id)
    assert len(events) == 1, events
    details = json.loads(events[0]["representation"])
    print(f"bypass end -> its sessions ended (admin event time): {events[0]['time'] / 1000 - until.timestamp():.1f} s")
    assert (details["action"], details["username"], details["until"]) == ("bypass.expire", "olga", _iso(until))
    assert (details["sessions_ended"], details["offline_sessions_ended"]) == ("1", "1"), details
    assert "lost phone" == details["grant_reason"]

    # The session from before the window was opened with the second factor: it is kept (as revoke keeps it).
    assert refresh(keycloak.url, realm, token_before).status_code == 200
    before.open(prompt="none")
    assert before.logged_in(), before.page.summary() if before.page else "no page"

    # A sync pass afterwards (fallback path) finds nothing left to end: one end, one record of it.
    synced = twostep("sync", "--json")
    assert synced.code == 0, synced.err
    assert json.loads(synced.out)["expired"] == 0

    # A later run changes nothing: still one event.
    first = heartbeat(admin, realm) or {}
    wait_for("a later run", lambda: (heartbeat(admin, realm) or {}).get("at") != first.get("at"),
             time.monotonic() + 60 + interval)
    assert len(expiry_events(admin, realm, olga.id)) == 1


def grace_entries(admin: Admin, realm: str, uid: str) -> list[str]:
    found = admin.get(f"/{realm}/groups", search=uid, briefRepresentation="true")
    names: list[str] = []

    def walk(groups: list[dict[str, Any]], path: str) -> None:
        for g in groups:
            p = f"{path}/{g['name']}"
            if p.startswith("/twostep-grace/") and g["name"] == uid:
                names.append(p)
            walk(list(g.get("subGroups") or []), p)

    walk(found, "")
    return names


def test_grace_sessions_end_when_the_grace_ends_without_a_second_factor(
        twostep: Twostep, keycloak: Keycloak, make_user: MakeUser, admin: Admin, realm: str) -> None:
    setup_realm(twostep, "--enforce", "all", "--grace-days", "7")
    admin.put(f"/{realm}/events/config", {"adminEventsEnabled": True, "adminEventsDetailsEnabled": True})
    interval = task_interval(admin, realm)
    gus: User = make_user("gus")
    b = LoginDriver(keycloak.url, realm)
    b.login(gus.username, gus.password, **OFFLINE)
    assert b.logged_in(), "in grace: the password alone"
    token = offline_token(b)
    b = LoginDriver(keycloak.url, realm)  # the SSO cookie (the offline sign-in keeps no online session)
    b.login(gus.username, gus.password)
    assert b.logged_in(), "in grace: the password alone"
    assert grace_entries(admin, realm, gus.id), "the grace sign-in is filed"
    time.sleep(interval + 1)  # a run while still in grace: nothing ends
    assert refresh(keycloak.url, realm, token).status_code == 200

    # The grace ends: the policy's grace period is set to 0 days, as `twostep setup` writes it.
    r = twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "0")
    assert r.code == 0, r.err
    deadline = time.monotonic() + interval + 10

    def refused() -> bool:
        resp = refresh(keycloak.url, realm, token)
        return resp.status_code == 400 and resp.json().get("error") == "invalid_grant"

    wait_for("the grace sign-in's offline token refused", refused, deadline)
    page = b.open(prompt="none")
    assert "error=login_required" in page.url, page.summary()
    assert not grace_entries(admin, realm, gus.id)
    events = [e for e in admin.get(f"/{realm}/admin-events", max="500")
              if e.get("resourcePath") == f"twostep/users/{gus.id}/grace"]
    assert len(events) == 1, events
    # At the next sign-in the user sets up a second factor (the decision is ENROLL).
    page = LoginDriver(keycloak.url, realm).login(gus.username, gus.password)
    assert page.kind != "done", page.summary()
