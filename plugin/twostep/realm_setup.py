"""`twostep setup`: read the realm, plan what differs from the policy (pure), apply the plan.

A second run plans nothing; `--dry-run` is the plan without `apply`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from . import flows
from .enforcement import has_device, needs_enrollment, require_totp, users_in_scope
from .errors import InvalidInput
from .keycloak_adapter import JSON, KeycloakClient
from .policy import (
    BROWSER_FLOW,
    CONDITION_PROVIDER,
    POLICY_ATTR,
    RESET_FLOW,
    SERVICE_CLIENT_ID,
    SERVICE_ROLES,
    STORE_ATTRIBUTES,
    STORE_CREDENTIAL,
    BruteForce,
    Enforcement,
    OtpPolicy,
    RealmPolicy,
    utc_iso,
)
from .records import provider_loaded
from .user_profile import desired_profile
from .web_client import WEB_CLIENT_ID
from .web_client import plan_steps as web_client_steps
from .web_client import read_service_roles as web_client_roles

REQUIRED_ACTIONS = ("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES")
DECIDE_CHOICES = ("auto", "provider", "sync")
WEBAUTHN_REGISTER = "webauthn-register"
TEMP_SUFFIX = " rebuilding"
ENFORCE_LIMIT = 100_000


@dataclass(frozen=True)
class Desired:
    otp: OtpPolicy = field(default_factory=OtpPolicy)
    brute: BruteForce = field(default_factory=BruteForce)
    enforcement: Enforcement = field(default_factory=Enforcement)
    bypass_max_s: int | None = None
    theme: str | None = None
    service_client: bool = True
    web_url: str | None = None  # create/converge the web app's sign-in client (twostep.web_client)
    # Who decides at sign-in: the provider's condition (provider), the marker attribute that sync
    # ends (sync), or the provider when Keycloak has it loaded (auto).
    decide_with: str = "auto"
    backup_codes: str = "required"
    help_admins: str | None = None  # who is e-mailed about help requests; None: keep what the policy says


@dataclass
class FlowTarget:
    """One of our flows: the realm's own flow it is adapted from, its adapted form, what Keycloak has."""

    key: str  # realm field it is bound to: browserFlow | resetCredentialsFlow
    alias: str
    source: str
    source_spec: flows.FlowSpec | None
    condition: flows.Step
    reset: bool
    backup_codes: str
    webauthn: bool
    actual: flows.FlowSpec | None
    desired: flows.FlowSpec | None = None
    error: str = ""

    def spec_for(self, alias: str) -> flows.FlowSpec:
        assert self.source_spec is not None
        return flows.adapt(self.source_spec, alias, self.condition, reset=self.reset,
                           backup_codes=self.backup_codes, webauthn=self.webauthn)

    @property
    def digest(self) -> str:
        return flows.digest(self.source_spec) if self.source_spec else ""


def source_flows(realm: JSON, current: RealmPolicy | None) -> tuple[str, str]:
    """The realm's own browser and reset flows: what is bound now, unless that is ours (then what
    the policy record says was bound before setup, else Keycloak's built-in flows)."""
    browser = (current.previous_browser_flow if current else None) or "browser"
    reset = (current.previous_reset_flow if current else None) or "reset credentials"
    if realm.get("browserFlow") not in (BROWSER_FLOW, BROWSER_FLOW + TEMP_SUFFIX, None):
        browser = str(realm["browserFlow"])
    if realm.get("resetCredentialsFlow") not in (RESET_FLOW, RESET_FLOW + TEMP_SUFFIX, None):
        reset = str(realm["resetCredentialsFlow"])
    return browser, reset


