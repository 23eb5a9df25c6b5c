"""People who administer others, as Keycloak knows them: a help desk with only realm-management
manage-users (+ view-users, query-users), a delegated admin under fine-grained admin permissions v2,
and their own tokens from a real sign-in (code flow through the login pages)."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from tests.conftest import Admin, User
from tests.support.login import REDIRECT_URI, TEST_CLIENT, LoginDriver

HELPDESK_ROLES = ("manage-users", "view-users", "query-users")


def realm_management_id(admin: Admin, realm: str) -> str:
    return str(admin.get(f"/{realm}/clients", clientId="realm-management")[0]["id"])


def give_roles(admin: Admin, realm: str, user_id: str, roles: tuple[str, ...]) -> None:
    rm = realm_management_id(admin, realm)
    reps = [admin.get(f"/{realm}/clients/{rm}/roles/{r}") for r in roles]
    admin.post(f"/{realm}/users/{user_id}/role-mappings/clients/{rm}", reps)


def helpdesk_service_account(admin: Admin, realm: str, client_id: str = "helpdesk-cli") -> tuple[str, str]:
    """A confidential client whose service account holds only the help desk's roles: what the CLI
    of a help desk signs in with. Returns (client id, secret)."""
    secret = "hd-" + uuid.uuid4().hex
    admin.post(f"/{realm}/clients", {"clientId": client_id, "publicClient": False, "secret": secret,
                                     "serviceAccountsEnabled": True, "standardFlowEnabled": False,
                                     "directAccessGrantsEnabled": False})
    cid = admin.get(f"/{realm}/clients", clientId=client_id)[0]["id"]
    sa = admin.get(f"/{realm}/clients/{cid}/service-account-user")
    give_roles(admin, realm, str(sa["id"]), HELPDESK_ROLES)
    return client_id, secret


def personal_token(url: str, realm: str, user: User) -> str:
    """The person's own access token from a real sign-in (password, then the code when asked)."""
    d = LoginDriver(url, realm)
    page = d.login(user.username, user.password)
    if page.kind == "otp":
        page = d.submit({"otp": user.code()})
    assert d.logged_in(), page.summary()
    r = requests.post(f"{url}/realms/{realm}/protocol/openid-connect/token", timeout=30, data={
        "grant_type": "authorization_code", "client_id": TEST_CLIENT, "code": d.code, "redirect_uri": REDIRECT_URI})
    r.raise_for_status()
    return str(r.json()["access_token"])


def call(url: str, realm: str, token: str, path: str, body: dict[str, Any]) -> requests.Response:
    """One POST to the provider's admin extension as that person."""
    return requests.post(f"{url}/admin/realms/{realm}/twostep{path}", json=body, timeout=60,
                         headers={"Authorization": f"Bearer {token}"})


def delegate_group_members(admin: Admin, realm: str, admin_user_id: str, group_id: str) -> None:
    """Fine-grained admin permissions v2 (Keycloak 26.2+): switch them on for the realm, then one
    permission on the admin-permissions client: `admin_user_id` may manage the members of the group."""
    rep = admin.get(f"/{realm}")
    rep["adminPermissionsEnabled"] = True
    admin.put(f"/{realm}", rep)
    ap = admin.get(f"/{realm}/clients", clientId="admin-permissions")[0]["id"]
    base = f"/{realm}/clients/{ap}/authz/resource-server"
    policy = f"delegate-{uuid.uuid4().hex[:8]}"
    admin.post(f"{base}/policy/user", {"name": policy, "users": [admin_user_id], "logic": "POSITIVE"})
    admin.post(f"{base}/permission/scope", {"name": f"{policy}: manage members of {group_id}", "resourceType": "Groups",
                                            "resources": [group_id], "scopes": ["manage-members", "view-members"],
                                            "policies": [policy]})




def delegate_to_group(admin: Admin, realm: str, admins_group_id: str, group_id: str) -> None:
    """As `delegate_group_members`, with a group policy: the members of group `admins_group_id` (e.g.
    helpdesk-staff) may view and manage the members of group `group_id` (e.g. staff). One permission per
    resource and scope: Keycloak's admin permissions decide unanimously, so a second permission on the
    same group for other people would take the first one's people away."""
    rep = admin.get(f"/{realm}")
    rep["adminPermissionsEnabled"] = True
    admin.put(f"/{realm}", rep)
    ap = admin.get(f"/{realm}/clients", clientId="admin-permissions")[0]["id"]
    base = f"/{realm}/clients/{ap}/authz/resource-server"
    policy = f"delegate-{uuid.uuid4().hex[:8]}"
    admin.post(f"{base}/policy/group", {"name": policy, "groups": [{"id": admins_group_id, "extendChildren": False}],
                                        "logic": "POSITIVE"})
    admin.post(f"{base}/permission/scope", {"name": f"{policy}: manage members of {group_id}", "resourceType": "Groups",
                                            "resources": [group_id], "scopes": ["manage-members", "view-members"],
                                            "policies": [policy]})
