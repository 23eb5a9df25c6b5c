"""Identity providers are doors: a brokered login runs the IdP's first-broker-login flow (first
login: new account or linking) and then its post-broker-login flow (every login). Setup gives every
IdP a post-broker-login flow that runs the decision (an adapted copy of the IdP's own, or a twostep
one where it has none) and guards the first-broker-login flow's second-factor subflow (an adapted
copy of it); the policy record keeps what each IdP had before, and teardown binds it back.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import flows
from .errors import Forbidden, InvalidInput, TwostepError
from .keycloak_adapter import JSON, KeycloakClient
from .policy import RealmPolicy
from .setup_actions import Action, Kind

POST_FLOW = "twostep post broker login"
COPY_PREFIX = "twostep idp "
DEFAULT_FIRST = "first broker login"
FIRST, POST = "firstBrokerLoginFlowAlias", "postBrokerLoginFlowAlias"


@dataclass(frozen=True)
class IdpDoor:
    alias: str
    first: str  # the first-broker-login flow bound now
    post: str  # the post-broker-login flow bound now ("" none)
    first_source: str  # what the IdP had before setup
    post_source: str  # "" none


def copy_alias(source: str) -> str:
    return COPY_PREFIX + source


def post_alias(source: str) -> str:
    return copy_alias(source) if source else POST_FLOW


def is_ours(alias: str) -> bool:
    return alias == POST_FLOW or alias.startswith(COPY_PREFIX)


def read_idps(kc: KeycloakClient, current: RealmPolicy | None) -> list[IdpDoor] | None:
    """Every identity provider and its flows; None when these credentials cannot read them."""
    try:
        reps = kc.identity_providers()
    except Forbidden:
        return None
    before = {a: (f, p) for a, f, p in (current.idp_flows if current else ())}
    out: list[IdpDoor] = []
    for rep in reps:
        alias = str(rep["alias"])
        first, post = str(rep.get(FIRST) or DEFAULT_FIRST), str(rep.get(POST) or "")
        was_first, was_post = before.get(alias, (DEFAULT_FIRST, ""))
        out.append(IdpDoor(alias, first, post, was_first if is_ours(first) else first,
                           was_post if is_ours(post) else post))
    return out


def guarded_first(idp: IdpDoor, specs: dict[str, flows.FlowSpec | None]) -> bool:
    """Whether the IdP's first-broker-login flow has a second-factor subflow to guard (an adapted
    copy is bound); without one the post-broker-login flow decides alone."""
    spec = specs.get(idp.first_source)
    return spec is not None and bool(flows.SECOND_FACTOR_STEPS & _providers(spec.children))


def _providers(nodes: tuple[flows.Node, ...]) -> set[str]:
    out: set[str] = set()
    for n in nodes:
        out |= _providers(n.children) if isinstance(n, flows.Sub) else {n.provider}
    return out


def wanted(idp: IdpDoor, specs: dict[str, flows.FlowSpec | None]) -> dict[str, str]:
    """The flows the IdP should have bound: field -> alias."""
    first = copy_alias(idp.first_source) if guarded_first(idp, specs) else idp.first_source
    return {FIRST: first, POST: post_alias(idp.post_source)}


def recorded(idps: list[IdpDoor] | None, current: RealmPolicy | None) -> tuple[tuple[str, str, str], ...]:
    if idps is None:
        return current.idp_flows if current else ()
    return tuple(sorted((i.alias, i.first_source, i.post_source) for i in idps))


def trusted(choice: tuple[str, ...] | None, idps: list[IdpDoor] | None, current: RealmPolicy | None) -> tuple[str, ...]:
    """`setup --trust-idp`: None keeps what the record says; ("none",) trusts none; an alias that is
    not an identity provider of the realm is an error (a typo would silently trust nobody)."""
    if choice is None:
        return current.trusted_idps if current else ()
    if choice == ("none",):
        return ()
    known = {i.alias for i in idps or []}
    if idps is not None:
        missing = sorted(set(choice) - known)
        if missing:
            raise InvalidInput(f"--trust-idp: no identity provider {missing[0]!r} in this realm "
                               f"(it has: {', '.join(sorted(known)) or 'none'})")
    return tuple(sorted(set(choice)))


def plan_bindings(idps: list[IdpDoor] | None, specs: dict[str, flows.FlowSpec | None]) -> list[Action]:
    out: list[Action] = []
    for idp in idps or []:
        want = wanted(idp, specs)
        have = {FIRST: idp.first, POST: idp.post}
        changes = {k: v for k, v in want.items() if have[k] != v}
        if changes:
            out.append(Action(Kind.BIND_IDP_FLOWS, idp.alias, (idp.alias, changes),
                              f"bind identity provider {idp.alias!r}: "
                              + ", ".join(f"{k}={v!r}" for k, v in sorted(changes.items()))))
    return out


def plan_restore(idps: list[JSON], policy: RealmPolicy | None, existing: dict[str, str]) -> list[Action]:
    """Teardown: every IdP flow that is ours goes back to what the record says it had."""
    before = {a: (f, p) for a, f, p in (policy.idp_flows if policy else ())}
    out: list[Action] = []
    for rep in idps:
        alias = str(rep["alias"])
        was_first, was_post = before.get(alias, (DEFAULT_FIRST, ""))
        changes: dict[str, str] = {}
        if is_ours(str(rep.get(FIRST) or "")):
            changes[FIRST] = was_first if was_first in existing else DEFAULT_FIRST
        if is_ours(str(rep.get(POST) or "")):
            changes[POST] = was_post if was_post in existing else ""
        if changes:
            out.append(Action(Kind.BIND_IDP_FLOWS, alias, (alias, changes), f"restore identity provider {alias!r}: "
                              + ", ".join(f"{k}={v!r}" for k, v in sorted(changes.items()))))
    return out


def second_factor_flow(alias: str, description: str, condition: flows.Step, *, webauthn: bool,
                       codes: bool) -> flows.FlowSpec:
    """A flow of its own: the second-factor subflow, then Keycloak's `allow-access-authenticator` (a
    flow whose only step is a conditional subflow that did not run fails in Keycloak: the login
    would end on an error page whenever no second factor is needed). For a post-broker-login flow
    where an identity provider has none."""
    sub = flows.second_factor_subflow(f"{alias} second factor", condition, webauthn, codes)
    return flows.FlowSpec(alias, description, (sub, flows.Step("allow-access-authenticator", "REQUIRED", None,
                                                               flows.ADDED)))


def build_new(kc: KeycloakClient, spec: flows.FlowSpec) -> None:
    """Create `spec` as a new top-level flow, read back like an adapted one (deleted when it differs)."""
    kc.create_flow(spec.alias, spec.description)
    try:
        flows.add_nodes(kc, spec.alias, spec.children)
        drift = flows.differences(spec, flows.read_flow(kc, spec.alias))
        if drift:
            raise TwostepError(f"the flow {spec.alias!r} did not come out as planned: " + "; ".join(drift))
    except BaseException:
        fid = flows.flow_id(kc, spec.alias)
        if fid:
            kc.delete_flow(fid, spec.alias)
        raise


def bind(kc: KeycloakClient, action: Action, _secret: object = None) -> None:
    alias, changes = action.payload
    rep = kc.identity_provider(alias)
    rep.update(changes)
    kc.update_identity_provider(alias, rep)


def create_post_flow(kc: KeycloakClient, action: Action, _secret: object = None) -> None:
    build_new(kc, action.payload)
