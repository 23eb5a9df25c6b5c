"""Setup's flow targets: each flow twostep adapts at a door (the realm's browser, reset and direct-grant
flows, client override sources, identity-provider flows), how a damaged one is rebuilt, and how
teardown binds everything back. Read by `realm_setup` (plan/apply) and sync's repair."""

from __future__ import annotations

from dataclasses import dataclass

from . import client_doors, flow_adapt, flows, idp_doors
from .keycloak_adapter import JSON, KeycloakClient
from .policy import POLICY_ATTR, REALM_FLOWS, RealmPolicy
from .realm_policy import policy_of
from .setup_actions import Action, Kind

KERBEROS_CHOICES = ("second-factor", "trusted")
WEBAUTHN_REGISTER = "webauthn-register"
TEMP_SUFFIX = " rebuilding"


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
    help: flows.Step | None = None
    direct_grant: bool = False
    kerberos: str = "second-factor"

    def spec_for(self, alias: str) -> flows.FlowSpec:
        assert self.source_spec is not None
        return flow_adapt.adapt(self.source_spec, alias, self.condition, reset=self.reset,
                           backup_codes=self.backup_codes, webauthn=self.webauthn, help=self.help,
                           direct_grant=self.direct_grant, kerberos=self.kerberos)

    @property
    def digest(self) -> str:
        return flows.digest(self.source_spec) if self.source_spec else ""


def source_flows(realm: JSON, current: RealmPolicy | None) -> dict[str, str]:
    """The realm's own browser, reset and direct-grant flows (by realm field): what is bound now,
    unless that is ours (then what the policy record says was bound before setup, else Keycloak's
    built-in flows)."""
    out: dict[str, str] = {}
    for key, (ours, default) in REALM_FLOWS.items():
        out[key] = (current.previous_flow(key) if current else None) or default
        if realm.get(key) not in (ours, ours + TEMP_SUFFIX, None):
            out[key] = str(realm[key])
    return out


def flow_targets(kc: KeycloakClient, realm: JSON, current: RealmPolicy | None, provider_mode: bool,
                 backup_codes: str, required_actions: list[JSON],
                 help: flows.Step | None = None,
                 overrides: list[client_doors.Override] | None = None,
                 idps: list[idp_doors.IdpDoor] | None = None,
                 idp_specs: dict[str, flows.FlowSpec | None] | None = None,
                 kerberos: str | None = None) -> list[FlowTarget]:
    sources = source_flows(realm, current)
    kerberos = kerberos or (current.kerberos if current else KERBEROS_CHOICES[0])
    condition = flows.provider_condition() if provider_mode else flows.marker_condition()
    webauthn = any(ra["alias"] == WEBAUTHN_REGISTER and ra.get("enabled") for ra in required_actions)
    out: list[FlowTarget] = []
    for key, (alias, _default) in REALM_FLOWS.items():
        source, is_reset, grant = sources[key], key == "resetCredentialsFlow", key == "directGrantFlow"
        t = FlowTarget(key, alias, source, flows.read_flow(kc, source), condition, is_reset, backup_codes,
                       webauthn, flows.read_flow(kc, alias), help=help if key == "browserFlow" else None,
                       direct_grant=grant, kerberos=kerberos)
        _adapt_target(t, f"the realm's own flow {source!r} (bound as {key} before setup) does not exist")
        out.append(t)
    # Client overrides: one adapted copy per distinct source flow that is not the realm's own.
    for (kind, source), clients in client_doors.copies(overrides or [], sources).items():
        alias = client_doors.copy_alias(kind, source)
        who = "client " + ", ".join(repr(c) for c in sorted(clients))
        t = FlowTarget(f"client:{kind}", alias, source, flows.read_flow(kc, source), condition, False, backup_codes,
                       webauthn, flows.read_flow(kc, alias), help=help if kind == "browser" else None,
                       direct_grant=kind == "direct_grant", kerberos=kerberos)
        _adapt_target(t, f"{who}: its {kind} override names flow {source!r}, which does not exist")
        if t.error and not t.error.startswith(who):
            t.error = f"{who} (its {kind} override): {t.error}"
        out.append(t)
    # Identity providers: an adapted copy of each distinct first-broker-login flow with a second
    # factor to guard, and of each distinct post-broker-login flow of their own.
    specs = idp_specs or {}
    wanted = {(FIRST_KEY, i.first_source) for i in idps or [] if idp_doors.guarded_first(i, specs)}
    wanted |= {(POST_KEY, i.post_source) for i in idps or [] if i.post_source}
    for key, source in sorted(wanted):
        alias = idp_doors.copy_alias(source)
        users = sorted(i.alias for i in idps or [] if source in (i.first_source, i.post_source))
        t = FlowTarget(key, alias, source, specs.get(source) if key == FIRST_KEY else flows.read_flow(kc, source),
                       condition, False, backup_codes, webauthn, flows.read_flow(kc, alias))
        _adapt_target(t, f"identity provider {', '.join(users)}: flow {source!r} does not exist")
        if t.error:
            t.error = f"identity provider {', '.join(repr(u) for u in users)}: {t.error}"
        out.append(t)
    return out


