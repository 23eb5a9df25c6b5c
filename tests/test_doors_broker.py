"""Brokered logins answer to the policy: a second realm on the same Keycloak is an OIDC identity
provider of the test realm; real logins through it (first login with a new account, linking to an
existing account, later logins), then with `--trust-idp`."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator

import pyotp
import pytest

from tests.conftest import Admin, Keycloak, MakeUser, Twostep
from tests.support.login import LoginDriver
from tests.support.twofactor import finish_sign_in

IDP = "corp"


SECRET = "s-" + uuid.uuid4().hex


@pytest.fixture
def idp_realm(keycloak: Keycloak, admin: Admin, realm: str) -> Iterator[str]:
    """A second realm with a confidential client for the broker (the test realm's IdPs use it)."""
    name = "idp-" + uuid.uuid4().hex[:8]
    admin.post("", {"realm": name, "enabled": True})
    admin.post(f"/{name}/clients", {
        "clientId": "corp-broker", "publicClient": False, "secret": SECRET, "standardFlowEnabled": True,
        "redirectUris": [f"{keycloak.url}/realms/{realm}/broker/*"]})
    yield name
    try:
        admin.delete(f"/{name}")
    except AssertionError:
        pass


def add_idp(keycloak: Keycloak, admin: Admin, realm: str, idp_realm: str, alias: str = IDP) -> None:
    """The second realm as OIDC identity provider `alias` of the test realm (as an admin would add it)."""
    base = f"{keycloak.url}/realms/{idp_realm}/protocol/openid-connect"
    admin.post(f"/{realm}/identity-provider/instances", {
        "alias": alias, "providerId": "oidc", "enabled": True, "trustEmail": True,
        "config": {"authorizationUrl": f"{base}/auth", "tokenUrl": f"{base}/token", "userInfoUrl": f"{base}/userinfo",
                   "jwksUrl": f"{base}/certs", "useJwksUrl": "true", "validateSignature": "false",
                   "issuer": f"{keycloak.url}/realms/{idp_realm}", "clientId": "corp-broker", "clientSecret": SECRET,
                   "clientAuthMethod": "client_secret_post", "syncMode": "IMPORT",
                   "defaultScope": "openid email profile"}})


def idp_user(admin: Admin, idp_realm: str, username: str, email: str | None = None) -> str:
    password = "Idp-" + uuid.uuid4().hex[:10]
    admin.post(f"/{idp_realm}/users", {
        "username": username, "enabled": True, "email": email or f"{username}@corp.test", "emailVerified": True,
        "firstName": username.title(), "lastName": "Corp",
        "credentials": [{"type": "password", "value": password, "temporary": False}]})
    return password


def brokered(keycloak: Keycloak, realm: str, username: str, password: str) -> LoginDriver:
    """Sign in at the IdP realm through `kc_idp_hint`; the driver is left on the test realm's next page."""
    b = LoginDriver(keycloak.url, realm)
    page = b.open(kc_idp_hint=IDP)
    assert page.kind == "login", page.summary()
    b.submit({"username": username, "password": password})
    return b


def enroll(b: LoginDriver, admin: Admin, realm: str) -> str:
    assert b.page is not None and b.page.kind == "configure-totp", b.page.summary() if b.page else ""
    form = b.page.form_with("totpSecret")
    secret = base64.b32encode(form.fields["totpSecret"].encode()).decode()
    b.submit({"totp": pyotp.TOTP(secret).now(), "userLabel": "phone"}, form_field="totpSecret")
    finish_sign_in(b, admin, realm, enrolled=True)
    return secret


def test_brokered_logins_get_the_browsers_decision_and_trust_is_explicit(
        twostep: Twostep, keycloak: Keycloak, admin: Admin, realm: str, idp_realm: str, make_user: MakeUser) -> None:
    add_idp(keycloak, admin, realm, idp_realm)
    r = twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "0")
    assert r.code == 0, r.err
    rep = admin.get(f"/{realm}/identity-provider/instances/{IDP}")
    assert rep["postBrokerLoginFlowAlias"] == "twostep post broker login"
    assert rep["firstBrokerLoginFlowAlias"] == "twostep idp first broker login"

    # First login, new account: made to enroll, as a new user at the browser.
    pw = idp_user(admin, idp_realm, "pat")
    b = brokered(keycloak, realm, "pat", pw)
    secret = enroll(b, admin, realm)

    # A later login: the code is asked (an IdP login alone is not the second factor).
    b = brokered(keycloak, realm, "pat", pw)
    assert b.page is not None and b.page.kind == "otp", b.summary()
    # The next period's code (look-around 1): the current one was just used to enroll, and is not reusable.
    b.submit({"otp": pyotp.TOTP(secret).at(time.time() + 30)})
    assert b.logged_in(), b.page.summary() if b.page else ""

    # Linking to an existing account that has OTP: the code is asked before the link counts.
    lee = make_user("lee", otp=True, email="lee@corp.test")
    lee_pw = idp_user(admin, idp_realm, "lee", email="lee@corp.test")
    b = brokered(keycloak, realm, "lee", lee_pw)
    kinds = [b.page.kind if b.page else "none"]
    for _ in range(4):  # confirm the link, re-authenticate with the local password, then the code
        assert b.page is not None
        if b.page.kind == "otp":
            break
        if b.page.has_field("password"):
            b.submit({"password": lee.password}, form_field="password")
        else:
            b.submit({}, form_field="submitAction", button="submitAction")
        kinds.append(b.page.kind)
    assert b.page is not None and b.page.kind == "otp", (kinds, b.summary())
    assert not b.logged_in()

    # Trust the provider: its logins pass without a second factor here; status shows it.
    assert twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "0",
                   "--trust-idp", "nope").code != 0
    r = twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "0", "--trust-idp", IDP)
    assert r.code == 0, r.err
    b = brokered(keycloak, realm, "pat", pw)
    assert b.logged_in(), b.page.summary() if b.page else ""
    st = twostep("status", "--json")
    checks = {c["name"]: c for c in json.loads(st.out)["checks"]}
    assert checks[f"identity provider {IDP!r}"]["ok"] and "trusted" in checks[f"identity provider {IDP!r}"]["detail"]
    assert json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])["trusted_idps"] == [IDP]

    assert twostep("teardown").code == 0
    rep = admin.get(f"/{realm}/identity-provider/instances/{IDP}")
    assert rep.get("firstBrokerLoginFlowAlias") == "first broker login"
    assert not rep.get("postBrokerLoginFlowAlias")


