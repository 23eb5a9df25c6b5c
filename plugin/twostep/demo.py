"""A demo realm with a few people in the situations the product is for."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Conflict
from .keycloak_adapter import JSON, KeycloakClient
from .otp_credential import new_totp_secret, otp_credential_representation, provisioning_uri


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    note: str
    otp: bool = False
    admin: bool = False


DEMO_USERS = (
    DemoUser("alice", "alice-demo-pass", "has an OTP device", otp=True),
    DemoUser("bob", "bob-demo-pass", "no device yet: enrolls at first login"),
    DemoUser("carol", "carol-demo-pass", "has an OTP device (lose her phone in the admin pages)", otp=True),
    DemoUser("admin", "admin-demo-pass", "realm admin (manage-users) for the admin pages", otp=True, admin=True),
)


def ensure_realm(master: KeycloakClient, realm: str) -> bool:
    try:
        master.create_realm({
            "realm": realm, "enabled": True, "displayName": "twostep demo", "resetPasswordAllowed": True,
            "internationalizationEnabled": True, "supportedLocales": ["en", "de", "ru"], "defaultLocale": "en",
        })
        return True
    except Conflict:
        return False


def ensure_users(kc: KeycloakClient) -> list[tuple[DemoUser, str | None]]:
    """Create the demo users that are missing; returns each with its OTP URI when just created."""
    out: list[tuple[DemoUser, str | None]] = []
    rm = kc.find_client("realm-management")
    for u in DEMO_USERS:
        if kc.find_users(username=u.username, exact="true"):
            out.append((u, None))
            continue
        creds: list[JSON] = [{"type": "password", "value": u.password, "temporary": False}]
        uri = None
        if u.otp:
            secret = new_totp_secret()
            creds.append(otp_credential_representation(secret, "demo phone"))
            uri = provisioning_uri(secret, u.username, f"twostep demo ({kc.realm})")
        uid = kc.create_user({
            "username": u.username, "enabled": True, "email": f"{u.username}@demo.test", "emailVerified": True,
            "firstName": u.username.title(), "lastName": "Demo", "credentials": creds})
        if u.admin and rm is not None:
            roles = [r for r in kc.client_roles(rm["id"]) if r["name"] in ("manage-users", "view-users",
                                                                          "query-users", "view-realm", "view-events")]
            kc.add_user_client_roles(uid, rm["id"], roles)
        out.append((u, uri))
    return out
