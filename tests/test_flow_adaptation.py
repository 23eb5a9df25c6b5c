"""`twostep setup` keeps the realm's own login flow: the bound flow is the realm's flow plus the
twostep condition, step by step, proven by reading the flows back and by real logins."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from twostep import bypass
from twostep.actor import Actor
from twostep.audit import MemorySink
from twostep.clock import system_clock

from tests.conftest import Admin, Browser, Keycloak, MakeUser, Twostep
from tests.support.bypass_helpers import client, grant_ending_at, utcnow
from tests.support.twofactor import finish_sign_in

CONDITION_PROVIDER = "twostep-condition-second-factor"
SECOND_FACTOR_SUBFLOW = "Browser - Conditional 2FA"
HELP_PROVIDER = "twostep-help-request"
PASS_PROVIDER = "twostep-access-pass"

Row = tuple[int, str, str]


def rows(admin: Admin, realm: str, alias: str) -> list[Row]:
    """(level, provider id or `flow:<name>`, requirement) for every execution; the copy's subflow
    names lose the `"<alias> "` prefix Keycloak's copy gives them, so both flows compare."""
    out: list[Row] = []
    for ex in admin.get(f"/{realm}/authentication/flows/{quote(alias)}/executions"):
        name = ("flow:" + ex["displayName"].removeprefix(alias + " ") if ex.get("authenticationFlow")
                else ex["providerId"])
        out.append((ex["level"], name, ex["requirement"]))
    return out


def provider_loaded(admin: Admin, realm: str) -> bool:
    return CONDITION_PROVIDER in {p["id"] for p in admin.get(f"/{realm}/authentication/authenticator-providers")}


def condition_id(admin: Admin, realm: str) -> str:
    return CONDITION_PROVIDER if provider_loaded(admin, realm) else "conditional-user-attribute"


def without_condition(ours: list[Row], condition: str) -> tuple[list[Row], list[int]]:
    """Our flow's rows minus the twostep condition and the help-request and access-pass steps setup adds
    (provider mode; tests/test_help_request_login.py, tests/test_access_pass.py check them), and where
    each condition sat (its index)."""
    kept: list[Row] = []
    where: list[int] = []
    for i, r in enumerate(ours):
        if r[1] == condition and i > 0 and ours[i - 1][1].startswith("flow:") and ours[i - 1][0] == r[0] - 1:
            where.append(i)
            continue
        if r[1] in (HELP_PROVIDER, PASS_PROVIDER):
            continue
        kept.append(r)
    return kept, where


def help_rows(ours: list[Row]) -> list[tuple[int, Row]]:
    return [(i, r) for i, r in enumerate(ours) if r[1] == HELP_PROVIDER]


def split_added(ours: list[Row], name: str) -> tuple[list[Row], list[Row]]:
    """The subflow setup added (its row and every row under it), and the rest."""
    start = [r[1] for r in ours].index(name)
    end = start + 1
    while end < len(ours) and ours[end][0] > ours[start][0]:
        end += 1
    return ours[start:end], ours[:start] + ours[end:]


def setup(twostep: Twostep, *args: str) -> Any:
    r = twostep("setup", "--no-service-client", *args)
    assert r.code == 0, r.err + r.out
    return r


def switch(admin: Admin, realm: str, flow: str, provider: str, requirement: str) -> None:
    for ex in admin.get(f"/{realm}/authentication/flows/{quote(flow)}/executions"):
        if ex.get("providerId") == provider:
            admin.put(f"/{realm}/authentication/flows/{quote(flow)}/executions", {**ex, "requirement": requirement})
            return
    raise AssertionError(f"{provider} not in {flow}")


def add_step(admin: Admin, realm: str, parent: str, provider: str, requirement: str,
             config: dict[str, str] | None = None) -> None:
    admin.post(f"/{realm}/authentication/flows/{quote(parent)}/executions/execution", {"provider": provider})
    ex = [e for e in admin.get(f"/{realm}/authentication/flows/{quote(parent)}/executions") if e["level"] == 0][-1]
    admin.put(f"/{realm}/authentication/flows/{quote(parent)}/executions", {**ex, "requirement": requirement})
    if config:
        admin.post(f"/{realm}/authentication/executions/{ex['id']}/config",
                   {"alias": f"{parent} {provider}", "config": config})