def test_an_identity_provider_added_after_setup_is_drift(
        twostep: Twostep, keycloak: Keycloak, admin: Admin, realm: str, idp_realm: str) -> None:
    args = ("setup", "--no-service-client", "--enforce", "all", "--grace-days", "0")
    assert twostep(*args).code == 0
    assert twostep("status").code == 0
    add_idp(keycloak, admin, realm, idp_realm, "late")
    st = twostep("status", "--json")
    assert st.code == 1
    failing = {c["name"]: c for c in json.loads(st.out)["checks"] if not c["ok"]}
    assert "identity provider 'late'" in failing, failing
    assert "setup" in failing["identity provider 'late'"]["fix"]

    pw = idp_user(admin, idp_realm, "sam")
    b = LoginDriver(keycloak.url, realm)
    b.open(kc_idp_hint="late")
    b.submit({"username": "sam", "password": pw})
    assert b.logged_in(), "before: the door is open (no second factor, no enrollment)"

    assert twostep(*args).code == 0
    again = twostep(*args, "--json")
    assert again.code == 0 and json.loads(again.out)["changes"] == [], again.out
    st = twostep("status", "--json")
    assert not [c for c in json.loads(st.out)["checks"] if not c["ok"]], st.out
    b = LoginDriver(keycloak.url, realm)
    b.open(kc_idp_hint="late")
    b.submit({"username": "sam", "password": pw})
    assert b.page is not None and b.page.kind == "configure-totp", b.summary()

    assert twostep("teardown").code == 0
    rep = admin.get(f"/{realm}/identity-provider/instances/late")
    assert rep.get("firstBrokerLoginFlowAlias") == "first broker login" and not rep.get("postBrokerLoginFlowAlias")
    assert not {f["alias"] for f in admin.get(f"/{realm}/authentication/flows") if f["alias"].startswith("twostep")}
