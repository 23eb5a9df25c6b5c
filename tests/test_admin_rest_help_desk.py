"""The help desk's other daily changes through the provider's admin extension, from the CLI with a
service account holding only manage-users (+ view-users, query-users): answer a help request (grant
and dismiss), reset a lost device, make backup codes. Each is one Keycloak transaction with one admin
event naming the account and no secret; none needs manage-realm; no lock role is made."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Admin, Browser, Keycloak, MakeUser, Twostep, User, lock_roles
from tests.support.bypass_helpers import record_fields
from tests.support.help_helpers import file_request, stored_request
from tests.support.personas import give_roles, helpdesk_service_account
from tests.support.twofactor import credential_types, requested_number, setup_realm, to_recovery_form


def _events(admin: Admin, realm: str, user_id: str) -> list[dict[str, Any]]:
    return list(admin.get(f"/{realm}/admin-events", resourcePath=f"twostep/users/{user_id}/*", max=100))


def test_help_desk_answers_resets_and_makes_codes(twostep: Twostep, keycloak: Keycloak, admin: Admin, realm: str,
                                                  make_user: MakeUser, browser: Browser) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    client_id, secret = helpdesk_service_account(admin, realm)
    sa = admin.get(f"/{realm}/clients/{admin.get(f'/{realm}/clients', clientId=client_id)[0]['id']}"
                   "/service-account-user")
    env = {"TWOSTEP_CLIENT_ID": client_id, "TWOSTEP_CLIENT_SECRET": secret, "TWOSTEP_ACTOR": "hilde"}

    # A help request answered with a bypass: device gone, request closed, password alone lets alice in.
    alice: User = make_user("alice", otp=True)
    file_request(admin, realm, alice.id, "lost my phone")
    r = twostep("help", "grant", "alice", "--password", "--json", env=env)
    assert r.code == 0, r.err
    assert stored_request(admin, realm, alice.id) is None
    assert "otp" not in credential_types(admin, realm, alice.id)
    assert record_fields(admin, realm, alice.id)["reason"].startswith("help request of ")
    b = browser()
    b.login(alice.username, alice.password)
    assert b.logged_in(), b.page.summary() if b.page else ""
    [ev] = _events(admin, realm, alice.id)
    assert ev["resourcePath"].endswith("/help.grant") and ev["authDetails"]["userId"] == sa["id"]

    # Dismissed: the request goes, the account does not change.
    bob: User = make_user("bob", otp=True)
    file_request(admin, realm, bob.id, "")
    r = twostep("help", "dismiss", "bob", "--reason", "call the desk", env=env)
    assert r.code == 0, r.err
    assert stored_request(admin, realm, bob.id) is None and "otp" in credential_types(admin, realm, bob.id)
    [ev] = _events(admin, realm, bob.id)
    assert ev["resourcePath"].endswith("/help.dismiss")
    assert json.loads(ev["representation"])["reason"] == "call the desk"

    # A lost device reset: no device, a new one required, one event.
    carol: User = make_user("carol", otp=True)
    r = twostep("otp", "reset", "carol", "--reason", "phone stolen", env=env)
    assert r.code == 0, r.err
    assert "otp" not in credential_types(admin, realm, carol.id)
    assert "CONFIGURE_TOTP" in admin.get(f"/{realm}/users/{carol.id}")["requiredActions"]
    [ev] = _events(admin, realm, carol.id)
    assert ev["resourcePath"].endswith("/otp.reset")

    # Backup codes: shown once to the help desk, only hashes in Keycloak, none in the event; they work.
    dave: User = make_user("dave", otp=True)
    r = twostep("codes", "generate", "dave", "--count", "5", "--json", env=env)
    assert r.code == 0, r.err
    codes = [c["code"] for c in json.loads(r.out)["codes"]]
    types = credential_types(admin, realm, dave.id)
    assert types.index("otp") < types.index("recovery-authn-codes"), types
    assert "twostep-codes-provenance" in types
    [ev] = _events(admin, realm, dave.id)
    assert ev["resourcePath"].endswith("/codes.generate")
    text = json.dumps(ev)
    assert not any(c in text or c.replace("-", "") in text for c in codes), "no code in the admin event"
    b = browser()
    assert b.login(dave.username, dave.password).kind == "otp"
    page = to_recovery_form(b)
    assert requested_number(page) == 1
    b.submit({"recoveryCodeInput": codes[0]})
    assert b.logged_in(), b.page.summary() if b.page else ""

    # Not on a realm admin: refused by Keycloak's side, nothing changes.
    boss: User = make_user("boss", otp=True)
    give_roles(admin, realm, boss.id, ("realm-admin",))
    for args in (("otp", "reset", "boss"), ("codes", "generate", "boss")):
        r = twostep(*args, env=env)
        assert r.code == 6 and "realm-admin" in r.err, (args, r.code, r.err)
    assert credential_types(admin, realm, boss.id).count("otp") == 1
    assert "recovery-authn-codes" not in credential_types(admin, realm, boss.id)
    assert _events(admin, realm, boss.id) == []
    assert lock_roles(admin, realm) == []
