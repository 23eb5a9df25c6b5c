"""The web pages' OIDC client in Keycloak: the confidential client `twostep-web` that the web app
signs people in with, and whose own service account is what the security page acts with. Not an
HTTP client (that is `keycloak_adapter`).

`twostep setup --web-url URL` plans it through `realm_setup.plan()`; this module only says what the
client must look like and how to converge it, so a second run changes nothing.

Least privilege: the web app faces the internet, so it never holds the CLI's service account
(`twostep-cli`, whose manage-users reaches every user's credentials). The security page reads one
user, their groups and credentials (view, which manage-users includes), removes or reorders that
user's OTP credentials (manage-users) and reads the realm's policy attribute (view-realm: without it
Keycloak answers GET /realms/{realm} with the name only). Nothing else: no manage-realm, no
view-events, no client or role administration. Admin pages use the signed-in admin's own token.
"""

from __future__ import annotations

from typing import Any

from .errors import Conflict, InvalidInput
from .keycloak_adapter import JSON, KeycloakClient
from .setup_actions import Action, Kind, Secret

WEB_CLIENT_ID = "twostep-web"
CALLBACK_PATH = "/auth/callback"

# realm-management client roles of twostep-web's service account: exactly these (setup removes others).
WEB_SERVICE_ROLES = ("manage-users", "view-realm")

# The admin pages need to know whether the signed-in admin's own sign-in used a second factor. Keycloak
# keeps the authenticator executions a session completed in the user-session note
# `authenticators-completed` (JSON: execution id -> time; the AMR mapper reads the same note); this
# mapper puts it into twostep-web's ID token, and the pages look the ids up in the realm's browser flow
# (web/auth.py). Without it (a client made before), no sign-in counts as having used one: fail closed.
SIGN_IN_STEPS_CLAIM = "twostep_steps"
SIGN_IN_STEPS_MAPPER: JSON = {
    "name": "twostep sign-in steps",
    "protocol": "openid-connect",
    "protocolMapper": "oidc-usersessionmodel-note-mapper",
    "consentRequired": False,
    "config": {"user.session.note": "authenticators-completed", "claim.name": SIGN_IN_STEPS_CLAIM,
               "jsonType.label": "String", "id.token.claim": "true", "access.token.claim": "false",
               "userinfo.token.claim": "false", "introspection.token.claim": "false"},
}



def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or "?" in url or "#" in url:
        raise InvalidInput(f"--web-url must be an http(s) URL without query, got {url!r}")
    return url


def desired_rep(web_url: str) -> JSON:
    base = normalize_url(web_url)
    return {
        "clientId": WEB_CLIENT_ID,
        "name": "twostep web pages",
        "description": "Sign-in of keycloak-twostep's admin and security pages (code flow + PKCE)",
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": True,
        "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False,
        "serviceAccountsEnabled": True,  # the security page's own credentials (WEB_SERVICE_ROLES)
        "redirectUris": [base + CALLBACK_PATH],
        "webOrigins": [base],
        "rootUrl": base,
        "baseUrl": "/",
        "attributes": {
            "pkce.code.challenge.method": "S256",
            "post.logout.redirect.uris": base + "/",
        },
        "protocolMappers": [SIGN_IN_STEPS_MAPPER],
    }


def differences(want: JSON, have: JSON) -> list[str]:
    out = []
    for key, value in want.items():
        if key == "attributes":
            attrs = have.get("attributes") or {}
            out += [f"attribute {k}" for k, v in value.items() if attrs.get(k) != v]
        elif key in ("name", "description"):
            continue
        elif key == "protocolMappers":
            out += [f"protocol mapper {m['name']!r}" for m in value if not _has_mapper(have, m)]
        elif have.get(key) != value:
            out.append(key)
    return out


def _has_mapper(client: JSON, want: JSON) -> bool:
    return any(m.get("name") == want["name"] and m.get("protocolMapper") == want["protocolMapper"]
               and (m.get("config") or {}) == want["config"] for m in client.get("protocolMappers") or [])


def read_service_roles(kc: KeycloakClient, existing: JSON | None) -> frozenset[str] | None:
    """The realm-management roles of the existing client's service account (None: no client, or
    no service account yet)."""
    if existing is None or not existing.get("serviceAccountsEnabled"):
        return None
    rm = kc.find_client("realm-management")
    if rm is None:
        raise Conflict("the realm has no realm-management client; cannot check twostep-web's roles")
    sa = kc.service_account_user(existing["id"])
    return frozenset(r["name"] for r in kc.user_client_roles(sa["id"], rm["id"]))