def add_subflow(admin: Admin, realm: str, parent: str, alias: str, requirement: str) -> None:
    admin.post(f"/{realm}/authentication/flows/{quote(parent)}/executions/flow",
               {"alias": alias, "type": "basic-flow", "provider": "registration-page-form", "description": alias})
    ex = [e for e in admin.get(f"/{realm}/authentication/flows/{quote(parent)}/executions") if e["level"] == 0][-1]
    admin.put(f"/{realm}/authentication/flows/{quote(parent)}/executions", {**ex, "requirement": requirement})


def new_flow(admin: Admin, realm: str, alias: str) -> None:
    admin.post(f"/{realm}/authentication/flows",
               {"alias": alias, "description": "custom", "providerId": "basic-flow", "topLevel": True,
                "builtIn": False})


@pytest.mark.parametrize("codes", ["off", "required"])
def test_stock_flow_is_kept_step_by_step(twostep: Twostep, admin: Admin, realm: str, codes: str) -> None:
    source = rows(admin, realm, "browser")
    setup(twostep, "--backup-codes", codes)
    rep = admin.get(f"/{realm}")
    assert rep["browserFlow"] == "twostep browser"
    kept, where = without_condition(rows(admin, realm, "twostep browser"), condition_id(admin, realm))
    assert len(where) == 1, "one second-factor subflow, one condition"
    ours = rows(admin, realm, "twostep browser")
    assert ours[where[0] - 1] == (1, f"flow:{SECOND_FACTOR_SUBFLOW}", "CONDITIONAL"), "first in the 2FA subflow"
    assert ours[where[0]][2] == "REQUIRED"
    if provider_loaded(admin, realm):
        # "I lost my phone: ask an administrator": the last alternative of the 2FA subflow.
        (at, row), = help_rows(ours)
        assert row == (2, HELP_PROVIDER, "ALTERNATIVE")
        assert at > where[0] and (at + 1 == len(ours) or ours[at + 1][0] < 2), "last in its subflow"
        assert ours[at - 1] == (2, PASS_PROVIDER, "ALTERNATIVE"), "the access pass right before it"
    else:
        assert not help_rows(ours)
    if codes == "off":
        assert kept == source, "every step of the realm's flow, same requirement, same order"
    else:
        # The one change backup codes ask for: Keycloak's own recovery-code form, DISABLED in the
        # stock flow, is offered beside the OTP form.
        expected = [(lvl, p, "ALTERNATIVE") if p == "auth-recovery-authn-code-form" else (lvl, p, req)
                    for lvl, p, req in source]
        assert kept == expected
    assert rows(admin, realm, "browser") == source, "the realm's own flow is untouched"
    policy = json.loads(rep["attributes"]["twostep.policy"])
    assert policy["backup_codes"] == codes and policy["previous_browser_flow"] == "browser"
    assert len(policy["browser_source_digest"]) == 16

    reset_source = rows(admin, realm, "reset credentials")
    reset_kept, reset_where = without_condition(rows(admin, realm, "twostep reset credentials"),
                                                condition_id(admin, realm))
    assert len(reset_where) == 1
    # The stock reset flow has no second factor: one subflow is added right after the e-mail link.
    added, rest = split_added(reset_kept, "flow:second factor")
    assert added[0] == (0, "flow:second factor", "CONDITIONAL"), added
    assert {r[1] for r in added[1:]} >= {"conditional-user-configured", "auth-otp-form"}
    assert rest == reset_source, "choose user, e-mail link, new password, Keycloak's own Reset OTP: all kept"
    assert reset_kept.index(added[0]) == [r[1] for r in reset_kept].index("reset-credential-email") + 1

    r = twostep("teardown")
    assert r.code == 0, r.err
    rep = admin.get(f"/{realm}")
    assert (rep["browserFlow"], rep["resetCredentialsFlow"]) == ("browser", "reset credentials")


