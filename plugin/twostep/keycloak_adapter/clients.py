"""Clients, their secrets and service accounts, client roles and their mappings to users."""

from __future__ import annotations

from .connection import JSON, Connection, q


class ClientCalls(Connection):
    """/clients/..., /users/{id}/role-mappings/clients/..."""

    def find_client(self, client_id: str) -> JSON | None:
        found = self.get("/clients", f"client {client_id!r}", clientId=client_id) or []
        return found[0] if found else None

    def clients(self) -> list[JSON]:
        """Every client of the realm (full representations: they carry the flow binding overrides)."""
        return list(self.get("/clients", "list clients") or [])

    def get_client(self, client_uuid: str) -> JSON:
        return self.get(f"/clients/{q(client_uuid)}", "client")

    def create_client(self, rep: JSON) -> str:
        return self.created_id(self.post("/clients", rep, f"create client {rep.get('clientId')!r}"))

    def client_secret(self, client_uuid: str) -> str:
        return str(self.get(f"/clients/{q(client_uuid)}/client-secret", "client secret")["value"])

    def service_account_user(self, client_uuid: str) -> JSON:
        return self.get(f"/clients/{q(client_uuid)}/service-account-user", "service account user")

    def client_roles(self, client_uuid: str) -> list[JSON]:
        return list(self.get(f"/clients/{q(client_uuid)}/roles", "client roles") or [])

    def user_client_roles(self, user_id: str, client_uuid: str) -> list[JSON]:
        return list(self.get(f"/users/{q(user_id)}/role-mappings/clients/{q(client_uuid)}",
                             "client role mappings") or [])

    def add_user_client_roles(self, user_id: str, client_uuid: str, roles: list[JSON]) -> None:
        self.post(f"/users/{q(user_id)}/role-mappings/clients/{q(client_uuid)}", roles, "grant client roles")

    def remove_user_client_roles(self, user_id: str, client_uuid: str, roles: list[JSON], what: str) -> None:
        self.request("DELETE", f"/users/{q(user_id)}/role-mappings/clients/{q(client_uuid)}", what=what, body=roles)

    def update_client(self, client_uuid: str, rep: JSON) -> None:
        self.put(f"/clients/{q(client_uuid)}", rep, f"update client {rep.get('clientId', client_uuid)!r}")

    def client_scopes(self) -> list[JSON]:
        """Every client scope of the realm, with its protocol mappers (needs view-clients)."""
        return list(self.get("/client-scopes", "list client scopes") or [])

    def add_scope_mapper(self, scope_id: str, rep: JSON) -> None:
        self.post(f"/client-scopes/{q(scope_id)}/protocol-mappers/models", rep,
                  f"add protocol mapper {rep.get('name')!r} to a client scope")