def flow_targets(kc: KeycloakClient, realm: JSON, current: RealmPolicy | None, provider_mode: bool,
                 backup_codes: str, required_actions: list[JSON]) -> list[FlowTarget]:
    browser, reset = source_flows(realm, current)
    condition = flows.provider_condition() if provider_mode else flows.marker_condition()
    webauthn = any(ra["alias"] == WEBAUTHN_REGISTER and ra.get("enabled") for ra in required_actions)
    out: list[FlowTarget] = []
    for key, alias, source, is_reset in (("browserFlow", BROWSER_FLOW, browser, False),
                                         ("resetCredentialsFlow", RESET_FLOW, reset, True)):
        t = FlowTarget(key, alias, source, flows.read_flow(kc, source), condition, is_reset, backup_codes,
                       webauthn, flows.read_flow(kc, alias))
        if t.source_spec is None:
            t.error = f"the realm's own flow {source!r} (bound as {key} before setup) does not exist"
        else:
            try:
                t.desired = t.spec_for(alias)
            except flows.CannotAdapt as exc:
                t.error = str(exc) if repr(source) in str(exc) else f"{exc} (flow {source!r})"
        out.append(t)
    return out


def browser_target(kc: KeycloakClient, policy: RealmPolicy | None) -> FlowTarget | None:
    """Our browser flow as the policy record says setup adapted it; None when there is nothing to
    repair safely (no record, source changed since setup, or the source cannot be adapted)."""
    if policy is None:
        return None
    realm = kc.get_realm()
    t = flow_targets(kc, realm, policy, policy.provider_mode, policy.backup_codes, kc.required_actions())[0]
    if t.error or (policy.browser_source_digest and t.digest != policy.browser_source_digest):
        return None
    return t


