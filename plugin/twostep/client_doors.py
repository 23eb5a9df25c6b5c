"""Client flow overrides: a client whose `authenticationFlowBindingOverrides.browser` or
`.direct_grant` names another flow than the realm's is a door of its own. Setup adapts each distinct
source flow once (the realm's own adapted flow where the source is the same), binds the override
to the adapted copy, records what it pointed at before, and teardown binds that back exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import Forbidden
from .keycloak_adapter import JSON, KeycloakClient
from .policy import OVERRIDE_KINDS, REALM_FLOWS, RealmPolicy
from .setup_actions import Action, Kind

# Override kind -> the realm field whose flow it replaces for that client.
REALM_KEY = {"browser": "browserFlow", "direct_grant": "directGrantFlow"}
LABEL = {"browser": "browser", "direct_grant": "direct grant"}


@dataclass(frozen=True)
class Override:
    """One override of one client: what it is bound to now and the realm's own flow it stands for."""

    client_uuid: str
    client_id: str
    kind: str  # browser | direct_grant
    bound: str  # the flow alias the override names now
    source: str  # the flow to adapt: `bound`, or what it named before setup when `bound` is ours


COPY_PREFIX = "twostep client "


def copy_alias(kind: str, source: str) -> str:
    """The adapted copy of an override's own flow (one per distinct source flow). Keycloak allows no
    brackets in an alias; no subflow of the realm-level copies starts with this prefix."""
    return f"{COPY_PREFIX}{LABEL[kind]} {source}"


def is_copy(alias: str) -> bool:
    return alias.startswith(COPY_PREFIX)


def is_ours(alias: str) -> bool:
    return is_copy(alias) or alias in {ours for ours, _ in REALM_FLOWS.values()}


def read_overrides(kc: KeycloakClient, current: RealmPolicy | None, flows: list[JSON]) -> list[Override] | None:
    """Every browser / direct_grant override of every client; None when these credentials cannot read
    clients (view-clients): then nothing about overrides is known, planned or recorded anew."""
    try:
        clients = kc.clients()
    except Forbidden:
        return None
    by_id = {str(f["id"]): str(f["alias"]) for f in flows}
    before = _recorded(current)
    out: list[Override] = []
    for c, kind, alias in _bound(clients, by_id):
        source = alias
        if is_ours(alias):
            source = before.get((str(c["clientId"]), kind), "")
            if not source:
                continue  # bound to ours by hand, nothing recorded: nothing to bind back to
        out.append(Override(str(c["id"]), str(c["clientId"]), kind, alias, source))
    return out


def _bound(clients: list[JSON], by_id: dict[str, str]) -> Iterator[tuple[JSON, str, str]]:
    """(client, kind, flow alias) of every override bound to a flow in `by_id` (id -> alias): none,
    or a flow id that no longer exists (Keycloak then uses the realm's), is skipped."""
    for c in clients:
        overrides = c.get("authenticationFlowBindingOverrides") or {}
        for kind in OVERRIDE_KINDS:
            alias = by_id.get(str(overrides.get(kind) or ""))
            if alias is not None:
                yield c, kind, alias


def _recorded(policy: RealmPolicy | None) -> dict[tuple[str, str], str]:
    """(clientId, kind) -> the flow the override pointed at before setup, as the policy records it."""
    return {(c, k): a for c, k, a in (policy.client_overrides if policy else ())}


def target_alias(o: Override, realm_sources: dict[str, str]) -> str:
    """Where the override should point: the realm's adapted flow when its source is the same."""
    key = REALM_KEY[o.kind]
    if realm_sources.get(key) == o.source:
        return REALM_FLOWS[key][0]
    return copy_alias(o.kind, o.source)


def copies(overrides: list[Override], realm_sources: dict[str, str]) -> dict[tuple[str, str], list[str]]:
    """(kind, source) of each adapted copy to make -> the clients that use it."""
    out: dict[tuple[str, str], list[str]] = {}
    for o in overrides:
        if target_alias(o, realm_sources) == copy_alias(o.kind, o.source):
            out.setdefault((o.kind, o.source), []).append(o.client_id)
    return out


def recorded(overrides: list[Override] | None, current: RealmPolicy | None) -> tuple[tuple[str, str, str], ...]:
    """What the policy record keeps: every override and the flow it named before setup."""
    if overrides is None:
        return current.client_overrides if current else ()
    return tuple(sorted({(o.client_id, o.kind, o.source) for o in overrides}))


def plan_bindings(overrides: list[Override] | None, realm_sources: dict[str, str]) -> list[Action]:
    out: list[Action] = []
    for o in overrides or []:
        want = target_alias(o, realm_sources)
        if o.bound != want:
            out.append(Action(Kind.BIND_CLIENT_FLOW, o.client_id, (o.client_uuid, o.kind, want),
                              f"bind client {o.client_id!r} {o.kind} override to {want!r} (was {o.bound!r})"))
    return out


def plan_restore(clients: list[JSON], existing: dict[str, str], policy: RealmPolicy | None) -> list[Action]:
    """Teardown: every override bound to a twostep flow goes back to the flow recorded before setup
    (removed when that flow is gone: the client then uses the realm's own)."""
    before = _recorded(policy)
    out: list[Action] = []
    for c, kind, alias in _bound(clients, {v: k for k, v in existing.items()}):
        if not is_ours(alias):
            continue
        prev = before.get((str(c["clientId"]), kind))
        back = prev if prev and prev in existing else None
        out.append(Action(Kind.BIND_CLIENT_FLOW, str(c["clientId"]), (str(c["id"]), kind, back),
                          f"restore client {c['clientId']!r} {kind} override to {back!r}" if back else
                          f"remove client {c['clientId']!r} {kind} override (its flow {prev!r} is gone)"))
    return out


def bind(kc: KeycloakClient, action: Action, _secret: object = None) -> None:
    """Point one override at a flow by alias (None: remove it); ids of flows apply made are looked up."""
    client_uuid, kind, alias = action.payload
    rep = kc.get_client(client_uuid)
    overrides = dict(rep.get("authenticationFlowBindingOverrides") or {})
    if alias is None:
        overrides[kind] = ""  # Keycloak removes an override sent empty (an absent key is kept)
    else:
        ids = {str(f["alias"]): str(f["id"]) for f in kc.flows()}
        overrides[kind] = ids[alias]
    rep["authenticationFlowBindingOverrides"] = overrides
    kc.update_client(client_uuid, rep)
