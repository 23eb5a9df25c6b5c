"""The policy decided at sign-in, end to end through `twostep setup` on a Keycloak with the provider,
and no sync process at all: Keycloak's own clock ends bypasses, and enrollment happens at login."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import pyotp

from tests.conftest import Admin, Browser, MakeUser, Twostep, User
from tests.support.bypass_helpers import client, grant_ending_at, record_fields, utcnow
from tests.support.twofactor import codes_on_config_page, setup_realm, to_recovery_form


def _policy(admin: Admin, realm: str) -> dict[str, Any]:
    return dict(json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"]))


def _put_record(admin: Admin, realm: str, uid: str, fields: dict[str, str]) -> None:
    """Written straight into Keycloak, as anyone with manage-users could."""
    rep = admin.get(f"/{realm}/users/{uid}")
    rep["credentials"] = [{"type": "twostep-bypass", "userLabel": "twostep bypass", "secretData": "{}",
                           "credentialData": json.dumps(fields)}]
    admin.put(f"/{realm}/users/{uid}", rep)


def _iso(ts: Any) -> str:
    return str(ts.strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_setup_lets_the_server_decide(twostep: Twostep, admin: Admin, realm: str) -> None:
    setup_realm(twostep)
    policy = _policy(admin, realm)
    assert (policy["record_store"], policy["decided_by"]) == ("credential", "provider")
    st = twostep("status", "--json")
    checks = {c["name"]: c for c in json.loads(st.out)["checks"]}
    assert "the server" in checks["bypass expiry decided by"]["detail"], checks["bypass expiry decided by"]


def test_bypass_past_its_end_asks_at_once_without_sync(twostep: Twostep, keycloak: Any, make_user: MakeUser,
                                                      browser: Browser, admin: Admin, realm: str) -> None:
    setup_realm(twostep)
    ada: User = make_user("ada", otp=True)
    # A real grant of the minimum length, made by a clock shifted back so that it ends soon (the
    # margin covers a slow, loaded machine between the grant and the first login).
    until = utcnow().replace(microsecond=0) + timedelta(seconds=30)
    grant_ending_at(client(keycloak.url, realm), "ada", until)
    b = browser()
    b.login(ada.username, ada.password)
    assert b.logged_in(), "within its time the password alone is enough"
    while utcnow() <= until + timedelta(seconds=1):
        time.sleep(0.5)
    # No sync has run: the record still says "bypassed", and Keycloak's clock says it is over.
    assert record_fields(admin, realm, ada.id)["marker"] == "true"
    page = browser().login(ada.username, ada.password)
    assert page.kind == "otp", page.summary()


def test_python_and_the_provider_read_one_record_alike(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                       admin: Admin, realm: str) -> None:
    setup_realm(twostep, "--bypass-max", "1d")
    bo: User = make_user("bob", otp=True)
    granted = twostep("bypass", "grant", "bob", "--for", "2h", "--reason", "lost phone", "--password")
    assert granted.code == 0, granted.err
    shown = json.loads(twostep("bypass", "show", "bob", "--json").out)
    assert shown["state"] == "active" and shown["bypassed"] is True
    b = browser()
    b.login(bo.username, bo.password)
    assert b.logged_in(), "a record written by `twostep bypass grant` is honoured by the provider"

    now = utcnow().replace(microsecond=0)
    good = {"marker": "true", "until": _iso(now + timedelta(hours=1)), "granted_at": _iso(now - timedelta(minutes=1)),
            "by": "helpdesk", "reason": "ticket 1", "extended": "0", "reset_device": "false"}
    cases = {
        "ten years away": ({**good, "until": _iso(now + timedelta(days=3650))}, "too-long"),
        "longer than the realm maximum": ({**good, "until": _iso(now + timedelta(days=2))}, "too-long"),
        "malformed end": ({**good, "until": "2030-01-01 10:00"}, "no-valid-record"),
        "offset instead of Z": ({**good, "until": _iso(now + timedelta(hours=1))[:-1] + "+00:00"}, "no-valid-record"),
        "only the marker": ({"marker": "true"}, "no-valid-record"),
        "granted in the future": ({**good, "granted_at": _iso(now + timedelta(minutes=30))}, None),
    }
    for name, (fields, state) in cases.items():
        _put_record(admin, realm, bo.id, fields)
        page = browser().login(bo.username, bo.password)
        assert page.kind == "otp", f"{name}: {page.summary()}"
        shown = json.loads(twostep("bypass", "show", "bob", "--json").out)
        assert shown["bypassed"] is False, (name, shown)
        if state:
            assert shown["state"] == state, (name, shown)


def test_new_user_enrolls_at_first_login_then_uses_a_backup_code(twostep: Twostep, make_user: MakeUser,
                                                                 browser: Browser,
                                                                   admin: Admin, realm: str) -> None:
    setup_realm(twostep, "--enforce", "all", "--grace-days", "0")
    cy: User = make_user("cyd")  # created after setup, nothing configured
    b = browser()
    page = b.login(cy.username, cy.password)
    assert page.kind == "configure-totp", "enrolled at this login, not at the next sync: " + page.summary()
    form = page.form_with("totpSecret")
    secret = base64.b32encode(form.fields["totpSecret"].encode()).decode()
    page = b.submit({"totp": pyotp.TOTP(secret).now(), "userLabel": "phone"}, form_field="totpSecret")
    assert page.kind == "configure-recovery-codes", "backup codes follow the first factor: " + page.summary()
    codes = codes_on_config_page(page)
    assert len(codes) == 12
    page = b.submit({"kcRecoveryCodesConfirmation": "on"}, form_field="generatedRecoveryAuthnCodes")
    assert b.logged_in(), page.summary()

    b = browser()
    assert b.login(cy.username, cy.password).kind == "otp"
    to_recovery_form(b)
    page = b.submit({"recoveryCodeInput": codes[0]})
    assert b.logged_in(), "backup code #1 signs in: " + page.summary()


def test_deleted_device_enrolls_at_next_login_and_grace_is_password_alone(
        twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin, realm: str) -> None:
    setup_realm(twostep, "--enforce", "all", "--grace-days", "0")
    di: User = make_user("dia", otp=True)
    for cred in admin.get(f"/{realm}/users/{di.id}/credentials"):
        if cred["type"] == "otp":
            admin.delete(f"/{realm}/users/{di.id}/credentials/{cred['id']}")
    page = browser().login(di.username, di.password)
    assert page.kind == "configure-totp", page.summary()

    setup_realm(twostep, "--enforce", "all", "--grace-days", "7")
    eli: User = make_user("eli")
    b = browser()
    page = b.login(eli.username, eli.password)
    assert b.logged_in(), "during the grace period the password alone: " + page.summary()
    assert admin.get(f"/{realm}/users/{eli.id}")["requiredActions"] == []
