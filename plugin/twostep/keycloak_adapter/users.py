"""Users: search, representation, attributes, credentials, sessions (online and offline)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import NotFound
from .connection import JSON, Connection, q


class UserCalls(Connection):
    """/users/..., /sessions/..."""

    def get_user(self, user_id: str) -> JSON:
        return self.get(f"/users/{q(user_id)}", f"user {user_id!r}", userProfileMetadata="false")

    def create_user(self, rep: JSON) -> str:
        """A new user (with `credentials` in the representation, if any); its id."""
        return self.created_id(self.post("/users", rep, f"create {rep.get('username')!r}"))

    def find_users_in_realm(self, realm: str, what: str, **params: Any) -> list[JSON]:
        """A user search in another realm than ours (the signed-in admin's own, usually master)."""
        return list(self.request("GET", f"/{q(realm)}/users", what=what, params=params,
                                 realm_level=False).json() or [])

    def update_user(self, user_id: str, rep: JSON) -> None:
        self.put(f"/users/{q(user_id)}", rep, f"update user {rep.get('username', user_id)!r}")

    def find_users(self, **params: Any) -> list[JSON]:
        return list(self.get("/users", "search users", **params) or [])

    def count_users(self, **params: Any) -> int:
        return int(self.get("/users/count", "count users", **params))

    def iter_users(self, page_size: int = 100, **params: Any) -> Iterator[JSON]:
        return self.paged("/users", "list users", page_size, **params)

    def iter_users_with_attribute(self, name: str, value: str, page_size: int = 100) -> Iterator[JSON]:
        """Users whose OWN attribute `name` equals `value`: one targeted query, page by page, full
        representations (attributes, totp, requiredActions). Cost grows with the matches, not the realm."""
        return self.paged("/users", f"search users with {name}={value}", page_size,
                          q=f"{name}:{value}", briefRepresentation="false")

    def user_credentials(self, user_id: str) -> list[JSON]:
        return list(self.get(f"/users/{q(user_id)}/credentials", "user credentials") or [])

    def delete_credential(self, user_id: str, credential_id: str) -> None:
        self.delete(f"/users/{q(user_id)}/credentials/{q(credential_id)}", "delete credential")

    def delete_credentials(self, user_id: str, credential_type: str) -> int:
        """Delete every credential of one type the user has; one removed meanwhile is no error (the
        same end). Returns how many this call deleted."""
        deleted = 0
        for cred in self.user_credentials(user_id):
            if cred.get("type") == credential_type:
                try:
                    self.delete_credential(user_id, str(cred["id"]))
                except NotFound:
                    continue
                deleted += 1
        return deleted

    def move_credential_first(self, user_id: str, credential_id: str) -> None:
        self.post(f"/users/{q(user_id)}/credentials/{q(credential_id)}/moveToFirst", None, "reorder credentials")

    def store_user_credential(self, user_id: str, credential: JSON,
                              attributes: dict[str, list[str] | None] | None = None) -> None:
        """Give one credential (and optionally set or drop attributes) through PUT /users/{id}:
        Keycloak hands `credentials[]` to the provider of its type (for recovery-authn-codes the
        provider deletes the old set first). Fetch-modify-put: the PUT validates the whole profile."""
        user = self.get_user(user_id)
        if attributes:
            _merge_attributes(user, attributes)
        user["credentials"] = [credential]
        self.put(f"/users/{q(user_id)}", user, f"store {credential.get('type')} credential")

    def store_user_credentials(self, user_id: str, credentials: list[JSON]) -> None:
        """Several credentials in one PUT /users/{id} (each goes to the provider of its type)."""
        user = self.get_user(user_id)
        user["credentials"] = credentials
        self.put(f"/users/{q(user_id)}", user, "store " + ", ".join(str(c.get("type")) for c in credentials))

    def set_user_attributes(self, user_id: str, attributes: dict[str, list[str] | None]) -> None:
        """Set (list) or drop (None) some user attributes; fetch-modify-put."""
        user = self.get_user(user_id)
        _merge_attributes(user, attributes)
        self.update_user(user_id, user)

    def logout_user(self, user_id: str) -> None:
        self.post(f"/users/{q(user_id)}/logout", None, "end user sessions")

    def user_sessions(self, user_id: str) -> list[JSON]:
        return list(self.get(f"/users/{q(user_id)}/sessions", "user sessions") or [])

    def delete_session(self, session_id: str, offline: bool = False) -> None:
        """End one session; `offline`: an offline session (what an offline_access refresh token
        lives on). RealmAdminResource.deleteSession looks the id up in the one store it is told."""
        if offline:
            self.request("DELETE", f"/sessions/{q(session_id)}", what="end offline session",
                         params={"isOffline": "true"})
            return
        self.delete(f"/sessions/{q(session_id)}", "end session")

    def offline_sessions(self, user_id: str) -> list[JSON]:
        """The user's offline sessions (offline_access tokens), each once. Keycloak lists them per
        client only; `GET /users/{id}/consents` names the clients holding an offline token
        (additionalGrants "Offline Token" with the client's id), and needs only view-users, like
        `GET /users/{id}/offline-sessions/{clientUuid}` (UserResource)."""
        clients: list[str] = []
        for consent in self.get(f"/users/{q(user_id)}/consents", "user consents") or []:
            for extra in consent.get("additionalGrants") or []:
                if extra.get("key") == "Offline Token" and extra.get("client"):
                    clients.append(str(extra["client"]))
        found: dict[str, JSON] = {}
        for client_uuid in dict.fromkeys(clients):
            try:
                rows = self.get(f"/users/{q(user_id)}/offline-sessions/{q(client_uuid)}", "offline sessions")
            except NotFound:
                continue  # the client was deleted meanwhile, and its offline sessions with it
            for row in rows or []:
                found.setdefault(str(row["id"]), row)
        return list(found.values())


def _merge_attributes(user: JSON, attributes: dict[str, list[str] | None]) -> None:
    """Set (list) or drop (None) attributes in a user representation about to be PUT back."""
    attrs = dict(user.get("attributes") or {})
    for key, value in attributes.items():
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
    user["attributes"] = attrs