def test_kerberos_and_webauthn_switched_on_survive_setup(twostep: Twostep, admin: Admin, realm: str,
                                                         make_user: MakeUser,
                                                          browser: Browser) -> None:
    switch(admin, realm, "browser", "auth-spnego", "ALTERNATIVE")
    switch(admin, realm, "browser", "webauthn-authenticator", "ALTERNATIVE")
    switch(admin, realm, "browser", "auth-recovery-authn-code-form", "ALTERNATIVE")
    source = rows(admin, realm, "browser")
    # Kept exactly when the organization trusts Kerberos (a ticket alone signs in); the default
    # (--kerberos second-factor) disables it in the copy: tests/test_doors_first_factors.py.
    setup(twostep, "--kerberos", "trusted")
    kept, where = without_condition(rows(admin, realm, "twostep browser"), condition_id(admin, realm))
    assert kept == source and len(where) == 1
    assert ("auth-spnego" in [r[1] for r in kept]) and (0, "auth-spnego", "ALTERNATIVE") in kept
    assert (2, "webauthn-authenticator", "ALTERNATIVE") in kept
    # Kerberos ALTERNATIVE and no ticket: Keycloak falls back to the password form; OTP is still asked.
    alice = make_user("alice", otp=True)
    b = browser()
    page = b.open()
    assert page.status == 401 and "Kerberos" in page.text, "Kerberos is offered first, as before setup"
    b.submit({"continue": "CONTINUE"})  # what a browser without a ticket does (the page submits itself)
    page = b.submit({"username": alice.username, "password": alice.password})
    assert page.kind == "otp", page.summary()
    b.submit({"otp": alice.code()})
    finish_sign_in(b, admin, realm)
    assert twostep("teardown").code == 0
    assert admin.get(f"/{realm}")["browserFlow"] == "browser"
    assert rows(admin, realm, "browser") == source


def test_identity_first_custom_flow_is_kept_and_second_factor_asked(twostep: Twostep, admin: Admin, realm: str,
                                                                    make_user: MakeUser, browser: Browser) -> None:
    new_flow(admin, realm, "corp login")
    add_step(admin, realm, "corp login", "auth-cookie", "ALTERNATIVE")
    add_subflow(admin, realm, "corp login", "corp forms", "ALTERNATIVE")
    add_step(admin, realm, "corp forms", "auth-username-form", "REQUIRED")
    add_step(admin, realm, "corp forms", "auth-password-form", "REQUIRED")
    # A custom step of the realm's own: members of role "blocked" are turned away after the password.
    admin.post(f"/{realm}/roles", {"name": "blocked"})
    add_subflow(admin, realm, "corp forms", "corp blocked", "CONDITIONAL")
    add_step(admin, realm, "corp blocked", "conditional-user-role", "REQUIRED", {"condUserRole": "blocked"})
    add_step(admin, realm, "corp blocked", "deny-access-authenticator", "REQUIRED")
    admin.put(f"/{realm}", {"browserFlow": "corp login"})
    source = rows(admin, realm, "corp login")

    alice = make_user("alice", otp=True)
    mallory = make_user("mallory", otp=True)
    role = admin.get(f"/{realm}/roles/blocked")
    admin.post(f"/{realm}/users/{mallory.id}/role-mappings/realm", [role])

    def sign_in(user: Any) -> Any:
        b = browser()
        assert b.open().kind == "username", "identity-first: the username alone comes first"
        page = b.submit({"username": user.username})
        assert page.kind == "password", page.summary()
        return b, b.submit({"password": user.password})

    b, page = sign_in(alice)
    assert b.logged_in(), "before setup this realm asks for no second factor"

    r = setup(twostep, "--dry-run")
    assert "<- added" in r.out and "corp login" in r.out
    setup(twostep)
    ours = rows(admin, realm, "twostep browser")
    kept, where = without_condition(ours, condition_id(admin, realm))
    assert len(where) == 1
    added, rest = split_added(kept, "flow:second factor")
    assert added[0] == (1, "flow:second factor", "CONDITIONAL")
    assert rest == source, "username form, password form, role check kept"
    assert kept.index(added[0]) == kept.index((1, "auth-password-form", "REQUIRED")) + 1

    b, page = sign_in(alice)
    assert page.kind == "otp", page.summary()
    b.submit({"otp": alice.code()})
    finish_sign_in(b, admin, realm)
    b, page = sign_in(mallory)
    assert page.kind == "otp", page.summary()
    page = b.submit({"otp": mallory.code()})
    assert not b.logged_in(), "the realm's own deny step still turns the blocked user away"

    assert twostep("setup", "--no-service-client", "--json").out.count('"changes": []') == 1
    assert twostep("teardown").code == 0
    assert admin.get(f"/{realm}")["browserFlow"] == "corp login"
    assert rows(admin, realm, "corp login") == source


