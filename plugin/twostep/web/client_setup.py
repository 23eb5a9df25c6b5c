"""The confidential OIDC client `twostep-web` that the web app signs people in with.

`twostep setup --web-url URL` plans it through `realm_setup.plan()`; this module only says what the
client must look like and how to converge it, so a second run changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Conflict, InvalidInput
from ..keycloak_adapter import JSON, KeycloakClient

WEB_CLIENT_ID = "twostep-web"
CALLBACK_PATH = "/auth/callback"

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
        "serviceAccountsEnabled": False,
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


def plan_steps(web_url: str, existing: JSON | None) -> list[Step]:
    """Pure: the steps that make the realm's `twostep-web` client match `web_url`."""
    want = desired_rep(web_url)
    if existing is None:
        return [(f"create web sign-in client {WEB_CLIENT_ID!r} (redirect {want['redirectUris'][0]})",
                 lambda kc, secret: _create(kc, secret, want))]
    drift = differences(want, existing)
    if not drift:
        return []
    return [(f"update web sign-in client {WEB_CLIENT_ID!r} ({', '.join(drift)})",
             lambda kc, _secret: _update(kc, want))]


def _create(kc: KeycloakClient, secret: Secret, want: JSON) -> None:
    try:
        uuid = kc.create_client(want)
    except Conflict:  # made by a concurrent or interrupted run: converge
        _update(kc, want)
        return
    secret(WEB_CLIENT_ID, kc.client_secret(uuid))


def _update(kc: KeycloakClient, want: JSON) -> None:
    have = kc.find_client(WEB_CLIENT_ID)
    if have is None:
        raise Conflict(f"client {WEB_CLIENT_ID!r} disappeared during setup; run it again")
    merged: dict[str, Any] = {**have, **want, "attributes": {**(have.get("attributes") or {}),
                                                               **want["attributes"]}}
    kc.put(f"/clients/{have['id']}", merged, f"update client {WEB_CLIENT_ID!r}")
