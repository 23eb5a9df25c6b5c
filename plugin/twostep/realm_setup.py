"""`twostep setup`: read the realm, plan what differs from the policy (pure), apply the plan.

A second run plans nothing; `--dry-run` is the plan without `apply`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from . import flows
from .enforcement import needs_enrollment, require_totp, users_in_scope
from .keycloak_adapter import JSON, KeycloakClient
from .policy import (
    ADMIN_ONLY_ATTRS,
    BROWSER_FLOW,
    POLICY_ATTR,
    PROFILE_GROUP,
    RESET_FLOW,
    SERVICE_CLIENT_ID,
    SERVICE_ROLES,
    BruteForce,
    Enforcement,
    OtpPolicy,
    RealmPolicy,
    utc_iso,
)
from .web.client_setup import WEB_CLIENT_ID
from .web.client_setup import plan_steps as web_client_steps
from .web.client_setup import read_service_roles as web_client_roles

REQUIRED_ACTIONS = ("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES")
TEMP_SUFFIX = " rebuilding"
ADMIN_ONLY = {"view": ["admin"], "edit": ["admin"]}
ENFORCE_LIMIT = 100_000


@dataclass(frozen=True)
class Desired:
    otp: OtpPolicy = field(default_factory=OtpPolicy)
    brute: BruteForce = field(default_factory=BruteForce)
    enforcement: Enforcement = field(default_factory=Enforcement)
    bypass_max_s: int | None = None
    theme: str | None = None
    service_client: bool = True
    web_url: str | None = None  # create/converge the web app's sign-in client (twostep.web.client_setup)


@dataclass
class Actual:
    realm: JSON
    browser: flows.FlowSpec | None
    reset: flows.FlowSpec | None
    leftovers: list[str]
    required_actions: list[JSON]
    profile: JSON
    service_client: JSON | None
    service_roles_missing: list[str]
    to_enforce: list[JSON]
    manage_service_client: bool = False
    web_client: JSON | None = None
    web_client_roles: frozenset[str] | None = None


Secret = Callable[[str, str], None]


@dataclass(frozen=True)
class Action:
    """One change. `run` does it; `text` says what it does, for --dry-run and the report."""

    text: str
    run: Callable[[KeycloakClient, Secret], None] = field(compare=False, repr=False)


def _call(method: str, arg: Any, kc: KeycloakClient, _secret: Secret) -> None:
    getattr(kc, method)(arg)


def _with_kc(fn: Callable[..., None], *args: Any) -> Callable[[KeycloakClient, Secret], None]:
    return lambda kc, _secret: fn(kc, *args)


def _enforce_all(user_ids: list[str], kc: KeycloakClient, _secret: Secret) -> None:
    for uid in user_ids:
        require_totp(kc, uid)


def read_actual(kc: KeycloakClient, desired: Desired, now: datetime) -> Actual:
    realm = kc.get_realm()
    want_policy = _desired_policy(desired, realm, now)
    aliases = {f["alias"] for f in kc.flows()}
    # Signed in as the service account, the client exists (it is us) and its roles are what an
    # admin gave it; reading clients would need view-clients, which it deliberately lacks.
    manage_client = desired.service_client and not kc.settings.uses_service_account
    client = kc.find_client(SERVICE_CLIENT_ID) if manage_client else None
    missing_roles: list[str] = list(SERVICE_ROLES) if manage_client else []
    if client is not None:
        missing_roles = _missing_service_roles(kc, client)
    to_enforce = [
        u for u in users_in_scope(kc, want_policy) if needs_enrollment(u, want_policy, now)
    ][:ENFORCE_LIMIT]
    web_client = kc.find_client(WEB_CLIENT_ID) if desired.web_url else None
    return Actual(
        realm=realm,
        browser=flows.read_flow(kc, BROWSER_FLOW, flows.browser_spec()),
        reset=flows.read_flow(kc, RESET_FLOW, flows.reset_spec()),
        leftovers=sorted(a for a in aliases if a in {BROWSER_FLOW + TEMP_SUFFIX, RESET_FLOW + TEMP_SUFFIX}),
        required_actions=kc.required_actions(),
        profile=kc.user_profile(),
        service_client=client,
        service_roles_missing=missing_roles,
        to_enforce=to_enforce,
        manage_service_client=manage_client,
        web_client=web_client,
        web_client_roles=web_client_roles(kc, web_client),
    )


def _missing_service_roles(kc: KeycloakClient, client: JSON) -> list[str]:
    rm = kc.find_client("realm-management")
    if rm is None:
        return list(SERVICE_ROLES)
    sa = kc.service_account_user(client["id"])
    have = {r["name"] for r in kc.user_client_roles(sa["id"], rm["id"])}
    return [r for r in SERVICE_ROLES if r not in have]


def _desired_policy(desired: Desired, realm: JSON, now: datetime) -> RealmPolicy:
    current = RealmPolicy.from_json((realm.get("attributes") or {}).get(POLICY_ATTR))
    since = utc_iso(now)
    if current is not None and current.enforcement == desired.enforcement and current.enforce_since:
        since = current.enforce_since
    prev_browser = current.previous_browser_flow if current else None
    prev_reset = current.previous_reset_flow if current else None
    if realm.get("browserFlow") not in (BROWSER_FLOW, BROWSER_FLOW + TEMP_SUFFIX):
        prev_browser = realm.get("browserFlow")
    if realm.get("resetCredentialsFlow") not in (RESET_FLOW, RESET_FLOW + TEMP_SUFFIX):
        prev_reset = realm.get("resetCredentialsFlow")
    max_s = desired.bypass_max_s if desired.bypass_max_s is not None else (
        current.bypass_max_s if current else RealmPolicy().bypass_max_s)
    return RealmPolicy(desired.enforcement, since, max_s, prev_browser, prev_reset)


def plan(desired: Desired, actual: Actual, now: datetime) -> list[Action]:
    """Pure: what has to change for the realm to match the policy."""
    actions: list[Action] = []
    realm = actual.realm

    fields: dict[str, Any] = {
        **desired.otp.realm_fields(),
        **desired.brute.realm_fields(),
        "eventsEnabled": True,
        "adminEventsEnabled": True,
        "adminEventsDetailsEnabled": True,
    }
    if desired.theme is not None:
        fields["loginTheme"] = desired.theme
    changed = {k: v for k, v in fields.items() if realm.get(k) != v}
    otp_fields = desired.otp.realm_fields()
    if any(k in changed for k in otp_fields):
        # Keycloak keeps OTP policy fields only when they arrive together (the type among them).
        changed.update(otp_fields)
    attrs = dict(realm.get("attributes") or {})
    want_policy = _desired_policy(desired, realm, now).to_json()
    if attrs.get(POLICY_ATTR) != want_policy:
        attrs[POLICY_ATTR] = want_policy
        changed["attributes"] = attrs
    if changed:
        names = ", ".join(sorted(k for k in changed if k != "attributes"))
        text = "update realm settings: " + (names or "") + (
            (", " if names else "") + "policy record" if "attributes" in changed else "")
        actions.append(Action(text, partial(_call, "update_realm", changed)))

    for ra in actual.required_actions:
        if ra["alias"] in REQUIRED_ACTIONS and not ra.get("enabled"):
            fixed = {**ra, "enabled": True}
            actions.append(Action(f"enable required action {ra['alias']}",
                                  partial(_call, "update_required_action", fixed)))

    profile = _desired_profile(actual.profile)
    if profile != actual.profile:
        actions.append(Action("declare the bypass and backup-code record attributes (admin-only) in the user profile",
                              partial(_call, "update_user_profile", profile)))

    for alias in actual.leftovers:
        actions.append(Action(f"remove the half-built flow {alias!r} left by an interrupted run",
                              _with_kc(_delete_flow_if_unbound, alias)))
    binding = {"browserFlow": BROWSER_FLOW, "resetCredentialsFlow": RESET_FLOW}
    for spec, have, bind_key in ((flows.browser_spec(), actual.browser, "browserFlow"),
                                 (flows.reset_spec(), actual.reset, "resetCredentialsFlow")):
        drift = flows.differences(spec, have)
        if have is None:
            actions.append(Action(f"create flow {spec.alias!r}", _with_kc(flows.build_flow, spec)))
        elif drift:
            actions.append(Action(f"rebuild flow {spec.alias!r} ({'; '.join(drift)})",
                                  _with_kc(rebuild_flow, spec, bind_key)))
    unbound = {k: v for k, v in binding.items() if realm.get(k) != v}
    if unbound:
        actions.append(Action("bind " + " and ".join(f"{k}={v!r}" for k, v in unbound.items()),
                              partial(_call, "update_realm", unbound)))

    if actual.manage_service_client:
        if actual.service_client is None:
            actions.append(Action(f"create service-account client {SERVICE_CLIENT_ID!r} with roles "
                                  + ", ".join(SERVICE_ROLES), _create_service_client))
        elif actual.service_roles_missing:
            actions.append(Action(f"grant {SERVICE_CLIENT_ID!r} missing roles "
                                  + ", ".join(actual.service_roles_missing), _grant_service_roles))

    if desired.web_url:
        actions += [Action(text, run) for text, run in web_client_steps(desired.web_url, actual.web_client,
                                                                          actual.web_client_roles)]

    if actual.to_enforce:
        users = [(u["id"], u.get("username", u["id"])) for u in actual.to_enforce]
        actions.append(Action(f"require OTP setup (CONFIGURE_TOTP) at next login for {len(users)} user(s) "
                              "in scope whose grace period is over",
                              partial(_enforce_all, [uid for uid, _ in users])))
    return actions


def _desired_profile(profile: JSON) -> JSON:
    want = copy.deepcopy(profile)
    groups = want.setdefault("groups", [])
    if not any(g.get("name") == PROFILE_GROUP for g in groups):
        groups.append({"name": PROFILE_GROUP, "displayHeader": "Two-step authentication (admin only)",
                       "displayDescription": "Records of bypasses and admin-made backup codes"})
    attrs = want.setdefault("attributes", [])
    by_name = {a["name"]: a for a in attrs}
    for name in ADMIN_ONLY_ATTRS:
        decl = by_name.get(name)
        if decl is None:
            attrs.append({"name": name, "displayName": name, "permissions": copy.deepcopy(ADMIN_ONLY),
                          "multivalued": False, "group": PROFILE_GROUP, "validations": {}, "annotations": {}})
            continue
        # A declaration someone widened (user may view/edit) or made required is damage: repair it.
        decl["permissions"] = copy.deepcopy(ADMIN_ONLY)
        decl.pop("required", None)
        decl.pop("selector", None)
    return want


def _delete_flow_if_unbound(kc: KeycloakClient, alias: str) -> None:
    realm = kc.get_realm()
    if alias in (realm.get("browserFlow"), realm.get("resetCredentialsFlow")):
        return
    fid = flows.flow_id(kc, alias)
    if fid:
        kc.delete_flow(fid, alias)


def rebuild_flow(kc: KeycloakClient, spec: flows.FlowSpec, bind_key: str) -> None:
    """Replace a damaged flow without ever binding a half-built one: build a complete copy,
    bind it, rebuild the original, bind it back, drop the copy."""
    temp = flows.browser_spec(spec.alias + TEMP_SUFFIX) if bind_key == "browserFlow" \
        else flows.reset_spec(spec.alias + TEMP_SUFFIX)
    _delete_flow_if_unbound(kc, temp.alias)
    flows.build_flow(kc, temp)
    was_bound = kc.get_realm().get(bind_key) == spec.alias
    if was_bound:
        kc.update_realm({bind_key: temp.alias})
    fid = flows.flow_id(kc, spec.alias)
    if fid:
        kc.delete_flow(fid, spec.alias)
    flows.build_flow(kc, spec)
    if was_bound:
        kc.update_realm({bind_key: spec.alias})
    _delete_flow_if_unbound(kc, temp.alias)


def _service_client_rep() -> JSON:
    return {
        "clientId": SERVICE_CLIENT_ID,
        "name": "twostep CLI and sync",
        "description": "Service account of keycloak-twostep (setup, bypass, sync)",
        "protocol": "openid-connect",
        "publicClient": False,
        "serviceAccountsEnabled": True,
        "standardFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False,
        "clientAuthenticatorType": "client-secret",
    }


def _create_service_client(kc: KeycloakClient, secret: Secret) -> None:
    from .errors import Conflict

    try:
        uuid = kc.create_client(_service_client_rep())
    except Conflict:  # created by a concurrent or interrupted run: converge instead of failing
        found = kc.find_client(SERVICE_CLIENT_ID)
        assert found is not None
        uuid = found["id"]
        _grant_service_roles(kc, secret)
        return
    _grant_service_roles(kc, secret)
    secret(SERVICE_CLIENT_ID, kc.client_secret(uuid))


def _grant_service_roles(kc: KeycloakClient, _secret: Secret) -> None:
    client = kc.find_client(SERVICE_CLIENT_ID)
    rm = kc.find_client("realm-management")
    assert client is not None and rm is not None
    sa = kc.service_account_user(client["id"])
    have = {r["name"] for r in kc.user_client_roles(sa["id"], rm["id"])}
    roles = [r for r in kc.client_roles(rm["id"]) if r["name"] in SERVICE_ROLES and r["name"] not in have]
    if roles:
        kc.add_user_client_roles(sa["id"], rm["id"], roles)


def apply(kc: KeycloakClient, actions: list[Action], secret: Secret) -> None:
    for action in actions:
        action.run(kc, secret)


# -- teardown ------------------------------------------------------------------------------------

def plan_teardown(realm: JSON, existing_flows: set[str]) -> list[Action]:
    policy = RealmPolicy.from_json((realm.get("attributes") or {}).get(POLICY_ATTR))
    actions: list[Action] = []
    restore: dict[str, str] = {}
    for key, ours, prev, default in (
        ("browserFlow", BROWSER_FLOW, policy.previous_browser_flow if policy else None, "browser"),
        ("resetCredentialsFlow", RESET_FLOW, policy.previous_reset_flow if policy else None, "reset credentials"),
    ):
        if realm.get(key) in (ours, ours + TEMP_SUFFIX):
            target = prev if prev and prev in existing_flows else default
            restore[key] = target
    if restore:
        actions.append(Action("restore " + " and ".join(f"{k}={v!r}" for k, v in restore.items()),
                              partial(_call, "update_realm", restore)))
    for alias in (BROWSER_FLOW, RESET_FLOW, BROWSER_FLOW + TEMP_SUFFIX, RESET_FLOW + TEMP_SUFFIX):
        if alias in existing_flows:
            actions.append(Action(f"delete flow {alias!r}", _with_kc(_delete_flow_if_unbound, alias)))
    attrs = dict(realm.get("attributes") or {})
    if POLICY_ATTR in attrs:
        attrs.pop(POLICY_ATTR)
        actions.append(Action("remove the policy record from the realm",
                              partial(_call, "update_realm", {"attributes": attrs})))
    return actions
