"""#24 items 3 and 4 with the provider JAR, real sign-ins, the help desk (manage-users only) acting:
a lost device is disabled, not deleted (restorable; purged by a new enrollment or after 30 days), and
tokens say what a sign-in was (amr, twostep_bypass, acr; acr_values for the second factor asks it)."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta
from typing import Any

import pyotp
import requests

from tests.conftest import Admin, Keycloak, User
from tests.support.bypass_helpers import record_fields, utcnow
from tests.support.help_helpers import file_request, iso
from tests.support.login import REDIRECT_URI, TEST_CLIENT, LoginDriver
from tests.support.personas import helpdesk_service_account
from tests.support.twofactor import credential_types, finish_sign_in, setup_realm

DISABLED = "twostep-otp-disabled"
ESSENTIAL_2FA = json.dumps({"id_token": {"acr": {"essential": True, "values": ["2"]}}})


def _claims(url: str, realm: str, d: LoginDriver) -> dict[str, Any]:
    """The ID token's and the access token's claims of the sign-in `d` just finished (code exchanged)."""
    r = requests.post(f"{url}/realms/{realm}/protocol/openid-connect/token", timeout=30, data={
        "grant_type": "authorization_code", "client_id": TEST_CLIENT, "code": d.code, "redirect_uri": REDIRECT_URI})
    r.raise_for_status()
    out: dict[str, Any] = {}
    for kind in ("id_token", "access_token"):
        payload = r.json()[kind].split(".")[1]
        out[kind] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return out


def _events(admin: Admin, realm: str, user_id: str, what: str) -> list[dict[str, Any]]:
    return [e for e in admin.get(f"/{realm}/admin-events", resourcePath=f"twostep/users/{user_id}/*", max=100)
            if e["resourcePath"].endswith("/" + what)]


def _helpdesk(admin: Admin, realm: str) -> dict[str, str]:
    client_id, secret = helpdesk_service_account(admin, realm)
    return {"TWOSTEP_CLIENT_ID": client_id, "TWOSTEP_CLIENT_SECRET": secret, "TWOSTEP_ACTOR": "hilde"}


def test_lost_device_disabled_restored_and_tokens_say_the_bypass(
        twostep: Any, keycloak: Keycloak, admin: Admin, realm: str, make_user: Any, browser: Any) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    again = twostep("setup", "--no-service-client", "--backup-codes", "offered", "--dry-run")
    assert again.code == 0 and "no changes" in again.out, again.out
    [basic] = [s for s in admin.get(f"/{realm}/client-scopes") if s["name"] == "basic"]
    assert [m["name"] for m in basic.get("protocolMappers", []) if m["protocolMapper"] ==
            "twostep-assurance-mapper"] == ["twostep assurance"]
    env = _helpdesk(admin, realm)

    # The help desk answers alice's help request: her device is disabled (kept aside), not deleted.
    alice: User = make_user("alice", otp=True)
    file_request(admin, realm, alice.id, "lost my phone")
    r = twostep("help", "grant", "alice", "--for", "2h", "--password", "--json", env=env)
    assert r.code == 0, r.err
    types = credential_types(admin, realm, alice.id)
    assert "otp" not in types and types.count(DISABLED) == 1, types
    until = record_fields(admin, realm, alice.id)["until"]
    [ev] = _events(admin, realm, alice.id, "help.grant")
    assert json.loads(ev["representation"])["devices_disabled"] == 1
    assert alice.totp_secret is not None and alice.totp_secret not in json.dumps(ev), "no secret in the event"

    # Her sign-in through the bypass: password alone; the tokens say so.
    b = browser()
    b.login(alice.username, alice.password)
    assert b.logged_in(), b.page.summary() if b.page else ""
    tokens = _claims(keycloak.url, realm, b)
    for kind in ("id_token", "access_token"):
        c = tokens[kind]
        assert c["amr"] == ["pwd"], c
        assert c["twostep_bypass"] == int(datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp()), c
        assert c["twostep_bypass_kind"] == "password"
    assert tokens["id_token"]["acr"] == "1"

    # An application that asks for the second-factor level: alice has no usable device, so the token
    # says the level reached (acr 1, no otp: Keycloak's rule for a voluntary request) ...
    b = browser()
    b.login(alice.username, alice.password, acr_values="2")
    assert b.logged_in(), b.page.summary() if b.page else ""
    c = _claims(keycloak.url, realm, b)["id_token"]
    assert c["acr"] == "1" and c["amr"] == ["pwd"] and "twostep_bypass" in c, c
    # ... and an application that makes it essential is refused: no code, Keycloak's error page.
    b = browser()
    page = b.login(alice.username, alice.password, claims=ESSENTIAL_2FA)
    assert not b.logged_in() and page.kind not in ("otp", "done"), page.summary()

    # Bypass over (revoked): the old device is not usable, a new one is asked for.
    r = twostep("bypass", "revoke", "alice", "--reason", "phone found", env=env)
    assert r.code == 0, r.err
    b = browser()
    assert b.login(alice.username, alice.password).kind == "configure-totp"

    # The phone is found: restored, its own codes work again, nothing to enroll; a normal sign-in's tokens.
    r = twostep("otp", "restore", "alice", "--reason", "phone found", "--json", env=env)
    assert r.code == 0, r.err
    assert json.loads(r.out)["devices_restored"] == 1
    types = credential_types(admin, realm, alice.id)
    assert "otp" in types and DISABLED not in types, types
    assert "CONFIGURE_TOTP" not in admin.get(f"/{realm}/users/{alice.id}")["requiredActions"]
    assert len(_events(admin, realm, alice.id, "otp.restore")) == 1
    b = browser()
    assert b.login(alice.username, alice.password).kind == "otp"
    b.submit({"otp": alice.code()})
    finish_sign_in(b, admin, realm)
    tokens = _claims(keycloak.url, realm, b)
    for kind in ("id_token", "access_token"):
        c = tokens[kind]
        assert "otp" in c["amr"] and "pwd" in c["amr"], c
        assert "twostep_bypass" not in c and "twostep_bypass_kind" not in c, c
    assert tokens["id_token"]["acr"] == "2"

    # Nothing left to restore: one line, non-zero.
    r = twostep("otp", "restore", "alice", env=env)
    assert r.code != 0 and r.err.startswith("twostep: error:") and "no disabled OTP device" in r.err, r.err


def test_new_enrollment_purges_the_disabled_device(
        twostep: Any, keycloak: Keycloak, admin: Admin, realm: str, make_user: Any, browser: Any) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    env = _helpdesk(admin, realm)
    bob: User = make_user("bob", otp=True)
    r = twostep("otp", "reset", "bob", "--reason", "phone stolen", env=env)
    assert r.code == 0, r.err
    assert "removed 1 device" in r.out and "disabled, not deleted" in r.out and "otp restore bob" in r.out, r.out
    assert credential_types(admin, realm, bob.id).count(DISABLED) == 1

    # The old code is refused everywhere: the sign-in asks for a new device, whose code the old one is not.
    b = browser()
    page = b.login(bob.username, bob.password)
    assert page.kind == "configure-totp", page.summary()
    assert bob.totp_secret is not None
    page = b.submit({"totp": bob.code(), "userLabel": "old phone again"}, form_field="totpSecret")
    assert page.kind == "configure-totp" and not b.logged_in(), "the old secret's code does not enroll"
    new = base64.b32encode(page.form_with("totpSecret").fields["totpSecret"].encode()).decode()
    b.submit({"totp": pyotp.TOTP(new).now(), "userLabel": "new phone"}, form_field="totpSecret")
    finish_sign_in(b, admin, realm, enrolled=True)

    # A new device is enrolled: the disabled one can no longer come back (refused, nothing changed) ...
    r = twostep("otp", "restore", "bob", env=env)
    assert r.code != 0 and r.err.startswith("twostep: error:") and "no disabled OTP device" in r.err, r.err
    assert credential_types(admin, realm, bob.id).count("otp") == 1
    # ... and goes for good at the next sign-in, with one admin event.
    b = browser()
    assert b.login(bob.username, bob.password).kind == "otp"
    b.submit({"otp": pyotp.TOTP(new).at(time.time() + 30)})
    assert b.logged_in(), b.page.summary() if b.page else ""
    types = credential_types(admin, realm, bob.id)
    assert types.count("otp") == 1 and DISABLED not in types, types
    [ev] = _events(admin, realm, bob.id, "otp.purge")
    assert json.loads(ev["representation"])["actor"] == "twostep sign-in"


def test_acr_values_for_the_second_factor_asks_it_during_a_bypass(
        twostep: Any, keycloak: Keycloak, admin: Admin, realm: str, make_user: Any, browser: Any) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    env = _helpdesk(admin, realm)
    carol: User = make_user("carol", otp=True)
    r = twostep("bypass", "grant", "carol", "--for", "1h", "--reason", "travelling", "--password", env=env)
    assert r.code == 0, r.err
    b = browser()
    assert b.login(carol.username, carol.password).kind == "done", "the bypass: password alone"
    assert _claims(keycloak.url, realm, b)["id_token"]["amr"] == ["pwd"]
    # The application asks for the second factor: carol still has her device, so it is asked.
    # (the second sign-in takes the next period's code: Keycloak refuses a code used once)
    for step, extra in enumerate(({"acr_values": "2"}, {"claims": ESSENTIAL_2FA})):
        b = browser()
        page = b.login(carol.username, carol.password, **extra)
        assert page.kind == "otp", (extra, page.summary())
        b.submit({"otp": carol.code(time.time() + 30 * step)})
        assert b.logged_in(), b.page.summary() if b.page else ""
        c = _claims(keycloak.url, realm, b)["id_token"]
        assert c["acr"] == "2" and "otp" in c["amr"] and "twostep_bypass" not in c, (extra, c)


def test_disabled_device_purged_after_thirty_days_at_sign_in(
        twostep: Any, keycloak: Keycloak, admin: Admin, realm: str, make_user: Any, browser: Any) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    # No live device (a device would purge at once): only the age decides.
    carol: User = make_user("carol")
    dan: User = make_user("dan")

    def aside(user: User, days: int) -> None:
        """A record as a reset writes it, `days` old, through the admin API (the provider stores it)."""
        at = utcnow() - timedelta(days=days)
        data = {"disabled_at": iso(at), "purge_after": iso(at + timedelta(days=30)), "by": "hilde",
                "label": "phone", "created": "1700000000000", "otp_credential_data": "{}"}
        rep = admin.get(f"/{realm}/users/{user.id}")
        rep["credentials"] = [{"type": DISABLED, "credentialData": json.dumps(data), "userLabel": "x"}]
        admin.put(f"/{realm}/users/{user.id}", rep)
        assert DISABLED in credential_types(admin, realm, user.id)

    aside(carol, 31)
    aside(dan, 29)
    for user in (carol, dan):
        browser().login(user.username, user.password)  # the condition runs at the password step
    assert DISABLED not in credential_types(admin, realm, carol.id), "31 days: purged at sign-in"
    [ev] = _events(admin, realm, carol.id, "otp.purge")
    assert json.loads(ev["representation"])["actor"] == "twostep sign-in"
    assert DISABLED in credential_types(admin, realm, dan.id), "29 days: kept"
    assert _events(admin, realm, dan.id, "otp.purge") == []
