"""`twostep-cli`, the service account the CLI and sync sign in with (setup creates it and gives it the
roles `policy.service_roles` names; its secret is shown once). The admin pages' own OIDC client:
`web_oidc_client`.
"""

from __future__ import annotations

from .errors import Conflict
from .keycloak_adapter import JSON, KeycloakClient
from .policy import SERVICE_CLIENT_ID
from .setup_actions import Action, Secret
from .web_oidc_client import set_client_roles


def representation() -> JSON:
    """The client as setup creates it: confidential, service account only, no user sign-in."""
    return {
        "clientId": SERVICE_CLIENT_ID,
        "name": "twostep CLI and sync",
        "description": "Service account of keycloak-twostep (setup, bypass, sync)",
        "protocol": "openid-connect",
        "publicClient": False,
        "serviceAccountsEnabled": True,
        "standardFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "implicitFlowEnabled": False,
        "clientAuthenticatorType": "client-secret",
    }


def create(kc: KeycloakClient, action: Action, secret: Secret) -> None:
    rep, roles = action.payload
    try:
        uuid = kc.create_client(rep)
    except Conflict:  # created by a concurrent or interrupted run: converge instead of failing
        set_client_roles(kc, SERVICE_CLIENT_ID, roles, ())
        return
    set_client_roles(kc, SERVICE_CLIENT_ID, roles, ())
    secret(SERVICE_CLIENT_ID, kc.client_secret(uuid))
