"""The three record credentials are the admins', not the user's (issue 22, part 6): the provider
declares them not removeable, so the user's own Account API and `kc_action=delete_credential` refuse
them (Keycloak's CredentialDeleteHelper checks the type's metadata), while the admin REST, which
twostep writes and clears them through, still deletes them."""

from __future__ import annotations

import json

import pyotp
import pytest
import requests

from tests.conftest import Admin, Browser, MakeUser, User, otp_credential
from tests.support.login import REDIRECT_URI, TEST_CLIENT, LoginDriver

RECORDS = {
    "twostep-bypass": {"marker": "true", "until": "2099-01-01T00:00:00Z", "granted_at": "2098-12-31T23:00:00Z",
                       "by": "helpdesk", "reason": "lost phone", "extended": "0", "reset_device": "false"},
    "twostep-codes-provenance": {"by": "helpdesk", "at": "2026-01-01T00:00:00Z"},
    "twostep-help-request": {"asked_at": "2026-01-01T00:00:00Z", "message": "lost my phone"},
}


def put_records(admin: Admin, realm: str, user_id: str) -> dict[str, str]:
    """One credential of each record type, written as twostep writes them (admin REST); their ids."""
    for kind, fields in RECORDS.items():
        rep = admin.get(f"/{realm}/users/{user_id}")
        rep["credentials"] = [{"type": kind, "secretData": "{}", "credentialData": json.dumps(fields)}]
        admin.put(f"/{realm}/users/{user_id}", rep)
    return {c["type"]: c["id"] for c in admin.get(f"/{realm}/users/{user_id}/credentials") if c["type"] in RECORDS}


def signed_in(browser: Browser, user: User) -> tuple[LoginDriver, str]:
    """The user signed in (password only: no second factor in this realm); their access token."""
    b: LoginDriver = browser()
    page = b.login(user.username, user.password)
    assert b.logged_in(), page.summary()
    tok = requests.post(f"{b.base}/realms/{b.realm}/protocol/openid-connect/token", timeout=30, data={
        "grant_type": "authorization_code", "code": b.code, "client_id": TEST_CLIENT, "redirect_uri": REDIRECT_URI})
    assert tok.status_code == 200, tok.text[:300]
    return b, str(tok.json()["access_token"])


def test_account_api_refuses_to_delete_records(admin: Admin, realm: str, make_user: MakeUser, browser: Browser) -> None:
    user: User = make_user("rhea")
    ids = put_records(admin, realm, user.id)
    assert set(ids) == set(RECORDS), ids
    _, token = signed_in(browser, user)
    for kind, cid in ids.items():
        r = requests.delete(f"{admin.url}/realms/{realm}/account/credentials/{cid}", timeout=30,
                            headers={"Authorization": "Bearer " + token, "Accept": "application/json"})
        assert r.status_code == 400, f"{kind}: {r.status_code} {r.text[:200]}"
    left = {c["type"] for c in admin.get(f"/{realm}/users/{user.id}/credentials")}
    assert set(RECORDS) <= left, left
    # The same token can delete a credential the user owns: the refusal is the type's, not the token's.
    rep = admin.get(f"/{realm}/users/{user.id}")
    rep["credentials"] = [otp_credential(pyotp.random_base32(), "old phone")]
    admin.put(f"/{realm}/users/{user.id}", rep)
    otp = next(c["id"] for c in admin.get(f"/{realm}/users/{user.id}/credentials") if c["type"] == "otp")
    r = requests.delete(f"{admin.url}/realms/{realm}/account/credentials/{otp}", timeout=30,
                        headers={"Authorization": "Bearer " + token, "Accept": "application/json"})
    assert r.status_code == 204, r.text[:200]


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_delete_credential_action_refuses_records(admin: Admin, realm: str, make_user: MakeUser, browser: Browser,
                                                  kind: str) -> None:
    user: User = make_user("rory")
    cid = put_records(admin, realm, user.id)[kind]
    b, _ = signed_in(browser, user)
    page = b.open(kc_action=f"delete_credential:{cid}")
    assert "kc-accept" in page.text, page.summary()
    page = b.submit({"accept": ""}, form_field="accept")
    assert not b.logged_in(), page.summary()
    assert "cannot be removed" in page.text, page.summary()
    assert kind in {c["type"] for c in admin.get(f"/{realm}/users/{user.id}/credentials")}


def test_admin_rest_still_deletes_records(admin: Admin, realm: str, make_user: MakeUser) -> None:
    user: User = make_user("remy")
    for kind, cid in put_records(admin, realm, user.id).items():
        admin.delete(f"/{realm}/users/{user.id}/credentials/{cid}")
        assert kind not in {c["type"] for c in admin.get(f"/{realm}/users/{user.id}/credentials")}