def plan_steps(web_url: str, existing: JSON | None, roles: frozenset[str] | None = None) -> list[Action]:
    """Pure: the actions that make the realm's `twostep-web` client match `web_url`, and its service
    account hold exactly WEB_SERVICE_ROLES (`roles`: what it holds now, None when unknown/none)."""
    want = desired_rep(web_url)
    wanted = ", ".join(WEB_SERVICE_ROLES)
    if existing is None:
        return [Action(Kind.CREATE_WEB_CLIENT, WEB_CLIENT_ID, want,
                       f"create web sign-in client {WEB_CLIENT_ID!r} (redirect {want['redirectUris'][0]}; "
                       f"service-account roles {wanted})")]
    steps: list[Action] = []
    drift = differences(want, existing)
    if drift:
        # The client's PUT replaces its mappers with the list sent: keep the others, ours as wanted.
        mappers = [m for m in existing.get("protocolMappers") or [] if m.get("name") != SIGN_IN_STEPS_MAPPER["name"]]
        merged: dict[str, Any] = {**existing, **want, "attributes": {**(existing.get("attributes") or {}),
                                                                      **want["attributes"]},
                                  "protocolMappers": [*mappers, SIGN_IN_STEPS_MAPPER]}
        steps.append(Action(Kind.UPDATE_WEB_CLIENT, WEB_CLIENT_ID, merged,
                            f"update web sign-in client {WEB_CLIENT_ID!r} ({', '.join(drift)})"))
    missing, extra = roles_change(roles, WEB_SERVICE_ROLES)
    if missing or extra:
        what = "; ".join(x for x in (f"grant {', '.join(missing)}" if missing else "",
                                     f"remove {', '.join(extra)}" if extra else "") if x)
        steps.append(Action(Kind.SET_WEB_CLIENT_ROLES, WEB_CLIENT_ID, {"grant": missing, "remove": extra},
                            f"service account of {WEB_CLIENT_ID!r}: {what} (exactly {wanted})"))
    return steps


def create(kc: KeycloakClient, action: Action, secret: Secret) -> None:
    try:
        uuid = kc.create_client(action.payload)
    except Conflict:  # made by a concurrent or interrupted run: converge
        found = kc.find_client(WEB_CLIENT_ID)
        if found is None:
            raise
        kc.update_client(found["id"], {**found, **action.payload, "attributes": {
            **(found.get("attributes") or {}), **action.payload["attributes"]}})
        set_client_roles(kc, WEB_CLIENT_ID, WEB_SERVICE_ROLES, ())
        return
    set_client_roles(kc, WEB_CLIENT_ID, WEB_SERVICE_ROLES, ())
    secret(WEB_CLIENT_ID, kc.client_secret(uuid))


def update(kc: KeycloakClient, action: Action, _secret: Secret) -> None:
    kc.update_client(action.payload["id"], action.payload)


def set_roles(kc: KeycloakClient, action: Action, _secret: Secret) -> None:
    set_client_roles(kc, WEB_CLIENT_ID, action.payload["grant"], action.payload["remove"])


def roles_change(have: frozenset[str] | None, wanted: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Pure: (grant, remove) that make a service account hold exactly `wanted` realm-management roles."""
    held = have or frozenset()
    return tuple(r for r in wanted if r not in held), tuple(sorted(held - set(wanted)))


def set_client_roles(kc: KeycloakClient, client_id: str, grant: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Grant and remove exactly the realm-management roles named on the service account of
    `client_id` (looking up the ids of the client, its service account and the roles: identities,
    not decisions)."""
    client = kc.find_client(client_id)
    rm = kc.find_client("realm-management")
    if client is None or rm is None:
        raise Conflict(f"client {client_id!r} or realm-management disappeared during setup; run it again")
    sa = kc.service_account_user(client["id"])
    roles = {r["name"]: r for r in kc.client_roles(rm["id"])}
    if remove:
        kc.remove_user_client_roles(sa["id"], rm["id"], [roles[n] for n in remove if n in roles],
                                    f"remove roles of {client_id!r}")
    if grant:
        kc.add_user_client_roles(sa["id"], rm["id"], [roles[n] for n in grant if n in roles])