@pytest.mark.parametrize("shape", ["top-level", "plain-subflow"])
def test_flow_that_cannot_be_adapted_is_refused_and_nothing_changes(twostep: Twostep, admin: Admin, realm: str,
                                                                    shape: str) -> None:
    new_flow(admin, realm, "strict")
    if shape == "top-level":
        add_step(admin, realm, "strict", "auth-username-password-form", "REQUIRED")
        add_step(admin, realm, "strict", "auth-otp-form", "REQUIRED")
    else:
        add_subflow(admin, realm, "strict", "strict forms", "REQUIRED")
        add_step(admin, realm, "strict forms", "auth-username-password-form", "REQUIRED")
        add_step(admin, realm, "strict forms", "auth-otp-form", "REQUIRED")
    admin.put(f"/{realm}", {"browserFlow": "strict"})
    before = admin.get(f"/{realm}")
    flows_before = sorted(f["alias"] for f in admin.get(f"/{realm}/authentication/flows"))
    profile_before = admin.get(f"/{realm}/users/profile")

    r = twostep("setup", "--no-service-client")
    assert r.code != 0
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.err, r.err
    assert "cannot adapt" in lines[0] and "'auth-otp-form'" in lines[0] and "REQUIRED" in lines[0], lines[0]
    assert ("top level" in lines[0]) if shape == "top-level" else ("'strict forms'" in lines[0])

    after = admin.get(f"/{realm}")
    assert after["browserFlow"] == "strict"
    assert after.get("attributes", {}).get("twostep.policy") is None
    assert after.get("bruteForceProtected") == before.get("bruteForceProtected")
    assert sorted(f["alias"] for f in admin.get(f"/{realm}/authentication/flows")) == flows_before
    assert admin.get(f"/{realm}/users/profile") == profile_before
    dry = twostep("setup", "--no-service-client", "--dry-run")
    assert dry.code != 0 and "cannot adapt" in dry.err


def test_status_reports_a_source_flow_changed_after_setup(twostep: Twostep, admin: Admin, realm: str) -> None:
    setup(twostep)
    assert twostep("status").code == 0
    switch(admin, realm, "browser", "webauthn-authenticator", "ALTERNATIVE")
    st = twostep("status", "--json")
    assert st.code == 1
    checks = {c["name"]: c for c in json.loads(st.out)["checks"]}
    assert not checks["source flow 'browser'"]["ok"]
    assert "changed since setup" in checks["source flow 'browser'"]["detail"]
    assert "twostep setup" in checks["source flow 'browser'"]["fix"]
    plan = twostep("setup", "--no-service-client", "--dry-run")
    assert "rebuild flow 'twostep browser'" in plan.out and "webauthn-authenticator" in plan.out
    setup(twostep)
    assert twostep("status").code == 0
    assert (2, "webauthn-authenticator", "ALTERNATIVE") in rows(admin, realm, "twostep browser")


