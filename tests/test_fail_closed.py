"""Damage to anything the fallback flow (the marker attribute, no provider) depends on asks users
for more, never for less; setup, status and doctor see the damage, and setup repairs it. Every
setup here is `--decide-with sync`: these are the marker condition's properties. The provider's
own fail-closed cases are in tests/test_provider_login.py, drift of an adapted flow in either mode
in tests/test_flow_adaptation.py."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Admin, Browser, Keycloak, MakeUser, Twostep


def _setup(twostep: Twostep, *args: str) -> None:
    r = twostep("setup", "--no-service-client", "--decide-with", "sync", *args)
    assert r.code == 0, r.err


def _marker_config(admin: Admin, realm: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for ex in admin.get(f"/{realm}/authentication/flows/twostep%20browser/executions"):
        if ex.get("providerId") == "conditional-user-attribute":
            return ex, admin.get(f"/{realm}/authentication/config/{ex['authenticationConfig']}")
    raise AssertionError("marker condition not found")


def _bypass(admin: Admin, realm: str, user_id: str) -> None:
    rep = admin.get(f"/{realm}/users/{user_id}")
    rep.setdefault("attributes", {})["twostep_bypass"] = ["true"]
    admin.put(f"/{realm}/users/{user_id}", rep)


def _flow_ok(twostep: Twostep) -> bool:
    checks = {c["name"]: c for c in json.loads(twostep("status", "--json").out)["checks"]}
    return bool(checks["flow 'twostep browser'"]["ok"])


def test_marker_attribute_skips_second_factor_only_for_that_user(twostep: Twostep, admin: Admin, realm: str,
                                                                 make_user: MakeUser,
                                                                 browser: Browser) -> None:
    _setup(twostep)
    on_leave = make_user("onleave", otp=True)
    other = make_user("other", otp=True)
    _bypass(admin, realm, on_leave.id)
    b = browser()
    b.login(on_leave.username, on_leave.password)
    assert b.logged_in(), "the bypass marker lets the password alone through"
    assert browser().login(other.username, other.password).kind == "otp"


def test_marker_on_a_group_is_ignored(twostep: Twostep, admin: Admin, realm: str, make_user: MakeUser,
                                      browser: Browser) -> None:
    _setup(twostep)
    admin.post(f"/{realm}/groups", {"name": "sneaky", "attributes": {"twostep_bypass": ["true"]}})
    u = make_user("member", otp=True, groups=["/sneaky"])
    assert browser().login(u.username, u.password).kind == "otp"


def test_renamed_marker_in_condition_config_fails_closed(twostep: Twostep, admin: Admin, realm: str,
                                                         make_user: MakeUser,
                                                         browser: Browser) -> None:
    _setup(twostep)
    bypassed = make_user("bypassed", otp=True)
    _bypass(admin, realm, bypassed.id)
    _, cfg = _marker_config(admin, realm)
    cfg["config"]["attribute_name"] = "renamed_marker"
    admin.put(f"/{realm}/authentication/config/{cfg['id']}", cfg)
    page = browser().login(bypassed.username, bypassed.password)
    assert page.kind == "otp", "with the condition pointing elsewhere, even a bypassed user is asked"

    status = twostep("status", "--json")
    assert status.code == 1
    checks = {c["name"]: c for c in json.loads(status.out)["checks"]}
    assert not checks["flow 'twostep browser'"]["ok"]
    assert "damaged" in checks["flow 'twostep browser'"]["detail"]
    plan = twostep("setup", "--no-service-client", "--decide-with", "sync", "--dry-run")
    assert "rebuild flow 'twostep browser'" in plan.out

    _setup(twostep)
    assert _flow_ok(twostep)
    b = browser()
    b.login(bypassed.username, bypassed.password)
    assert b.logged_in(), "after repair the marker works again"


def test_deleted_condition_config_fails_closed(twostep: Twostep, admin: Admin, realm: str, make_user: MakeUser,
                                               browser: Browser) -> None:
    _setup(twostep)
    bypassed = make_user("bypassed", otp=True)
    plain = make_user("plain", otp=True)
    _bypass(admin, realm, bypassed.id)
    _, cfg = _marker_config(admin, realm)
    admin.delete(f"/{realm}/authentication/config/{cfg['id']}")
    for user in (bypassed, plain):
        b = browser()
        b.login(user.username, user.password)
        assert not b.logged_in(), f"{user.username} must not get in with the password alone"
    assert twostep("status").code == 1
    assert not _flow_ok(twostep)
    _setup(twostep)
    assert _flow_ok(twostep)


def test_deleted_condition_step_fails_closed(twostep: Twostep, admin: Admin, realm: str, make_user: MakeUser,
                                             browser: Browser) -> None:
    _setup(twostep)
    bypassed = make_user("bypassed", otp=True)
    _bypass(admin, realm, bypassed.id)
    ex, _ = _marker_config(admin, realm)
    admin.delete(f"/{realm}/authentication/executions/{ex['id']}")
    b = browser()
    b.login(bypassed.username, bypassed.password)
    assert not b.logged_in(), "without the condition the second factor runs for everyone"


def test_deleted_marker_declaration_fails_closed_and_is_repaired(twostep: Twostep, admin: Admin, realm: str,
                                                                 make_user: MakeUser,
                                                                 browser: Browser) -> None:
    _setup(twostep)
    u = make_user("user1", otp=True)
    profile = admin.get(f"/{realm}/users/profile")
    profile["attributes"] = [a for a in profile["attributes"] if a["name"] != "twostep_bypass"]
    admin.put(f"/{realm}/users/profile", profile)
    assert browser().login(u.username, u.password).kind == "otp"
    st = twostep("status", "--json")
    checks = {c["name"]: c for c in json.loads(st.out)["checks"]}
    assert st.code == 1 and not checks["bypass marker declaration"]["ok"]
    _setup(twostep)
    decl = {a["name"]: a for a in admin.get(f"/{realm}/users/profile")["attributes"]}["twostep_bypass"]
    assert decl["permissions"] == {"view": ["admin"], "edit": ["admin"]}


def test_user_cannot_see_or_set_the_marker_in_the_account_api(twostep: Twostep, admin: Admin, realm: str,
                                                              make_user: MakeUser,
                                                             keycloak: Keycloak) -> None:
    _setup(twostep)
    profile = admin.get(f"/{realm}/users/profile")
    for a in profile["attributes"]:
        if a["name"].startswith("twostep_"):
            assert a["permissions"] == {"view": ["admin"], "edit": ["admin"]}, a
    widened = admin.get(f"/{realm}/users/profile")
    for a in widened["attributes"]:
        if a["name"] == "twostep_bypass":
            a["permissions"] = {"view": ["admin", "user"], "edit": ["admin", "user"]}
    admin.put(f"/{realm}/users/profile", widened)
    st = json.loads(twostep("status", "--json").out)
    assert not {c["name"]: c for c in st["checks"]}["bypass marker declaration"]["ok"]
    _setup(twostep)
    decl = {a["name"]: a for a in admin.get(f"/{realm}/users/profile")["attributes"]}["twostep_bypass"]
    assert decl["permissions"] == {"view": ["admin"], "edit": ["admin"]}


def test_damaged_policy_record_enforces_on_everyone(twostep: Twostep, admin: Admin, realm: str, make_user: MakeUser,
                                                    browser: Browser) -> None:
    admin.post(f"/{realm}/groups", {"name": "staff"})
    outsider = make_user("outsider")
    _setup(twostep, "--enforce", "group:staff")
    rep = admin.get(f"/{realm}")
    rep["attributes"]["twostep.policy"] = "{not json"
    admin.put(f"/{realm}", {"attributes": rep["attributes"]})
    st = twostep("status", "--json")
    assert st.code == 1
    checks = {c["name"]: c for c in json.loads(st.out)["checks"]}
    assert not checks["policy record"]["ok"]
    assert json.loads(st.out)["counts"]["users_in_scope"] >= 1, "a damaged record puts everyone in scope"
    assert outsider.username


def test_status_fails_when_a_bypass_outlived_its_time(twostep: Twostep, admin: Admin, realm: str,
                                                      make_user: MakeUser) -> None:
    """Keycloak's flow has no clock: if the sync job stops, status must say so loudly."""
    _setup(twostep)
    late = make_user("late", otp=True)
    rep = admin.get(f"/{realm}/users/{late.id}")
    rep.setdefault("attributes", {}).update({
        "twostep_bypass": ["true"], "twostep_bypass_until": ["2026-01-01T00:00:00Z"],
        "twostep_bypass_granted_at": ["2025-12-31T00:00:00Z"], "twostep_bypass_by": ["someone"],
        "twostep_bypass_reason": ["lost phone"]})
    admin.put(f"/{realm}/users/{late.id}", rep)
    st = twostep("status", "--json")
    assert st.code == 1
    check = {c["name"]: c for c in json.loads(st.out)["checks"]}["bypasses ended on time"]
    assert not check["ok"] and "late" in check["detail"] and "twostep sync" in check["detail"]
    assert twostep("sync").code == 0
    assert twostep("status").code == 0
