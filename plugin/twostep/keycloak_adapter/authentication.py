"""Authentication flows, their executions and configs, required actions."""

from __future__ import annotations

from .connection import JSON, Connection, q


class AuthenticationCalls(Connection):
    """/authentication/..."""

    def flows(self) -> list[JSON]:
        return list(self.get("/authentication/flows", "list authentication flows") or [])

    def flow_executions(self, alias: str) -> list[JSON]:
        return list(self.get(f"/authentication/flows/{q(alias)}/executions", f"flow {alias!r}") or [])

    def copy_flow(self, source: str, new_alias: str) -> None:
        """Keycloak's deep copy: subflows become "<new_alias> <subflow>", configs are copied too."""
        self.post(f"/authentication/flows/{q(source)}/copy", {"newName": new_alias},
                  f"copy flow {source!r} to {new_alias!r}")

    def create_flow(self, alias: str, description: str) -> None:
        """A new, empty top-level flow."""
        self.post("/authentication/flows", {"alias": alias, "description": description, "providerId": "basic-flow",
                                            "topLevel": True, "builtIn": False}, f"create flow {alias!r}")

    def raise_priority(self, execution_id: str) -> None:
        self.post(f"/authentication/executions/{q(execution_id)}/raise-priority", {},
                  "move a step up")

    def authenticator_providers(self) -> set[str]:
        return {str(p["id"]) for p in self.get("/authentication/authenticator-providers", "authenticators") or []}

    def delete_flow(self, flow_id: str, alias: str) -> None:
        self.delete(f"/authentication/flows/{q(flow_id)}", f"delete flow {alias!r}")

    def add_subflow(self, parent: str, alias: str) -> None:
        self.post(
            f"/authentication/flows/{q(parent)}/executions/flow",
            {"alias": alias, "type": "basic-flow", "provider": "registration-page-form", "description": alias},
            f"add subflow {alias!r} to {parent!r}",
        )

    def add_execution(self, parent: str, provider: str) -> None:
        self.post(f"/authentication/flows/{q(parent)}/executions/execution", {"provider": provider},
                  f"add step {provider!r} to {parent!r}")

    def set_requirement(self, parent: str, execution: JSON, requirement: str) -> None:
        body = {**execution, "requirement": requirement}
        self.put(f"/authentication/flows/{q(parent)}/executions", body,
                 f"set {execution.get('displayName')!r} to {requirement}")

    def add_execution_config(self, execution_id: str, alias: str, config: dict[str, str]) -> None:
        self.post(f"/authentication/executions/{q(execution_id)}/config", {"alias": alias, "config": config},
                  f"configure {alias!r}")

    def execution_config(self, config_id: str) -> JSON:
        return self.get(f"/authentication/config/{q(config_id)}", "condition config")

    def required_actions(self) -> list[JSON]:
        return list(self.get("/authentication/required-actions", "list required actions") or [])

    def update_required_action(self, action: JSON) -> None:
        alias = action["alias"]
        self.put(f"/authentication/required-actions/{q(alias)}", action, f"required action {alias}")
