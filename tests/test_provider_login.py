"""The Keycloak provider (plugin/keycloak) alone, proven by real logins: a flow wired by hand through
the admin API around its condition, a policy record, bypass records written as credentials."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import quote

import pyotp
import pytest
import requests

from tests.conftest import Admin, Browser, MakeUser, User
from tests.support.login import REDIRECT_URI, TEST_CLIENT
from tests.support.twofactor import codes_on_config_page, to_recovery_form

CONDITION = "twostep-condition-second-factor"
FLOW = "tsp-browser"


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def policy(**changes: Any) -> str:
    enforcement = {"mode": "all", "groups": [], "grace_days": changes.pop("grace_days", 0)}
    data: dict[str, Any] = {"backup_codes": "required", "bypass_max_s": 7200, "decided_by": "provider",
                            "enforce_since": "", "enforcement": enforcement, "record_store": "credential"}
    data.update(changes)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def set_policy(admin: Admin, realm: str, text: str) -> None:
    admin.put(f"/{realm}", {"realm": realm, "attributes": {"twostep.policy": text}})
    assert admin.get(f"/{realm}")["attributes"]["twostep.policy"] == text


def record(**changes: str | None) -> dict[str, str]:
    now = time.time()
    r: dict[str, str | None] = {"marker": "true", "until": utc(now + 3600), "granted_at": utc(now - 60),
                                "by": "helpdesk", "reason": "lost phone, ticket 4711", "extended": "0",
                                "reset_device": "false"}
    r.update(changes)
    return {k: v for k, v in r.items() if v is not None}


def put_record(admin: Admin, realm: str, user_id: str, fields: dict[str, str],
               kind: str = "twostep-bypass") -> None:
    rep = admin.get(f"/{realm}/users/{user_id}")
    rep["credentials"] = [{"type": kind, "userLabel": "twostep bypass", "secretData": "{}",
                           "credentialData": json.dumps(fields)}]
    admin.put(f"/{realm}/users/{user_id}", rep)


def stored(admin: Admin, realm: str, user_id: str, kind: str) -> list[dict[str, Any]]:
    return [c for c in admin.get(f"/{realm}/users/{user_id}/credentials") if c["type"] == kind]


def executions(admin: Admin, realm: str, flow: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = admin.get(f"/{realm}/authentication/flows/{quote(flow)}/executions")
    return result


def add_step(admin: Admin, realm: str, flow: str, provider: str, requirement: str) -> None:
    admin.post(f"/{realm}/authentication/flows/{quote(flow)}/executions/execution", {"provider": provider})
    step = next(e for e in executions(admin, realm, flow) if e.get("providerId") == provider)
    step["requirement"] = requirement
    admin.put(f"/{realm}/authentication/flows/{quote(flow)}/executions", step)


def add_subflow(admin: Admin, realm: str, flow: str, alias: str, requirement: str) -> None:
    admin.post(f"/{realm}/authentication/flows/{quote(flow)}/executions/flow",
               {"alias": alias, "type": "basic-flow", "provider": "registration-page-form", "description": alias})
    sub = next(e for e in executions(admin, realm, flow) if e.get("authenticationFlow") and e["displayName"] == alias)
    sub["requirement"] = requirement
    admin.put(f"/{realm}/authentication/flows/{quote(flow)}/executions", sub)


def wire_flow(admin: Admin, realm: str) -> None:
    """cookie | forms [password form, conditional [twostep condition, OTP form | recovery code form]]."""
    admin.post(f"/{realm}/authentication/flows", {"alias": FLOW, "providerId": "basic-flow", "topLevel": True,
                                                 "builtIn": False, "description": "twostep provider test"})
    add_step(admin, realm, FLOW, "auth-cookie", "ALTERNATIVE")
    add_subflow(admin, realm, FLOW, "tsp-forms", "ALTERNATIVE")
    add_step(admin, realm, "tsp-forms", "auth-username-password-form", "REQUIRED")
    add_subflow(admin, realm, "tsp-forms", "tsp-second-factor", "CONDITIONAL")
    add_step(admin, realm, "tsp-second-factor", CONDITION, "REQUIRED")
    add_step(admin, realm, "tsp-second-factor", "auth-otp-form", "ALTERNATIVE")
    add_step(admin, realm, "tsp-second-factor", "auth-recovery-authn-code-form", "ALTERNATIVE")
    admin.put(f"/{realm}", {"realm": realm, "browserFlow": FLOW})
    got = [(e.get("providerId") or e["displayName"], e["requirement"], e["level"])
           for e in executions(admin, realm, FLOW)]
    assert got == [("auth-cookie", "ALTERNATIVE", 0), ("tsp-forms", "ALTERNATIVE", 0),
                   ("auth-username-password-form", "REQUIRED", 1), ("tsp-second-factor", "CONDITIONAL", 1),
                   (CONDITION, "REQUIRED", 2), ("auth-otp-form", "ALTERNATIVE", 2),
                   ("auth-recovery-authn-code-form", "ALTERNATIVE", 2)], got


@pytest.fixture
def provider_realm(admin: Admin, realm: str) -> str:
    wire_flow(admin, realm)
    set_policy(admin, realm, policy())
    return realm


def test_provider_is_loaded_and_records_round_trip(admin: Admin, realm: str, make_user: MakeUser) -> None:
    ids = [p["id"] for p in admin.get(f"/{realm}/authentication/authenticator-providers")]
    assert CONDITION in ids
    user: User = make_user("rita")
    first = record(reason="first")
    put_record(admin, realm, user.id, first)
    got = stored(admin, realm, user.id, "twostep-bypass")
    assert len(got) == 1 and json.loads(got[0]["credentialData"]) == first
    assert got[0]["userLabel"] == "twostep bypass"
    assert "secretData" not in got[0] or not got[0]["secretData"]
    # A new record replaces the old one: never two.
    second = record(reason="second", extended="1")
    put_record(admin, realm, user.id, second)
    got = stored(admin, realm, user.id, "twostep-bypass")
    assert len(got) == 1 and json.loads(got[0]["credentialData"]) == second
    prov = {"by": "helpdesk", "at": utc(time.time())}
    put_record(admin, realm, user.id, prov, kind="twostep-codes-provenance")
    put_record(admin, realm, user.id, prov, kind="twostep-codes-provenance")
    got = stored(admin, realm, user.id, "twostep-codes-provenance")
    assert len(got) == 1 and json.loads(got[0]["credentialData"]) == prov
    assert len(stored(admin, realm, user.id, "twostep-bypass")) == 1, "a provenance write kept the bypass"


def test_valid_bypass_is_password_alone(admin: Admin, provider_realm: str, make_user: MakeUser,
                                        browser: Browser) -> None:
    user: User = make_user("vera", otp=True)
    b = browser()
    assert b.login(user.username, user.password).kind == "otp", "without a record the code is asked"
    put_record(admin, provider_realm, user.id, record())
    b = browser()
    page = b.login(user.username, user.password)
    assert b.logged_in(), page.summary()

    # The user's own account API does not show the record (no enabled authenticator refers to it).
    tok = requests.post(f"{b.base}/realms/{provider_realm}/protocol/openid-connect/token", timeout=30, data={
        "grant_type": "authorization_code", "code": b.code, "client_id": TEST_CLIENT, "redirect_uri": REDIRECT_URI})
    assert tok.status_code == 200, tok.text[:300]
    mine = requests.get(f"{b.base}/realms/{provider_realm}/account/credentials", timeout=30, headers={
        "Authorization": "Bearer " + tok.json()["access_token"], "Accept": "application/json"})
    assert mine.status_code == 200, mine.text[:300]
    types = {c["type"] for c in mine.json()}
    assert "otp" in types and not types & {"twostep-bypass", "twostep-codes-provenance"}, types


@pytest.mark.parametrize(("case", "fields", "policy_text"), [
    ("until in the past", {"until": utc(time.time() - 60), "granted_at": utc(time.time() - 1800)}, None),
    ("window longer than the policy maximum",
     {"granted_at": utc(time.time() - 60), "until": utc(time.time() + 3 * 3600)}, None),
    ("malformed until", {"until": utc(time.time() + 3600).replace("Z", "+00:00")}, None),
    ("marker only", {"until": None, "granted_at": None, "by": None, "reason": None, "extended": None,
                     "reset_device": None}, None),
    ("marker ending", {"marker": "ending"}, None),
    ("empty reason", {"reason": ""}, None),
    ("damaged policy: 1-hour maximum", {"granted_at": utc(time.time() - 60), "until": utc(time.time() + 5400)},
     "{not json"),
])
def test_invalid_bypass_asks_for_the_code(admin: Admin, provider_realm: str, make_user: MakeUser, browser: Browser,
                                          case: str, fields: dict[str, str | None], policy_text: str | None) -> None:
    if policy_text is not None:
        set_policy(admin, provider_realm, policy_text)
    user: User = make_user("olga", otp=True)
    put_record(admin, provider_realm, user.id, record(**fields))
    assert len(stored(admin, provider_realm, user.id, "twostep-bypass")) == 1
    b = browser()
    page = b.login(user.username, user.password)
    assert page.kind == "otp" and not b.logged_in(), f"{case}: {page.summary()}"
    page = b.submit({"otp": user.code()})
    # A device without codes under backup_codes=required: the codes page follows the code.
    assert page.kind == "configure-recovery-codes", f"{case}: {page.summary()}"


def test_new_user_grace_then_enrollment(admin: Admin, provider_realm: str, make_user: MakeUser,
                                        browser: Browser) -> None:
    set_policy(admin, provider_realm, policy(grace_days=7))
    user: User = make_user("nina")
    b = browser()
    page = b.login(user.username, user.password)
    assert b.logged_in(), "in grace the password is enough: " + page.summary()
    assert admin.get(f"/{provider_realm}/users/{user.id}")["requiredActions"] == [], "nothing stored on the user"

    set_policy(admin, provider_realm, policy(grace_days=0))
    b = browser()
    page = b.login(user.username, user.password)
    assert page.kind == "configure-totp", page.summary()
    form = page.form_with("totpSecret")
    # Keycloak's HMAC key is the UTF-8 bytes of the hidden secret; apps get their Base32.
    secret = base64.b32encode(form.fields["totpSecret"].encode()).decode()
    page = b.submit({"totp": pyotp.TOTP(secret).now(), "userLabel": "phone"}, form_field="totpSecret")
    assert page.kind == "configure-recovery-codes", page.summary()
    codes = codes_on_config_page(page)
    assert len(codes) == 12
    page = b.submit({"kcRecoveryCodesConfirmation": "on"}, form_field="generatedRecoveryAuthnCodes")
    assert b.logged_in(), page.summary()
    types = sorted(c["type"] for c in admin.get(f"/{provider_realm}/users/{user.id}/credentials"))
    assert types == ["otp", "password", "recovery-authn-codes"], types

    # Enrolled: from now on the second factor is asked, and nothing more is set up. (The TOTP code
    # just used may not be used again in its period; the first backup code signs in instead.)
    b = browser()
    assert b.login(user.username, user.password).kind == "otp"
    to_recovery_form(b)
    page = b.submit({"recoveryCodeInput": codes[0]})
    assert b.logged_in(), page.summary()


def test_out_of_scope_user_and_group_scope(admin: Admin, provider_realm: str, make_user: MakeUser,
                                           browser: Browser) -> None:
    admin.post(f"/{provider_realm}/groups", {"name": "staff"})
    staff = next(g for g in admin.get(f"/{provider_realm}/groups") if g["name"] == "staff")
    admin.post(f"/{provider_realm}/groups/{staff['id']}/children", {"name": "berlin"})
    set_policy(admin, provider_realm, policy(enforcement={"mode": "groups", "groups": ["staff"], "grace_days": 0}))
    outside: User = make_user("oscar")
    inside: User = make_user("ines", groups=["/staff/berlin"])
    b = browser()
    page = b.login(outside.username, outside.password)
    assert b.logged_in(), "out of scope: " + page.summary()
    b = browser()
    page = b.login(inside.username, inside.password)
    assert page.kind == "configure-totp", "a subgroup member is in scope: " + page.summary()


def test_bypass_ends_at_until_without_sync(admin: Admin, provider_realm: str, make_user: MakeUser,
                                           browser: Browser) -> None:
    """The provider is the clock: the same record lets the user in before `until` and not after,
    with no sync run in between."""
    user: User = make_user("tom", otp=True)
    until = int(time.time()) + 15
    put_record(admin, provider_realm, user.id, record(until=utc(until)))
    b = browser()
    page = b.login(user.username, user.password)
    assert time.time() < until, "the first login took too long to prove anything"
    assert b.logged_in(), page.summary()
    time.sleep(max(0.0, until - time.time()) + 1)
    b = browser()
    assert b.login(user.username, user.password).kind == "otp"
    assert len(stored(admin, provider_realm, user.id, "twostep-bypass")) == 1, "the record itself is untouched"


def test_disabled_otp_setup_refuses_instead_of_opening(admin: Admin, provider_realm: str, make_user: MakeUser,
                                                       browser: Browser) -> None:
    """Keycloak skips a disabled required action silently; enrollment then must not become the
    password alone."""
    path = f"/{provider_realm}/authentication/required-actions/CONFIGURE_TOTP"
    action = admin.get(path)
    action["enabled"] = False
    admin.put(path, action)
    user: User = make_user("dora")
    b = browser()
    page = b.login(user.username, user.password)
    assert not b.logged_in(), page.summary()
    assert page.status == 400 and page.kind not in ("configure-totp", "login"), page.summary()
    assert admin.get(f"/{provider_realm}/users/{user.id}/sessions") == [], "no session was opened"
