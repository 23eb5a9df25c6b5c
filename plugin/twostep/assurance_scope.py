"""The provider's assurance mapper on the realm's `basic` client scope (docs/provider.md, "Assurance
in tokens"): every client that has `basic` (Keycloak 26 gives it to every client as a default scope)
gets `amr` without a second factor for a sign-in through a bypass, and `twostep_bypass` (its end).

Read, plan, apply like the rest of setup: a second run plans nothing."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Conflict, Forbidden
from .keycloak_adapter import JSON, KeycloakClient
from .setup_actions import Action, Kind, Secret

MAPPER_PROVIDER = "twostep-assurance-mapper"
MAPPER_NAME = "twostep assurance"
SCOPE = "basic"


@dataclass(frozen=True)
class ScopeState:
    scope_id: str | None  # None: the realm has no `basic` scope
    present: bool  # a mapper of ours is on it


def mapper_rep() -> JSON:
    claims = ("access.token.claim", "id.token.claim", "userinfo.token.claim", "introspection.token.claim")
    return {"name": MAPPER_NAME, "protocol": "openid-connect", "protocolMapper": MAPPER_PROVIDER,
            "config": dict.fromkeys(claims, "true")}


def read(kc: KeycloakClient) -> ScopeState | None:
    """The `basic` scope and whether our mapper is on it; None when these credentials cannot read
    client scopes (view-clients): then nothing is planned."""
    try:
        scopes = kc.client_scopes()
    except Forbidden:
        return None
    for scope in scopes:
        if scope.get("name") == SCOPE:
            mappers = scope.get("protocolMappers") or []
            return ScopeState(str(scope["id"]), any(m.get("protocolMapper") == MAPPER_PROVIDER for m in mappers))
    return ScopeState(None, False)


def plan(state: ScopeState | None, provider_mode: bool) -> list[Action]:
    if not provider_mode or state is None or state.present or state.scope_id is None:
        return []
    return [Action(Kind.ADD_SCOPE_MAPPER, SCOPE, (state.scope_id, mapper_rep()),
                   f"add the twostep assurance mapper (amr, twostep_bypass) to client scope {SCOPE!r}")]


def apply(kc: KeycloakClient, action: Action, _secret: Secret) -> None:
    scope_id, rep = action.payload
    try:
        kc.add_scope_mapper(scope_id, rep)
    except Conflict:  # added by a concurrent run (same name): converged
        return
