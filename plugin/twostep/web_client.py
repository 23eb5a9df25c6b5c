"""The confidential OIDC client `twostep-web`: the web app signs people in with it, and its own
service account is what the security page acts with.

`twostep setup --web-url URL` plans it through `realm_setup.plan()`; this module only says what the
client must look like and how to converge it, so a second run changes nothing.

Least privilege: the web app faces the internet, so it never holds the CLI's service account
(`twostep-cli`, which needs manage-realm to set up and repair flows). The security page reads one
user, their groups and credentials (view, which manage-users includes), removes or reorders that
user's OTP credentials (manage-users) and reads the realm's policy attribute (view-realm: without it
Keycloak answers GET /realms/{realm} with the name only). Nothing else: no manage-realm, no
view-events, no client or role administration. Admin pages use the signed-in admin's own token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import Conflict, InvalidInput
from .keycloak_adapter import JSON, KeycloakClient

WEB_CLIENT_ID = "twostep-web"
CALLBACK_PATH = "/auth/callback"

# realm-management client roles of twostep-web's service account: exactly these (setup removes others).
WEB_SERVICE_ROLES = ("manage-users", "view-realm")

Secret = Callable[[str, str], None]
Step = tuple[str, Callable[[KeycloakClient, Secret], None]]


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
    }


def differences(want: JSON, have: JSON) -> list[str]:
    out = []
    for key, value in want.items():
        if key == "attributes":
            attrs = have.get("attributes") or {}
            out += [f"attribute {k}" for k, v in value.items() if attrs.get(k) != v]
        elif key in ("name", "description"):
            continue
        elif have.get(key) != value:
            out.append(key)
    return out


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


def plan_steps(web_url: str, existing: JSON | None, roles: frozenset[str] | None = None) -> list[Step]:
    """Pure: the steps that make the realm's `twostep-web` client match `web_url`, and its service
    account hold exactly WEB_SERVICE_ROLES (`roles`: what it holds now, None when unknown/none)."""
    want = desired_rep(web_url)
    wanted = ", ".join(WEB_SERVICE_ROLES)
    if existing is None:
        return [(f"create web sign-in client {WEB_CLIENT_ID!r} (redirect {want['redirectUris'][0]}; "
                 f"service-account roles {wanted})", lambda kc, secret: _create(kc, secret, want))]
    steps: list[Step] = []
    drift = differences(want, existing)
    if drift:
        steps.append((f"update web sign-in client {WEB_CLIENT_ID!r} ({', '.join(drift)})",
                      lambda kc, _secret: _update(kc, want)))
    have = roles or frozenset()
    missing = [r for r in WEB_SERVICE_ROLES if r not in have]
    extra = sorted(have - set(WEB_SERVICE_ROLES))
    if missing or extra:
        what = "; ".join(x for x in (f"grant {', '.join(missing)}" if missing else "",
                                     f"remove {', '.join(extra)}" if extra else "") if x)
        steps.append((f"service account of {WEB_CLIENT_ID!r}: {what} (exactly {wanted})",
                      lambda kc, _secret: _converge_roles(kc)))
    return steps


def _create(kc: KeycloakClient, secret: Secret, want: JSON) -> None:
    try:
        uuid = kc.create_client(want)
    except Conflict:  # made by a concurrent or interrupted run: converge
        _update(kc, want)
        _converge_roles(kc)
        return
    _converge_roles(kc)
    secret(WEB_CLIENT_ID, kc.client_secret(uuid))


def _converge_roles(kc: KeycloakClient) -> None:
    """Give twostep-web's service account exactly WEB_SERVICE_ROLES of realm-management."""
    client = kc.find_client(WEB_CLIENT_ID)
    rm = kc.find_client("realm-management")
    if client is None or rm is None:
        raise Conflict(f"client {WEB_CLIENT_ID!r} or realm-management disappeared during setup; run it again")
    sa = kc.service_account_user(client["id"])
    held = kc.user_client_roles(sa["id"], rm["id"])
    extra = [r for r in held if r["name"] not in WEB_SERVICE_ROLES]
    if extra:
        kc.request("DELETE", f"/users/{sa['id']}/role-mappings/clients/{rm['id']}",
                   what=f"remove roles of {WEB_CLIENT_ID!r}", body=extra)
    names = {r["name"] for r in held}
    grant = [r for r in kc.client_roles(rm["id"]) if r["name"] in WEB_SERVICE_ROLES and r["name"] not in names]
    if grant:
        kc.add_user_client_roles(sa["id"], rm["id"], grant)


def _update(kc: KeycloakClient, want: JSON) -> None:
    have = kc.find_client(WEB_CLIENT_ID)
    if have is None:
        raise Conflict(f"client {WEB_CLIENT_ID!r} disappeared during setup; run it again")
    merged: dict[str, Any] = {**have, **want, "attributes": {**(have.get("attributes") or {}),
                                                               **want["attributes"]}}
    kc.put(f"/clients/{have['id']}", merged, f"update client {WEB_CLIENT_ID!r}")
