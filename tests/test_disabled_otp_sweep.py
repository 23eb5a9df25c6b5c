"""The expiry task purges disabled OTP devices without a sign-in (docs/formats.md, "Disabled
devices"): 30 days after they were disabled (only the purge days that are over are opened), and at
once when the user enrolled a new device. The harness runs the task every 5 s for realms named
`exp-*`; the waits poll with a deadline."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import pyotp

from tests.conftest import Admin, Browser, Keycloak, MakeUser, Twostep, User
from tests.support.bypass_helpers import utcnow
from tests.support.help_helpers import iso
from tests.support.personas import helpdesk_service_account
from tests.support.twofactor import credential_types, finish_sign_in, setup_realm

DISABLED = "twostep-otp-disabled"


REALM_PREFIX = "exp-"  # served by the harness's expiry task (tests/conftest.py, realm)


def _purge_events(admin: Admin, realm: str, user_id: str) -> list[dict[str, Any]]:
    return [e for e in admin.get(f"/{realm}/admin-events", resourcePath=f"twostep/users/{user_id}/*", max=100)
            if e["resourcePath"].endswith("/otp.purge")]


def _wait_gone(admin: Admin, realm: str, user_id: str) -> None:
    deadline = time.monotonic() + 5 + 10
    while DISABLED in credential_types(admin, realm, user_id):
        assert time.monotonic() < deadline, "not purged within the task's interval + 10 s"
        time.sleep(0.5)


def _group(admin: Admin, realm: str, name: str, parent: str | None = None) -> str:
    path = f"/{realm}/groups/{parent}/children" if parent else f"/{realm}/groups"
    return str(admin.post(path, {"name": name}).headers["Location"].rsplit("/", 1)[-1])


def test_the_task_purges_after_thirty_days_without_a_sign_in(
        twostep: Any, keycloak: Keycloak, admin: Admin, realm: str, make_user: Any) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    old: User = make_user("olga")
    young: User = make_user("yuri")
    for user, days in ((old, 31), (young, 29)):
        at = utcnow() - timedelta(days=days)
        data = {"disabled_at": iso(at), "purge_after": iso(at + timedelta(days=30)), "by": "hilde",
                "label": "phone", "created": "1700000000000", "otp_credential_data": "{}"}
        rep = admin.get(f"/{realm}/users/{user.id}")
        rep["credentials"] = [{"type": DISABLED, "credentialData": json.dumps(data), "userLabel": "x"}]
        admin.put(f"/{realm}/users/{user.id}", rep)
    # The index as a reset files them: the purge day of each.
    root = _group(admin, realm, "twostep-otp-disabled")
    past = _group(admin, realm, iso(utcnow() - timedelta(days=1))[:10], root)
    _group(admin, realm, old.id, past)
    future = _group(admin, realm, iso(utcnow() + timedelta(days=1))[:10], root)
    _group(admin, realm, young.id, future)

    deadline = time.monotonic() + 5 + 10
    while DISABLED in credential_types(admin, realm, old.id):
        assert time.monotonic() < deadline, "not purged within the task's interval + 10 s"
        time.sleep(0.5)
    events = [e for e in admin.get(f"/{realm}/admin-events", resourcePath=f"twostep/users/{old.id}/*", max=10)
              if e["resourcePath"].endswith("/otp.purge")]
    assert len(events) == 1 and json.loads(events[0]["representation"])["actor"] == "twostep expiry task"
    assert DISABLED in credential_types(admin, realm, young.id), "a day not over yet is not opened"
    left = [g["id"] for g in admin.get(f"/{realm}/groups/{root}/children")]
    assert left == [future], "the day that is over is emptied and removed, the other kept"


def test_the_task_purges_at_once_after_a_new_enrollment_without_a_sign_in(
        twostep: Twostep, keycloak: Keycloak, admin: Admin, realm: str, make_user: MakeUser,
        browser: Browser) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    client_id, secret = helpdesk_service_account(admin, realm)
    env = {"TWOSTEP_CLIENT_ID": client_id, "TWOSTEP_CLIENT_SECRET": secret, "TWOSTEP_ACTOR": "hilde"}
    bob: User = make_user("bob", otp=True)
    r = twostep("otp", "reset", "bob", "--reason", "phone stolen", env=env)
    assert r.code == 0, r.err
    assert credential_types(admin, realm, bob.id).count(DISABLED) == 1

    # A real sign-in enrolls a new device (Keycloak's CONFIGURE_TOTP, a pyotp code of the new secret).
    b = browser()
    page = b.login(bob.username, bob.password)
    assert page.kind == "configure-totp", page.summary()
    new = base64.b32encode(page.form_with("totpSecret").fields["totpSecret"].encode()).decode()
    b.submit({"totp": pyotp.TOTP(new).now(), "userLabel": "new phone"}, form_field="totpSecret")
    finish_sign_in(b, admin, realm, enrolled=True)
    # The enrolling sign-in purged nothing (no device then); the task may already have (every 5 s here).
    assert all(json.loads(e["representation"])["actor"] == "twostep expiry task"
               for e in _purge_events(admin, realm, bob.id))

    # No further sign-in: the task purges it within its interval + 10 s, with one admin event.
    _wait_gone(admin, realm, bob.id)
    types = credential_types(admin, realm, bob.id)
    assert types.count("otp") == 1, types
    [ev] = _purge_events(admin, realm, bob.id)
    rep = json.loads(ev["representation"])
    assert rep["actor"] == "twostep expiry task" and rep["devices_purged"] == "1", rep
    root = admin.get(f"/{realm}/groups", search="twostep-otp-disabled", exact="true")[0]
    days = admin.get(f"/{realm}/groups/{root['id']}/children")
    assert all(admin.get(f"/{realm}/groups/{d['id']}/children") == [] for d in days), "the entry went too"

    # Idempotent with the other paths: restore finds nothing, a sign-in purges nothing more.
    r = twostep("otp", "restore", "bob", env=env)
    assert r.code != 0 and r.err.startswith("twostep: error:") and "no disabled OTP device" in r.err, r.err
    b = browser()
    assert b.login(bob.username, bob.password).kind == "otp"
    b.submit({"otp": pyotp.TOTP(new).at(time.time() + 30)})
    assert b.logged_in(), b.page.summary() if b.page else ""
    assert len(_purge_events(admin, realm, bob.id)) == 1, "one event per purge, whoever purges"
