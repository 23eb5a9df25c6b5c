"""The password grant (resource-owner password credentials) answers to the policy as the browser
does: real token requests to Keycloak's token endpoint, on a public and a confidential client."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests

from tests.conftest import Admin, Keycloak, MakeUser, Twostep, User

SECOND_FACTOR = "twostep-condition-second-factor"


def setup_realm(twostep: Twostep, *args: str) -> None:
    r = twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "0", *args)
    assert r.code == 0, r.err


def make_client(admin: Admin, realm: str, *, public: bool) -> dict[str, str]:
    """A client with direct access grants; returns the form fields that identify it at the token endpoint."""
    client_id = ("dg-public-" if public else "dg-conf-") + uuid.uuid4().hex[:6]
    rep: dict[str, Any] = {"clientId": client_id, "publicClient": public, "directAccessGrantsEnabled": True,
                           "standardFlowEnabled": False}
    if not public:
        rep["secret"] = "s-" + uuid.uuid4().hex
    admin.post(f"/{realm}/clients", rep)
    return {"client_id": client_id} | ({} if public else {"client_secret": rep["secret"]})


def grant(keycloak: Keycloak, realm: str, client: dict[str, str], user: User,
          code: str | None = None) -> requests.Response:
    data = {"grant_type": "password", "username": user.username, "password": user.password, **client}
    if code is not None:
        data["totp"] = code
    return requests.post(f"{keycloak.url}/realms/{realm}/protocol/openid-connect/token", data=data, timeout=30)


def wrong_credentials(r: requests.Response) -> bool:
    """Keycloak's answer to a missing or wrong code (400 on 26.7, 401 on older minors)."""
    return r.status_code in (400, 401) and r.json() == {"error": "invalid_grant",
                                                        "error_description": "Invalid user credentials"}


def refusals(admin: Admin, realm: str, user: User) -> list[str]:
    """The `twostep` detail of the refused logins of this user (the event names the user by username:
    the token endpoint refuses before the login has a user session)."""
    events: list[dict[str, Any]] = admin.get(f"/{realm}/events", type="LOGIN_ERROR")
    return [e["details"]["twostep"] for e in events
            if (e.get("details") or {}).get("username") == user.username and "twostep" in e["details"]]


@pytest.mark.parametrize("public", [True, False], ids=["public", "confidential"])
def test_password_grant_decides_as_the_browser(
        twostep: Twostep, make_user: MakeUser, keycloak: Keycloak, admin: Admin, realm: str, public: bool) -> None:
    setup_realm(twostep)
    rep = admin.get(f"/{realm}")
    assert rep["directGrantFlow"] == "twostep direct grant"
    client = make_client(admin, realm, public=public)

    new = make_user("newbie")  # created after setup, in scope, no second factor, grace 0
    r = grant(keycloak, realm, client, new)
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "invalid_grant", "error_description": "Account is not fully set up"}
    why = refusals(admin, realm, new)
    assert why and "must enroll" in why[0], "the event log says why"

    enrolled = make_user("enrolled", otp=True)
    assert wrong_credentials(grant(keycloak, realm, client, enrolled)), "the password alone is not enough"
    # A second failure within a second would lock the account for a minute (setup's brute-force
    # quick-login check): the wrong code is tried by another user.
    other = make_user("enrolled2", otp=True)
    wrong = "000000" if other.code() != "000000" else "111111"
    assert wrong_credentials(grant(keycloak, realm, client, other, code=wrong))
    ok = grant(keycloak, realm, client, enrolled, code=enrolled.code())
    assert ok.status_code == 200, ok.text
    assert ok.json()["access_token"]

    lost = make_user("lostphone", otp=True)
    res = twostep("bypass", "grant", "lostphone", "--for", "1h", "--reason", "lost phone, ticket 4711", "--password")
    assert res.code == 0, res.err
    ok = grant(keycloak, realm, client, lost)
    assert ok.status_code == 200, "a bypass within its time is the password alone: " + ok.text


def test_security_key_only_user_is_refused_with_the_reason(
        twostep: Twostep, make_user: MakeUser, keycloak: Keycloak, admin: Admin, realm: str) -> None:
    setup_realm(twostep)
    client = make_client(admin, realm, public=True)
    key = make_user("keyonly")
    # A WebAuthn credential as Keycloak stores one (the grant never checks it: only its presence counts).
    rep = admin.get(f"/{realm}/users/{key.id}")
    rep["credentials"] = [{"type": "webauthn", "userLabel": "key",
                           "credentialData": '{"aaguid":"00000000-0000-0000-0000-000000000000","credentialId":"AA",'
                                             '"counter":0,"attestationStatementFormat":"none"}',
                           "secretData": "{}"}]
    admin.put(f"/{realm}/users/{key.id}", rep)
    assert any(c["type"] == "webauthn" for c in admin.get(f"/{realm}/users/{key.id}/credentials"))
    r = grant(keycloak, realm, client, key)
    assert r.status_code == 400 and r.json()["error_description"] == "Account is not fully set up", r.text
    why = refusals(admin, realm, key)
    assert why and "not an OTP device" in why[0]


def test_grace_lets_the_password_grant_in_and_teardown_binds_back(
        twostep: Twostep, make_user: MakeUser, keycloak: Keycloak, admin: Admin, realm: str) -> None:
    admin.post(f"/{realm}/authentication/flows/direct%20grant/copy", {"newName": "corp grant"})
    admin.put(f"/{realm}", {"directGrantFlow": "corp grant"})
    r = twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "7")
    assert r.code == 0, r.err
    client = make_client(admin, realm, public=True)
    fresh = make_user("fresh")
    assert grant(keycloak, realm, client, fresh).status_code == 200, "in grace: the password alone"
    again = twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "7", "--json")
    assert again.code == 0 and json.loads(again.out)["changes"] == [], again.out
    assert twostep("teardown").code == 0
    rep = admin.get(f"/{realm}")
    assert rep["directGrantFlow"] == "corp grant"
    assert "twostep direct grant" not in {f["alias"] for f in admin.get(f"/{realm}/authentication/flows")}
