"""Realm roles (the sync lease lock claims one by creating it)."""

from __future__ import annotations

from collections.abc import Iterator

from .connection import JSON, Connection, q


class RoleCalls(Connection):
    """/roles/..."""

    def create_role(self, name: str, description: str) -> None:
        """Realm role names are unique: a create is the one atomic claim Keycloak offers (409 = taken)."""
        self.post("/roles", {"name": name, "description": description}, f"create role {name!r}")

    def roles_named(self, prefix: str, page_size: int = 100) -> list[JSON]:
        """Realm roles whose name starts with `prefix` (Keycloak's search is a substring match)."""
        return [r for r in self.paged("/roles", "list roles", page_size, search=prefix)
                if str(r.get("name") or "").startswith(prefix)]

    def get_role(self, name: str) -> JSON:
        return self.get(f"/roles/{q(name)}", f"role {name!r}")

    def delete_role(self, name: str) -> None:
        self.delete(f"/roles/{q(name)}", f"delete role {name!r}")

    def iter_role_users(self, role: str, page_size: int = 100) -> Iterator[JSON]:
        """Users holding the realm role `role` directly (Keycloak's own list: not through groups or
        composites), full representations, page by page."""
        return self.paged(f"/roles/{q(role)}/users", f"users with role {role!r}", page_size,
                          briefRepresentation="false")
