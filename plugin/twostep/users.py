"""Find the one user an admin means: by id, exact username, or exact e-mail."""

from __future__ import annotations

import re

from .errors import InvalidInput, NotFound
from .keycloak_adapter import JSON, KeycloakClient

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def resolve_user(kc: KeycloakClient, who: str) -> JSON:
    """Full representation of exactly one user; NotFound or InvalidInput (ambiguous) otherwise."""
    who = who.strip()
    if not who:
        raise InvalidInput("no user given")
    if _UUID.match(who.lower()):
        try:
            return kc.get_user(who.lower())
        except NotFound:
            raise NotFound(f"no user with id {who} in realm {kc.realm!r}") from None
    matches: dict[str, JSON] = {}
    for u in kc.find_users(username=who, exact="true", briefRepresentation="true"):
        matches[u["id"]] = u
    if "@" in who:
        for u in kc.find_users(email=who, exact="true", briefRepresentation="true"):
            matches[u["id"]] = u
    if not matches:
        raise NotFound(f"no user {who!r} in realm {kc.realm!r} (give a username, e-mail or id)")
    if len(matches) > 1:
        names = ", ".join(sorted(str(u.get("username")) for u in matches.values()))
        raise InvalidInput(f"{who!r} is ambiguous in realm {kc.realm!r}: matches {names}; give the user id")
    return kc.get_user(next(iter(matches)))