@dataclass
class Actual:
    realm: JSON
    flows: list[FlowTarget]
    provider_loaded: bool
    provider_mode: bool
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
    loaded = provider_loaded(kc)
    if desired.decide_with == "provider" and not loaded:
        raise InvalidInput(f"--decide-with provider: Keycloak has no authenticator {CONDITION_PROVIDER!r}; "
                           "install the twostep provider JAR (docs/provider.md) or use --decide-with sync")
    provider_mode = desired.decide_with == "provider" or (desired.decide_with == "auto" and loaded)
    required_actions = kc.required_actions()
    current = RealmPolicy.from_json((realm.get("attributes") or {}).get(POLICY_ATTR))
    targets = flow_targets(kc, realm, current, provider_mode, desired.backup_codes, required_actions)
    want_policy = _desired_policy(desired, realm, now, provider_mode, targets)
    aliases = {f["alias"] for f in kc.flows()}
    # Signed in as the service account, the client exists (it is us) and its roles are what an
    # admin gave it; reading clients would need view-clients, which it deliberately lacks.
    manage_client = desired.service_client and not kc.settings.uses_service_account
    client = kc.find_client(SERVICE_CLIENT_ID) if manage_client else None
    missing_roles: list[str] = list(SERVICE_ROLES) if manage_client else []
    if client is not None:
        missing_roles = _missing_service_roles(kc, client)
    to_enforce = [
        u for u in users_in_scope(kc, want_policy)
        if needs_enrollment(u, want_policy, now) and not has_device(kc, u)
    ][:ENFORCE_LIMIT]
    web_client = kc.find_client(WEB_CLIENT_ID) if desired.web_url else None
    return Actual(
        realm=realm,
        flows=targets,
        provider_loaded=loaded,
        provider_mode=provider_mode,
        leftovers=sorted(a for a in aliases if a in {BROWSER_FLOW + TEMP_SUFFIX, RESET_FLOW + TEMP_SUFFIX}),
        required_actions=required_actions,
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


def _desired_policy(desired: Desired, realm: JSON, now: datetime, provider_mode: bool,
                    targets: list[FlowTarget]) -> RealmPolicy:
    current = RealmPolicy.from_json((realm.get("attributes") or {}).get(POLICY_ATTR))
    since = utc_iso(now)
    if current is not None and current.enforcement == desired.enforcement and current.enforce_since:
        since = current.enforce_since
    prev_browser, prev_reset = source_flows(realm, current)
    max_s = desired.bypass_max_s if desired.bypass_max_s is not None else (
        current.bypass_max_s if current else RealmPolicy().bypass_max_s)
    digests = {t.key: t.digest for t in targets}
    return RealmPolicy(desired.enforcement, since, max_s, prev_browser, prev_reset,
                       backup_codes=desired.backup_codes,
                       record_store=STORE_CREDENTIAL if provider_mode else STORE_ATTRIBUTES,
                       decided_by="provider" if provider_mode else "sync",
                       browser_source_digest=digests.get("browserFlow", ""),
                       reset_source_digest=digests.get("resetCredentialsFlow", ""),
                       help_admins=desired.help_admins if desired.help_admins is not None else (
                           current.help_admins if current else ""))


def plan(desired: Desired, actual: Actual, now: datetime) -> list[Action]:
    """Pure: what has to change for the realm to match the policy."""
    actions: list[Action] = []
    realm = actual.realm
    for t in actual.flows:
        if t.error:  # refuse before anything changes
            raise flows.CannotAdapt(t.error)

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
    want_policy = _desired_policy(desired, realm, now, actual.provider_mode, actual.flows).to_json()
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
    ras = {ra["alias"]: ra for ra in actual.required_actions}
    totp, codes = ras.get(REQUIRED_ACTIONS[0]), ras.get(REQUIRED_ACTIONS[1])
    if totp and codes and int(totp.get("priority") or 0) >= int(codes.get("priority") or 0):
        # Keycloak runs required actions by priority (lowest first): the device comes first, then
        # the backup codes for it.
        first = {**totp, "priority": int(codes.get("priority") or 0) - 1}
        actions.append(Action("run required action CONFIGURE_TOTP before CONFIGURE_RECOVERY_AUTHN_CODES",
                              partial(_call, "update_required_action", first)))

    profile = desired_profile(actual.profile)
    if profile != actual.profile:
        actions.append(Action("declare the bypass and backup-code record attributes (admin-only) in the user profile",
                              partial(_call, "update_user_profile", profile)))

    for alias in actual.leftovers:
        actions.append(Action(f"remove the half-built flow {alias!r} left by an interrupted run",
                              _with_kc(_delete_flow_if_unbound, alias)))
    binding = {"browserFlow": BROWSER_FLOW, "resetCredentialsFlow": RESET_FLOW}
    for t in actual.flows:
        assert t.desired is not None
        drift = flows.differences(t.desired, t.actual)
        shape = flows.tree(t.desired, t.source)
        if t.actual is None:
            actions.append(Action(f"create flow {t.alias!r}: the realm's flow {t.source!r} adapted\n{shape}",
                                  _with_kc(flows.build_adapted, t.source, t.desired)))
        elif drift:
            actions.append(Action(f"rebuild flow {t.alias!r} ({'; '.join(drift)})\n{shape}",
                                  _with_kc(rebuild_flow, t)))
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


def _delete_flow_if_unbound(kc: KeycloakClient, alias: str) -> None:
    realm = kc.get_realm()
    if alias in (realm.get("browserFlow"), realm.get("resetCredentialsFlow")):
        return
    fid = flows.flow_id(kc, alias)
    if fid:
        kc.delete_flow(fid, alias)


def rebuild_flow(kc: KeycloakClient, target: FlowTarget) -> None:
    """Replace a damaged or stale flow without ever binding a half-built one: build a complete copy,
    bind it, rebuild the original, bind it back, drop the copy."""
    assert target.desired is not None
    temp = target.spec_for(target.alias + TEMP_SUFFIX)
    _delete_flow_if_unbound(kc, temp.alias)
    flows.build_adapted(kc, target.source, temp)
    was_bound = kc.get_realm().get(target.key) == target.alias
    if was_bound:
        kc.update_realm({target.key: temp.alias})
    fid = flows.flow_id(kc, target.alias)
    if fid:
        kc.delete_flow(fid, target.alias)
    flows.build_adapted(kc, target.source, target.desired)
    if was_bound:
        kc.update_realm({target.key: target.alias})
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