FIRST_KEY, POST_KEY = "idp:first", "idp:post"


def _adapt_target(t: FlowTarget, missing: str) -> None:
    if t.source_spec is None:
        t.error = missing
        return
    try:
        t.desired = t.spec_for(t.alias)
    except flows.CannotAdapt as exc:
        t.error = str(exc) if repr(t.source) in str(exc) else f"{exc} (flow {t.source!r})"


def browser_target(kc: KeycloakClient, policy: RealmPolicy | None) -> FlowTarget | None:
    """Our browser flow as the policy record says setup adapted it; None when there is nothing to
    repair safely (no record, source changed since setup, or the source cannot be adapted)."""
    if policy is None:
        return None
    realm = kc.get_realm()
    t = flow_targets(kc, realm, policy, policy.provider_mode, policy.backup_codes, kc.required_actions(),
                     _help_of(policy))[0]
    if t.error or (policy.browser_source_digest and t.digest != policy.browser_source_digest):
        return None
    return t


def _help_of(policy: RealmPolicy) -> flows.Step | None:
    on = policy.provider_mode and policy.help_requests == "on"
    return flows.help_step(policy.help_max_per_hour) if on else None


@dataclass(frozen=True)
class Rebuild:
    """REBUILD_FLOW's payload: the flow to rebuild, whether it is bound now, and the ids of the flow
    and of a temporary copy an interrupted run left (both known when planned)."""

    target: FlowTarget
    bound: bool
    flow_id: str | None
    leftover_temp_id: str | None


def rebuild_flow(kc: KeycloakClient, target: FlowTarget) -> None:
    """Sync's repair: read what `rebuild` needs (binding, ids), then rebuild."""
    realm = kc.get_realm()
    temp = target.alias + TEMP_SUFFIX
    leftover = None if temp in {realm.get(k) for k in REALM_FLOWS} else \
        flows.flow_id(kc, temp)
    rebuild(kc, Rebuild(target, realm.get(target.key) == target.alias, flows.flow_id(kc, target.alias), leftover))


def rebuild(kc: KeycloakClient, plan: Rebuild) -> None:
    """Replace a damaged or stale flow without ever binding a half-built one: build a complete copy,
    bind it, rebuild the original, bind it back, drop the copy."""
    target = plan.target
    assert target.desired is not None
    temp = target.spec_for(target.alias + TEMP_SUFFIX)
    if plan.leftover_temp_id:
        kc.delete_flow(plan.leftover_temp_id, temp.alias)
    flows.build_adapted(kc, target.source, temp)
    if plan.bound:
        kc.update_realm({target.key: temp.alias})
    if plan.flow_id:
        kc.delete_flow(plan.flow_id, target.alias)
    flows.build_adapted(kc, target.source, target.desired)
    if plan.bound:
        kc.update_realm({target.key: target.alias})
    temp_id = flows.flow_id(kc, temp.alias)  # the copy this rebuild made: its id is new
    if temp_id:
        kc.delete_flow(temp_id, temp.alias)


# -- teardown ------------------------------------------------------------------------------------

def plan_teardown(realm: JSON, existing_flows: dict[str, str], clients: list[JSON] | None = None,
                  idps: list[JSON] | None = None) -> list[Action]:
    """Pure: bind back what was bound before setup (the realm's fields and the clients' overrides),
    delete our flows (`existing_flows`: alias -> id), drop the policy record."""
    policy = policy_of(realm).recorded
    name = str(realm.get("realm", ""))
    actions: list[Action] = client_doors.plan_restore(clients or [], existing_flows, policy)
    actions += idp_doors.plan_restore(idps or [], policy, existing_flows)
    restore: dict[str, str] = {}
    for key, (ours, default) in REALM_FLOWS.items():
        prev = policy.previous_flow(key) if policy else None
        if realm.get(key) in (ours, ours + TEMP_SUFFIX):
            target = prev if prev and prev in existing_flows else default
            restore[key] = target
    if restore:
        actions.append(Action(Kind.UPDATE_REALM, name, restore,
                              "restore " + " and ".join(f"{k}={v!r}" for k, v in restore.items())))
    still_bound = {realm.get(k) for k in REALM_FLOWS if k not in restore}
    ours_all = [ours for ours, _ in REALM_FLOWS.values()]
    copies = sorted(a for a in existing_flows if client_doors.is_copy(a) or idp_doors.is_ours(a))
    for alias in [*ours_all, *(a + TEMP_SUFFIX for a in ours_all), *copies]:
        if alias in existing_flows and alias not in still_bound:
            actions.append(Action(Kind.DELETE_FLOW, alias, existing_flows[alias], f"delete flow {alias!r}"))
    attrs = dict(realm.get("attributes") or {})
    if POLICY_ATTR in attrs:
        attrs.pop(POLICY_ATTR)
        actions.append(Action(Kind.UPDATE_REALM, name, {"attributes": attrs},
                              "remove the policy record from the realm"))
    return actions
