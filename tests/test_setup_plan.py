"""Setup's planner is pure: what Keycloak has in, actions out as values (no Keycloak here)."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from twostep import flows
from twostep.flows import FlowSpec, Step, Sub
from twostep.policy import BROWSER_FLOW, POLICY_ATTR, RESET_FLOW
from twostep.realm_setup import (
    REQUIRED_ACTIONS,
    TEMP_SUFFIX,
    Actual,
    Desired,
    FlowTarget,
    Rebuild,
    plan,
    plan_teardown,
)
from twostep.setup_actions import Action, Kind

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)

BROWSER = FlowSpec("browser", "browser based authentication", (
    Step("auth-cookie", "ALTERNATIVE"),
    Sub("forms", "ALTERNATIVE", (
        Step("auth-username-password-form", "REQUIRED"),
        Sub("Browser - Conditional OTP", "CONDITIONAL", (
            Step("conditional-user-configured", "REQUIRED"),
            Step("auth-otp-form", "REQUIRED"),
        )),
    )),
))
RESET = FlowSpec("reset credentials", "reset credentials for a user", (
    Step("reset-credentials-choose-user", "REQUIRED"),
    Step("reset-credential-email", "REQUIRED"),
    Step("reset-password", "REQUIRED"),
))


def _target(key: str, alias: str, source: FlowSpec, reset: bool, actual: FlowSpec | None = None) -> FlowTarget:
    t = FlowTarget(key, alias, source.alias, source, flows.provider_condition(), reset, "required", False, actual)
    t.desired = t.spec_for(alias)
    return t


def fresh() -> Actual:
    """A new realm: stock flows bound, nothing of twostep yet."""
    return Actual(
        realm={"realm": "acme", "browserFlow": "browser", "resetCredentialsFlow": "reset credentials",
               "attributes": {}},
        flows=[_target("browserFlow", BROWSER_FLOW, BROWSER, False),
               _target("resetCredentialsFlow", RESET_FLOW, RESET, True)],
        provider_loaded=True, provider_mode=True, leftovers=[],
        required_actions=[{"alias": REQUIRED_ACTIONS[0], "enabled": True, "priority": 10},
                          {"alias": REQUIRED_ACTIONS[1], "enabled": False, "priority": 20}],
        profile={"attributes": [{"name": "username"}], "groups": []},
        service_client=None, service_roles_missing=[], to_enforce=[],
        flow_ids={"browser": "id-browser", "reset credentials": "id-reset"},
    )


def applied(actual: Actual, actions: list[Action]) -> Actual:
    """What Keycloak would hold after `apply` (a model of each kind's effect, for the second run)."""
    out = copy.deepcopy(actual)
    for a in actions:
        if a.kind is Kind.UPDATE_REALM:
            out.realm.update(copy.deepcopy(a.payload))
        elif a.kind is Kind.UPDATE_REQUIRED_ACTION:
            out.required_actions = [a.payload if ra["alias"] == a.target else ra for ra in out.required_actions]
        elif a.kind is Kind.UPDATE_USER_PROFILE:
            out.profile = a.payload
        elif a.kind is Kind.CREATE_FLOW:
            t = next(t for t in out.flows if t.alias == a.target)
            t.actual = a.payload[1]
            out.flow_ids[a.target] = f"id-{a.target}"
        else:  # pragma: no cover - a kind this model does not know yet
            raise AssertionError(a.kind)
    return out


def test_a_new_realm_plans_settings_profile_flows_and_binding_in_that_order() -> None:
    actual = fresh()
    actions = plan(Desired(), actual, NOW)
    assert [(a.kind, a.target) for a in actions] == [
        (Kind.UPDATE_REALM, "acme"),
        (Kind.UPDATE_REQUIRED_ACTION, REQUIRED_ACTIONS[1]),
        (Kind.UPDATE_USER_PROFILE, "user profile"),
        (Kind.CREATE_FLOW, BROWSER_FLOW),
        (Kind.CREATE_FLOW, RESET_FLOW),
        (Kind.UPDATE_REALM, "acme"),
    ]
    settings, enable, _profile, browser, _reset, bind = actions
    assert POLICY_ATTR in settings.payload["attributes"] and settings.payload["otpPolicyType"] == "totp"
    assert enable.payload == {"alias": REQUIRED_ACTIONS[1], "enabled": True, "priority": 20}
    assert browser.payload == ("browser", actual.flows[0].desired)
    assert bind.payload == {"browserFlow": BROWSER_FLOW, "resetCredentialsFlow": RESET_FLOW}
    assert str(bind) == bind.text == ("bind browserFlow='twostep browser' and "
                                      "resetCredentialsFlow='twostep reset credentials'")


def test_the_plan_is_values_the_same_input_plans_the_same_and_the_input_is_untouched() -> None:
    actual = fresh()
    before = copy.deepcopy(actual)
    assert plan(Desired(), actual, NOW) == plan(Desired(), fresh(), NOW)
    assert actual == before


def test_a_second_run_plans_nothing() -> None:
    first = plan(Desired(), fresh(), NOW)
    assert plan(Desired(), applied(fresh(), first), NOW) == []


def test_a_drifted_flow_is_rebuilt_with_what_apply_needs_known_at_planning() -> None:
    done = applied(fresh(), plan(Desired(), fresh(), NOW))
    t = done.flows[0]
    assert t.desired is not None
    damaged = replace(t.desired, children=t.desired.children[:1])
    done.flows[0] = _target("browserFlow", BROWSER_FLOW, BROWSER, False, actual=damaged)
    (action,) = plan(Desired(), done, NOW)
    assert action.kind is Kind.REBUILD_FLOW and action.target == BROWSER_FLOW
    assert action.payload == Rebuild(done.flows[0], bound=True, flow_id=f"id-{BROWSER_FLOW}", leftover_temp_id=None)


def test_a_half_built_copy_is_removed_unless_it_is_bound() -> None:
    done = applied(fresh(), plan(Desired(), fresh(), NOW))
    done.leftovers = [BROWSER_FLOW + TEMP_SUFFIX, RESET_FLOW + TEMP_SUFFIX]
    done.flow_ids.update({BROWSER_FLOW + TEMP_SUFFIX: "t1", RESET_FLOW + TEMP_SUFFIX: "t2"})
    done.realm["resetCredentialsFlow"] = RESET_FLOW + TEMP_SUFFIX
    actions = plan(Desired(), done, NOW)
    assert actions[0] == Action(Kind.DELETE_FLOW, BROWSER_FLOW + TEMP_SUFFIX, "t1",
                                f"remove the half-built flow {BROWSER_FLOW + TEMP_SUFFIX!r} left by an interrupted run")
    assert [a.kind for a in actions[1:]] == [Kind.UPDATE_REALM]  # bind ours again; the copy goes next run


def test_a_shape_no_condition_can_guard_is_refused_before_any_action() -> None:
    actual = fresh()
    actual.flows[0].error = "the realm's flow 'browser': 'auth-otp-form' runs outside any conditional subflow"
    with pytest.raises(flows.CannotAdapt, match="outside any conditional subflow"):
        plan(Desired(), actual, NOW)


def test_teardown_binds_back_deletes_our_flows_by_id_and_drops_the_record() -> None:
    done = applied(fresh(), plan(Desired(), fresh(), NOW))
    ids = {**done.flow_ids}
    actions = plan_teardown(done.realm, ids)
    attrs: dict[str, Any] = {k: v for k, v in done.realm["attributes"].items() if k != POLICY_ATTR}
    assert [(a.kind, a.target, a.payload) for a in actions] == [
        (Kind.UPDATE_REALM, "acme", {"browserFlow": "browser", "resetCredentialsFlow": "reset credentials"}),
        (Kind.DELETE_FLOW, BROWSER_FLOW, f"id-{BROWSER_FLOW}"),
        (Kind.DELETE_FLOW, RESET_FLOW, f"id-{RESET_FLOW}"),
        (Kind.UPDATE_REALM, "acme", {"attributes": attrs}),
    ]


def test_an_older_setup_s_extra_roles_are_removed_and_fallback_keeps_manage_realm() -> None:
    """Issue 22: the day-to-day account holds exactly its row; an older setup granted manage-realm and
    view-events, and a second run converges (fallback mode's lock roles need manage-realm)."""
    from twostep.policy import SERVICE_CLIENT_ID, SERVICE_ROLES, service_roles
    from twostep.web_oidc_client import roles_change

    assert set(SERVICE_ROLES) == {"manage-users", "view-users", "query-users", "query-groups", "view-realm"}
    assert service_roles(False) == (*SERVICE_ROLES, "manage-realm")
    old = frozenset({*SERVICE_ROLES, "manage-realm", "view-events"})
    assert roles_change(old, SERVICE_ROLES) == ((), ("manage-realm", "view-events"))
    assert roles_change(old, service_roles(False)) == ((), ("view-events",))
    assert roles_change(frozenset(SERVICE_ROLES), SERVICE_ROLES) == ((), ())
    actual = replace(fresh(), manage_service_client=True, service_client={"id": "c1"},
                     service_roles_extra=["manage-realm", "view-events"])
    (step,) = [a for a in plan(Desired(), actual, NOW) if a.target == SERVICE_CLIENT_ID]
    assert step.kind is Kind.SET_SERVICE_ROLES
    assert step.payload == {"grant": (), "remove": ("manage-realm", "view-events")}
    assert "remove manage-realm, view-events" in step.text
    done = replace(actual, service_roles_extra=[])
    assert not [a for a in plan(Desired(), done, NOW) if a.target == SERVICE_CLIENT_ID]
