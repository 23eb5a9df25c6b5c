"""The realm itself: its representation, its SMTP settings, user federation components, the user profile."""

from __future__ import annotations

from typing import Any

from .connection import JSON, Connection, q


class RealmCalls(Connection):
    """GET/PUT /admin/realms/{realm}, /components, /users/profile."""

    def get_realm(self) -> JSON:
        return self.get("", f"realm {self.realm!r}")

    def update_realm(self, changes: dict[str, Any]) -> None:
        self.put("", changes, f"update realm {self.realm!r}")

    def identity_providers(self) -> list[JSON]:
        return list(self.get("/identity-provider/instances", "list identity providers") or [])

    def update_identity_provider(self, alias: str, rep: JSON) -> None:
        self.put(f"/identity-provider/instances/{q(alias)}", rep, f"update identity provider {alias!r}")

    def identity_provider(self, alias: str) -> JSON:
        return self.get(f"/identity-provider/instances/{q(alias)}", f"identity provider {alias!r}")

    def realm_smtp(self) -> dict[str, str]:
        """The realm's SMTP settings (`smtpServer`); Keycloak masks the password."""
        return dict(self.get_realm().get("smtpServer") or {})

    def user_profile(self) -> JSON:
        return self.get("/users/profile", "user profile")

    def update_user_profile(self, profile: JSON) -> None:
        self.put("/users/profile", profile, "update user profile")

    def create_realm(self, rep: JSON) -> None:
        """POST /admin/realms (a master-realm admin); Conflict when the realm exists."""
        self.request("POST", "", what=f"create realm {rep.get('realm')!r}", body=rep, realm_level=False)

    def components(self, what: str, **params: Any) -> list[JSON]:
        """Components (user federations, their mappers) filtered by `type`, `parent`, ..."""
        return list(self.get("/components", what, **params) or [])

    def test_ldap_connection(self, body: JSON, name: str) -> None:
        """Keycloak's own LDAP connection/bind test, with the stored credential of `componentId`."""
        self.post("/testLDAPConnection", body, f"test the LDAP connection of {name!r}")
