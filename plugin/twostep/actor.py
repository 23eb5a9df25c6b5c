"""Who is acting: the person (or job) behind the credentials, for the audit and the self-bypass rule."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from .errors import InvalidInput, TwostepError
from .keycloak_adapter import JSON, KeycloakClient
from .settings import Settings


@dataclass(frozen=True)
class Actor:
    """The person (or job) behind the credentials, for the audit and the self-bypass rule.

    identities: (realm, lower-cased username or e-mail) pairs naming the person at the keyboard.
    operator: the credentials are the bootstrap admin of the master realm (server-side operator
    credentials); only those may use --break-glass.
    user_ids: the target realm's users the person is (resolved from the identities): the self-bypass
    rule compares these ids, so another spelling (e-mail for username, other case) or an operator
    signed in to the master realm who also has an account in the realm is still "yourself".
    credential: what signed in, for the audit: "service account <client>" (a shared secret: the
    name is what the caller said) or "person <user>@<realm>"."""

    name: str
    operator: bool
    identities: tuple[tuple[str, str], ...]
    user_ids: frozenset[str] = frozenset()
    credential: str = "person"


def actor_name(person: str, realm: str, via: str) -> str:
    """The one way an actor is written (audit `actor`, a record's `by`, e-mails): `<person>@<realm> via
    <way>`, e.g. `admin@master via cli`, `hilde@acme via service account twostep-cli`, `boss@acme via
    web`, `alice@acme via self-service`. The same person the same way always reads the same."""
    return f"{person or '?'}@{realm or '?'} via {via}"


def actor_from_settings(settings: Settings, realm: str, via: str = "cli") -> Actor:
    if settings.uses_service_account:
        who = settings.actor or _os_user()
        return Actor(actor_name(who, realm, f"service account {settings.client_id}" if via == "cli"
                                else f"{via}, service account {settings.client_id}"),
                     False, ((realm, who.lower()),), credential=f"service account {settings.client_id}")
    admin = settings.admin_username or "?"
    ids = [(settings.admin_realm, admin.lower())]
    if settings.actor:
        ids.append((realm, settings.actor.lower()))
        name = actor_name(settings.actor, realm, f"{via} as {admin}@{settings.admin_realm}")
    else:
        name = actor_name(admin, settings.admin_realm, via)
    return Actor(name, settings.admin_realm == "master" and bool(settings.admin_password), tuple(ids),
                 credential=f"person {admin}@{settings.admin_realm}")


def web_actor(username: str, email: str | None, realm: str, user_id: str | None = None) -> Actor:
    """An admin signed in to the web pages (their own token); their user id (the token's subject) makes
    every page's "not on yourself" check compare ids, whatever the spelling of the name."""
    ids = tuple((realm, str(v).lower()) for v in (username, email) if v)
    return Actor(actor_name(username, realm, "web"), False, ids, user_ids=frozenset({user_id} if user_id else ()),
                 credential=f"person {username}@{realm}")


def self_service(username: str, realm: str) -> str:
    """A user acting on their own account (the security page)."""
    return actor_name(username, realm, "self-service")


def acting_person(kc: KeycloakClient, settings: Settings) -> Actor:
    """The actor of a bypass change made through the CLI. With the shared service account the person
    must be named (TWOSTEP_ACTOR, `actor` in the file, or --actor): the secret says nothing about who
    holds it. The named person, and a bootstrap admin under their username and e-mail, are resolved to
    users of the target realm, so the self-bypass rule compares ids."""
    if settings.uses_service_account and not (settings.actor or "").strip():
        raise InvalidInput(f"the service account {settings.client_id} is shared: name the person acting "
                           "(--actor NAME or TWOSTEP_ACTOR); it is recorded in the audit and checked "
                           "against the user")
    actor = actor_from_settings(settings, kc.realm)
    names = {n for _r, n in actor.identities}
    if not settings.uses_service_account and settings.admin_username:
        names |= _admin_emails(kc, settings)
    ids: set[str] = set()
    for n in sorted(names):
        ids |= _users_named(kc, n)
    return Actor(actor.name, actor.operator, actor.identities + tuple((kc.realm, n) for n in sorted(names)),
                 frozenset(ids), actor.credential)


def _admin_emails(kc: KeycloakClient, settings: Settings) -> set[str]:
    """The e-mail of the signed-in admin in their own realm (an operator's account in the target
    realm often shares only the e-mail). Not readable: the username alone is compared."""
    try:
        rows = kc.find_users_in_realm(settings.admin_realm, "the signed-in admin",
                                      username=settings.admin_username, exact="true")
    except TwostepError:
        return set()
    return {str(r.get("email")).lower() for r in rows or [] if r.get("email")}


def _users_named(kc: KeycloakClient, name: str) -> set[str]:
    found = {str(u["id"]) for u in kc.find_users(username=name, exact="true", briefRepresentation="true")}
    if "@" in name:
        found |= {str(u["id"]) for u in kc.find_users(email=name, exact="true", briefRepresentation="true")}
    return found


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def is_self(actor: Actor, realm: str, user: JSON) -> bool:
    if str(user.get("id") or "") in actor.user_ids:
        return True
    names = {str(user.get("username") or "").lower(), str(user.get("email") or "").lower()} - {""}
    return any(r == realm and n in names for r, n in actor.identities)