def test_damaged_adapted_flow_is_reported_and_repaired(twostep: Twostep, admin: Admin, realm: str) -> None:
    switch(admin, realm, "browser", "webauthn-authenticator", "ALTERNATIVE")
    setup(twostep)
    switch(admin, realm, "twostep browser", "webauthn-authenticator", "DISABLED")
    st = twostep("status", "--json")
    check = {c["name"]: c for c in json.loads(st.out)["checks"]}["flow 'twostep browser'"]
    assert st.code == 1 and not check["ok"] and "webauthn-authenticator is DISABLED" in check["detail"]
    setup(twostep)
    assert twostep("status").code == 0
    assert (2, "webauthn-authenticator", "ALTERNATIVE") in rows(admin, realm, "twostep browser")

    # The condition itself deleted (either mode): reported, and put back first in the subflow.
    condition = condition_id(admin, realm)
    ex = next(e for e in admin.get(f"/{realm}/authentication/flows/twostep%20browser/executions")
              if e.get("providerId") == condition)
    admin.delete(f"/{realm}/authentication/executions/{ex['id']}")
    st = twostep("status", "--json")
    check = {c["name"]: c for c in json.loads(st.out)["checks"]}["flow 'twostep browser'"]
    assert st.code == 1 and not check["ok"] and condition in check["detail"], check
    setup(twostep)
    assert twostep("status").code == 0
    ours = rows(admin, realm, "twostep browser")
    assert ours[ours.index((1, f"flow:{SECOND_FACTOR_SUBFLOW}", "CONDITIONAL")) + 1] == (2, condition, "REQUIRED")


def test_backup_codes_come_after_the_device(twostep: Twostep, admin: Admin, realm: str) -> None:
    ras = {r["alias"]: r for r in admin.get(f"/{realm}/authentication/required-actions")}
    totp = ras["CONFIGURE_TOTP"]
    admin.put(f"/{realm}/authentication/required-actions/CONFIGURE_TOTP",
              {**totp, "priority": ras["CONFIGURE_RECOVERY_AUTHN_CODES"]["priority"] + 10})
    plan = twostep("setup", "--no-service-client", "--dry-run")
    assert "CONFIGURE_TOTP before CONFIGURE_RECOVERY_AUTHN_CODES" in plan.out
    setup(twostep)
    ras = {r["alias"]: r for r in admin.get(f"/{realm}/authentication/required-actions")}
    assert ras["CONFIGURE_TOTP"]["priority"] < ras["CONFIGURE_RECOVERY_AUTHN_CODES"]["priority"]
    assert "no changes" in setup(twostep).out


def test_fallback_mode_keeps_todays_behaviour_and_says_sync_is_the_clock(twostep: Twostep, admin: Admin, realm: str,
                                                                         make_user: MakeUser, browser: Browser,
                                                                         keycloak: Keycloak) -> None:
    setup(twostep, "--decide-with", "sync")
    policy = json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])
    assert (policy["decided_by"], policy["record_store"]) == ("sync", "attributes")
    ours = rows(admin, realm, "twostep browser")
    assert (2, "conditional-user-attribute", "REQUIRED") in ours and CONDITION_PROVIDER not in str(ours)
    for cmd in ("status", "doctor"):
        out = json.loads(twostep(cmd, "--json").out)
        check = {c["name"]: c for c in out["checks"]}["bypass expiry decided by"]
        assert "sync only" in check["detail"] and "ends only when `twostep sync` runs" in check["detail"], check
        if not provider_loaded(admin, realm):
            assert "docs/provider.md" in check["detail"]

    user = make_user("traveller", otp=True)
    assert browser().login(user.username, user.password).kind == "otp"
    kc = client(keycloak.url, realm)
    grant_ending_at(kc, user.username, utcnow() + timedelta(minutes=4))
    b = browser()
    b.login(user.username, user.password)
    assert b.logged_in(), "during a bypass the password alone"
    actor = Actor("tester@master", True, (("master", "tester"),))
    bypass.revoke(kc, system_clock, MemorySink([]), actor, user.username, reason="back")
    assert browser().login(user.username, user.password).kind == "otp"

    if provider_loaded(admin, realm):
        setup(twostep, "--decide-with", "provider")
        check = {c["name"]: c for c in json.loads(twostep("status", "--json").out)["checks"]}
        assert "the server" in check["bypass expiry decided by"]["detail"]
    else:
        r = twostep("setup", "--no-service-client", "--decide-with", "provider")
        assert r.code != 0 and len(r.err.strip().splitlines()) == 1 and CONDITION_PROVIDER in r.err
        assert json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])["decided_by"] == "sync"
    assert twostep("teardown").code == 0
    rep = admin.get(f"/{realm}")
    assert (rep["browserFlow"], rep["resetCredentialsFlow"]) == ("browser", "reset credentials")
