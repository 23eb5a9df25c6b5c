"""`twostep setup`: read the realm, plan what differs from the policy (pure), apply the plan.

A second run plans nothing; `--dry-run` is the plan without `apply`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from . import assurance_scope, client_doors, flows, idp_doors, service_client, web_oidc_client
from .enforcement import has_device, needs_enrollment, require_totp, users_in_scope
from .errors import InvalidInput
from .flow_targets import (  # re-exported: the CLI, sync and the tests take them from here
    KERBEROS_CHOICES,
    TEMP_SUFFIX,
    FlowTarget,
    Rebuild,
    browser_target,
    flow_targets,
    plan_teardown,
    rebuild,
    rebuild_flow,
    source_flows,
)
from .flows import FlowSpec
from .keycloak_adapter import JSON, KeycloakClient
from .policy import (
    CONDITION_PROVIDER,
    HELP_LIMIT_DEFAULTS,
    POLICY_ATTR,
    REALM_FLOWS,
    SERVICE_CLIENT_ID,
    STORE_ATTRIBUTES,
    STORE_CREDENTIAL,
    Enforcement,
    RealmPolicy,
    service_roles,
    utc_iso,
)
from .realm_policy import policy_of
from .realm_settings import BruteForce, OtpPolicy
from .records import provider_loaded
from .setup_actions import Action, Kind, Secret
from .user_profile import desired_profile
from .web_oidc_client import WEB_CLIENT_ID, roles_change
from .web_oidc_client import plan_steps as web_client_steps
from .web_oidc_client import read_service_roles as web_client_roles

REQUIRED_ACTIONS = ("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES")
DECIDE_CHOICES = ("auto", "provider", "sync")
ENFORCE_LIMIT = 100_000


@dataclass(frozen=True)
class Desired:
    otp: OtpPolicy = field(default_factory=OtpPolicy)
    brute: BruteForce = field(default_factory=BruteForce)
    enforcement: Enforcement = field(default_factory=Enforcement)
    bypass_max_s: int | None = None
    theme: str | None = None
    service_client: bool = True
    web_url: str | None = None  # create/converge the web app's sign-in client (twostep.web_oidc_client)
    # Who decides at sign-in: the provider's condition (provider), the marker attribute that sync
    # ends (sync), or the provider when Keycloak has it loaded (auto).
    decide_with: str = "auto"
    backup_codes: str = "required"
    # "I lost my phone: ask an administrator" in the browser flow: on | off | auto (on in provider
    # mode); help_rate: the realm-wide limit per hour (0 = none).
    help_requests: str = "auto"
    help_rate: int = flows.DEFAULT_HELP_RATE
    help_admins: str | None = None  # who is e-mailed about help requests; None: keep what the policy says
    # `--help-user-rate`, `--help-address-rate`, `--help-expiry`: (policy key, value) pairs given; the
    # keys not given keep what the policy says.
    help_limits: tuple[tuple[str, int], ...] = ()
    trusted_idps: tuple[str, ...] | None = None  # `--trust-idp`; None: keep what the policy says
    kerberos: str | None = None  # `--kerberos trusted|second-factor`; None: keep what the policy says
    # The provider's expiry task for this realm (docs/provider.md): on | off; None: keep the policy's.
    expiry_task: str | None = None
    # `--bypass-kinds` / `--bypass-default` (docs/bypass.md, "Kinds"); None: keep what the policy says.
    bypass_kinds: tuple[str, ...] | None = None
    bypass_default: str | None = None


HELP_CHOICES = ("on", "off")


def help_wanted(desired_help: str, provider_mode: bool) -> bool:
    """Help requests need the provider (its authenticator writes them): auto = on in provider mode."""
    if desired_help == "on" and not provider_mode:
        raise InvalidInput("--help-requests on needs the twostep provider (provider mode); install the JAR "
                           "(docs/provider.md) or use --help-requests off")
    return desired_help == "on" or (desired_help == "auto" and provider_mode)


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
    flow_ids: dict[str, str] = field(default_factory=dict)  # alias -> id of every flow of the realm
    overrides: list[client_doors.Override] | None = None  # None: clients not readable (view-clients)
    idps: list[idp_doors.IdpDoor] | None = None  # None: identity providers not readable
    idp_specs: dict[str, FlowSpec | None] = field(default_factory=dict)  # first-broker sources
    post_flow: FlowSpec | None = None  # the twostep post-broker-login flow, when an IdP needs it
    post_flow_actual: FlowSpec | None = None
    desired_trust: tuple[str, ...] | None = None  # `--trust-idp` as read_actual checked it
    # twostep-cli's realm-management roles beyond policy.service_roles (an older setup granted
    # manage-realm, view-events): setup removes them, so the day-to-day account holds no more than its row.
    service_roles_extra: list[str] = field(default_factory=list)
    assurance: assurance_scope.ScopeState | None = None  # None: client scopes not readable



def read_actual(kc: KeycloakClient, desired: Desired, now: datetime) -> Actual:
    realm = kc.get_realm()
    loaded = provider_loaded(kc)
    if desired.decide_with == "provider" and not loaded:
        raise InvalidInput(f"--decide-with provider: Keycloak has no authenticator {CONDITION_PROVIDER!r}; "
                           "install the twostep provider JAR (docs/provider.md) or use --decide-with sync")
    provider_mode = desired.decide_with == "provider" or (desired.decide_with == "auto" and loaded)
    required_actions = kc.required_actions()
    current = policy_of(realm).recorded
    if help_wanted(desired.help_requests, provider_mode) and flows.HELP_PROVIDER not in kc.authenticator_providers():
        # A provider JAR older than help requests: an explicit "on" cannot be met, auto means off.
        if desired.help_requests == "on":
            raise InvalidInput(f"--help-requests on: Keycloak has no authenticator {flows.HELP_PROVIDER!r}; "
                               "install the current twostep provider JAR (docs/provider.md)")
        desired = replace(desired, help_requests="off")
    help = flows.help_step(desired.help_rate) if help_wanted(desired.help_requests, provider_mode) else None
    all_flows = kc.flows()
    overrides = client_doors.read_overrides(kc, current, all_flows)
    idps = idp_doors.read_idps(kc, current)
    idp_specs = {src: flows.read_flow(kc, src) for src in {i.first_source for i in idps or []}}
    targets = flow_targets(kc, realm, current, provider_mode, desired.backup_codes, required_actions, help,
                           overrides, idps, idp_specs, desired.kerberos)
    if any(not i.post_source for i in idps or []):
        post = idp_doors.second_factor_flow(idp_doors.POST_FLOW, "twostep: second factor after brokered logins",
                                            targets[0].condition, webauthn=targets[0].webauthn,
                                            codes=desired.backup_codes != "off")
        post_actual = flows.read_flow(kc, idp_doors.POST_FLOW)
    else:
        post, post_actual = None, None
    trusted = idp_doors.trusted(desired.trusted_idps, idps, current)
    desired = replace(desired, trusted_idps=trusted)
    want_policy = _desired_policy(desired, realm, now, provider_mode, targets, overrides, idps)
    flow_ids = {str(f["alias"]): str(f["id"]) for f in all_flows}
    # Signed in as the service account, the client exists (it is us) and its roles are what an
    # admin gave it; reading clients would need view-clients, which it deliberately lacks.
    manage_client = desired.service_client and not kc.settings.uses_service_account
    client = kc.find_client(SERVICE_CLIENT_ID) if manage_client else None
    roles = service_roles(provider_mode)
    missing_roles: list[str] = list(roles) if manage_client else []
    extra_roles: list[str] = []
    if client is not None:
        grant, remove = roles_change(web_client_roles(kc, client), roles)
        missing_roles, extra_roles = list(grant), list(remove)
    to_enforce = [
        u for u in users_in_scope(kc, want_policy)
        if needs_enrollment(u, want_policy, now) and not has_device(kc, u)
    ][:ENFORCE_LIMIT]
    web_client = kc.find_client(WEB_CLIENT_ID) if desired.web_url else None
    return Actual(
        realm=realm, flows=targets, provider_loaded=loaded, provider_mode=provider_mode,
        leftovers=sorted(a for a in flow_ids if a in {ours + TEMP_SUFFIX for ours, _ in REALM_FLOWS.values()}),
        required_actions=required_actions, profile=kc.user_profile(),
        service_client=client, service_roles_missing=missing_roles, service_roles_extra=extra_roles,
        to_enforce=to_enforce, manage_service_client=manage_client,
        web_client=web_client, web_client_roles=web_client_roles(kc, web_client),
        flow_ids=flow_ids, overrides=overrides, idps=idps, idp_specs=idp_specs,
        post_flow=post, post_flow_actual=post_actual, desired_trust=trusted,
        assurance=assurance_scope.read(kc) if provider_mode and loaded else None,
    )


def _desired_policy(desired: Desired, realm: JSON, now: datetime, provider_mode: bool,
                    targets: list[FlowTarget], overrides: list[client_doors.Override] | None = None,
                    idps: list[idp_doors.IdpDoor] | None = None) -> RealmPolicy:
    current = policy_of(realm).recorded
    since = utc_iso(now)
    if current is not None and current.enforcement == desired.enforcement and current.enforce_since:
        since = current.enforce_since
    sources = source_flows(realm, current)
    max_s = desired.bypass_max_s if desired.bypass_max_s is not None else (
        current.bypass_max_s if current else RealmPolicy().bypass_max_s)
    digests = {t.key: t.digest for t in targets}
    limits: dict[str, Any] = {key: getattr(current, key) if current else default
                              for key, default in HELP_LIMIT_DEFAULTS.items()}
    limits.update(desired.help_limits)
    return RealmPolicy(desired.enforcement, since, max_s, sources["browserFlow"], sources["resetCredentialsFlow"],
                       backup_codes=desired.backup_codes,
                       record_store=STORE_CREDENTIAL if provider_mode else STORE_ATTRIBUTES,
                       decided_by="provider" if provider_mode else "sync",
                       browser_source_digest=digests.get("browserFlow", ""),
                       reset_source_digest=digests.get("resetCredentialsFlow", ""),
                       # What read_actual decided for the browser flow (an old JAR turns auto off).
                       help_requests="on" if any(t.help is not None for t in targets) else "off",
                       help_max_per_hour=desired.help_rate,
                       **limits,
                       help_admins=desired.help_admins if desired.help_admins is not None else (
                           current.help_admins if current else ""),
                       previous_direct_grant_flow=sources["directGrantFlow"],
                       direct_grant_source_digest=digests.get("directGrantFlow", ""),
                       client_overrides=client_doors.recorded(overrides, current),
                       idp_flows=idp_doors.recorded(idps, current),
                       trusted_idps=desired.trusted_idps if desired.trusted_idps is not None else (
                           current.trusted_idps if current else ()),
                       kerberos=desired.kerberos or (current.kerberos if current else KERBEROS_CHOICES[0]),
                       expiry_task=desired.expiry_task if desired.expiry_task is not None else (
                           current.expiry_task if current else "on"),
                       **_kinds(desired, current))


def _kinds(desired: Desired, current: RealmPolicy | None) -> dict[str, Any]:
    """The kinds of bypass: what setup was given, else what the policy says (both, the access pass at
    first). A default no longer allowed becomes the pass if allowed, else the first (as the readers do)."""
    kinds = desired.bypass_kinds or (current.bypass_kinds if current else RealmPolicy().bypass_kinds)
    default = desired.bypass_default or (current.bypass_default if current else RealmPolicy().bypass_default)
    if default not in kinds:
        if desired.bypass_default is not None:
            raise InvalidInput(f"--bypass-default {default} is not one of the kinds allowed ({','.join(kinds)})")
        default = kinds[0]
    return {"bypass_kinds": kinds, "bypass_default": default}


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
    if actual.desired_trust is not None:
        desired = replace(desired, trusted_idps=actual.desired_trust)
    want_policy = _desired_policy(desired, realm, now, actual.provider_mode, actual.flows,
                                  actual.overrides, actual.idps).to_json()
    if attrs.get(POLICY_ATTR) != want_policy:
        attrs[POLICY_ATTR] = want_policy
        changed["attributes"] = attrs
    if changed:
        names = ", ".join(sorted(k for k in changed if k != "attributes"))
        text = "update realm settings: " + (names or "") + (
            (", " if names else "") + "policy record" if "attributes" in changed else "")
        actions.append(Action(Kind.UPDATE_REALM, str(realm.get("realm", "")), changed, text))

    for ra in actual.required_actions:
        if ra["alias"] in REQUIRED_ACTIONS and not ra.get("enabled"):
            fixed = {**ra, "enabled": True}
            actions.append(Action(Kind.UPDATE_REQUIRED_ACTION, ra["alias"], fixed,
                                  f"enable required action {ra['alias']}"))
    ras = {ra["alias"]: ra for ra in actual.required_actions}
    totp, codes = ras.get(REQUIRED_ACTIONS[0]), ras.get(REQUIRED_ACTIONS[1])
    if totp and codes and int(totp.get("priority") or 0) >= int(codes.get("priority") or 0):
        # Keycloak runs required actions by priority (lowest first): the device comes first, then
        # the backup codes for it.
        first = {**totp, "priority": int(codes.get("priority") or 0) - 1}
        actions.append(Action(Kind.UPDATE_REQUIRED_ACTION, totp["alias"], first,
                              "run required action CONFIGURE_TOTP before CONFIGURE_RECOVERY_AUTHN_CODES"))

    profile = desired_profile(actual.profile)
    if profile != actual.profile:
        actions.append(Action(Kind.UPDATE_USER_PROFILE, "user profile", profile,
                              "declare the bypass and backup-code record attributes (admin-only) in the user profile"))

    bound_now = {realm.get(k) for k in REALM_FLOWS}
    for alias in actual.leftovers:
        if alias not in bound_now:  # a copy still bound stays until ours is bound again
            actions.append(Action(Kind.DELETE_FLOW, alias, actual.flow_ids[alias],
                                  f"remove the half-built flow {alias!r} left by an interrupted run"))
    binding = {t.key: t.alias for t in actual.flows if t.key in REALM_FLOWS}
    for t in actual.flows:
        assert t.desired is not None
        drift = flows.differences(t.desired, t.actual)
        shape = flows.tree(t.desired, t.source)
        if t.actual is None:
            actions.append(Action(Kind.CREATE_FLOW, t.alias, (t.source, t.desired),
                                  f"create flow {t.alias!r}: the realm's flow {t.source!r} adapted\n{shape}"))
        elif drift:
            # A copy an interrupted run left is removed above (DELETE_FLOW), before this rebuild.
            actions.append(Action(Kind.REBUILD_FLOW, t.alias,
                                  Rebuild(t, realm.get(t.key) == t.alias, actual.flow_ids.get(t.alias), None),
                                  f"rebuild flow {t.alias!r} ({'; '.join(drift)})\n{shape}"))
    unbound = {k: v for k, v in binding.items() if realm.get(k) != v}
    if unbound:
        actions.append(Action(Kind.UPDATE_REALM, str(realm.get("realm", "")), unbound,
                              "bind " + " and ".join(f"{k}={v!r}" for k, v in unbound.items())))
    current = policy_of(realm).recorded
    actions += client_doors.plan_bindings(actual.overrides, source_flows(realm, current))
    if actual.post_flow is not None and actual.post_flow_actual is None:
        actions.append(Action(Kind.CREATE_NEW_FLOW, actual.post_flow.alias, actual.post_flow,
                              f"create flow {actual.post_flow.alias!r} (post-broker login of identity providers "
                              f"without one)\n{flows.tree(actual.post_flow)}"))
    actions += idp_doors.plan_bindings(actual.idps, actual.idp_specs)

    if actual.manage_service_client:
        roles = service_roles(actual.provider_mode)
        if actual.service_client is None:
            actions.append(Action(Kind.CREATE_SERVICE_CLIENT, SERVICE_CLIENT_ID,
                                  (service_client.representation(), roles),
                                  f"create service-account client {SERVICE_CLIENT_ID!r} with roles "
                                  + ", ".join(roles)))
        elif actual.service_roles_missing or actual.service_roles_extra:
            grant, remove = tuple(actual.service_roles_missing), tuple(actual.service_roles_extra)
            what = "; ".join(x for x in (f"grant {', '.join(grant)}" if grant else "",
                                         f"remove {', '.join(remove)}" if remove else "") if x)
            actions.append(Action(Kind.SET_SERVICE_ROLES, SERVICE_CLIENT_ID, {"grant": grant, "remove": remove},
                                  f"service account of {SERVICE_CLIENT_ID!r}: {what} "
                                  f"(exactly {', '.join(roles)})"))

    actions += assurance_scope.plan(actual.assurance, actual.provider_mode)

    if desired.web_url:
        actions += web_client_steps(desired.web_url, actual.web_client, actual.web_client_roles)

    if actual.to_enforce:
        users = [(u["id"], u.get("username", u["id"])) for u in actual.to_enforce]
        actions.append(Action(Kind.REQUIRE_OTP_SETUP, f"{len(users)} user(s)", tuple(uid for uid, _ in users),
                              f"require OTP setup (CONFIGURE_TOTP) at next login for {len(users)} user(s) "
                              "in scope whose grace period is over"))
    return actions


def _require_otp_setup(kc: KeycloakClient, action: Action, _secret: Secret) -> None:
    for uid in action.payload:
        require_totp(kc, uid)


_APPLY: dict[Kind, Callable[[KeycloakClient, Action, Secret], None]] = {
    Kind.UPDATE_REALM: lambda kc, a, _s: kc.update_realm(a.payload),
    Kind.UPDATE_REQUIRED_ACTION: lambda kc, a, _s: kc.update_required_action(a.payload),
    Kind.UPDATE_USER_PROFILE: lambda kc, a, _s: kc.update_user_profile(a.payload),
    Kind.DELETE_FLOW: lambda kc, a, _s: kc.delete_flow(a.payload, a.target),
    Kind.CREATE_FLOW: lambda kc, a, _s: flows.build_adapted(kc, *a.payload),
    Kind.REBUILD_FLOW: lambda kc, a, _s: rebuild(kc, a.payload),
    Kind.CREATE_SERVICE_CLIENT: service_client.create,
    Kind.SET_SERVICE_ROLES: lambda kc, a, _s: web_oidc_client.set_client_roles(
        kc, SERVICE_CLIENT_ID, a.payload["grant"], a.payload["remove"]),
    Kind.CREATE_WEB_CLIENT: web_oidc_client.create,
    Kind.UPDATE_WEB_CLIENT: web_oidc_client.update,
    Kind.SET_WEB_CLIENT_ROLES: web_oidc_client.set_roles,
    Kind.REQUIRE_OTP_SETUP: _require_otp_setup,
    Kind.BIND_CLIENT_FLOW: client_doors.bind,
    Kind.CREATE_NEW_FLOW: idp_doors.create_post_flow,
    Kind.BIND_IDP_FLOWS: idp_doors.bind,
    Kind.ADD_SCOPE_MAPPER: assurance_scope.apply,
}


def apply(kc: KeycloakClient, actions: list[Action], secret: Secret) -> None:
    """Each action as planned: no reading to decide again (ids of what apply itself made are looked up)."""
    for action in actions:
        _APPLY[action.kind](kc, action, secret)


__all__ = ["KERBEROS_CHOICES", "TEMP_SUFFIX", "Actual", "Desired", "FlowTarget", "Rebuild", "apply",
           "browser_target", "flow_targets", "plan", "plan_teardown", "read_actual", "rebuild_flow",
           "source_flows"]
