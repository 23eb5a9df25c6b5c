"""The only module that imports python-keycloak.

It authenticates (service account or bootstrap admin), sends admin REST requests, counts them,
retries only what is safe to retry, and turns Keycloak's answers into our errors by meaning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from keycloak import KeycloakOpenIDConnection
from keycloak.exceptions import (
    KeycloakAuthenticationError,
    KeycloakConnectionError,
    KeycloakError,
)
from requests import Response
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import logs, metrics
from .errors import (
    BadRequest,
    Conflict,
    Forbidden,
    KeycloakUnavailable,
    NotFound,
    TwostepError,
    Unauthorized,
)
from .settings import Settings

JSON = Any

# Only requests that cannot double an effect are retried: a POST that timed out may have been
# applied, and sending it again would create twice or answer 409.
_SAFE_RETRY = Retry(
    total=3,
    connect=3,
    read=2,
    status=3,
    backoff_factor=0.3,
    status_forcelist=(502, 503, 504),
    allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),
    raise_on_status=False,
)


_log = logs.get("twostep.keycloak")
# Path segments kept as they are in a logged path template; every other segment (ids, names, aliases,
# group paths) becomes {} so nothing a person typed or an id reaches the log.
_LITERAL_SEGMENTS = frozenset({
    "users", "credentials", "moveToFirst", "logout", "sessions", "roles", "roles-by-id", "groups", "group-by-path",
    "children", "members", "clients", "client-secret", "service-account-user", "role-mappings", "realm",
    "composites", "authentication", "flows", "executions", "execution", "flow", "config", "required-actions",
    "profile", "partialImport", "count", "attack-detection", "brute-force", "events", "admin-events",
    "client-scopes", "components", "default-default-client-scopes", "execute-actions-email", "reset-password",
    "raise-priority", "lower-priority", "copy", "send-verify-email", "consents", "federated-identity",
})


def path_template(path: str) -> str:
    """`/users/4f1.../credentials/9a2...` -> `/users/{}/credentials/{}` (query never included)."""
    parts = path.split("?", 1)[0].split("/")
    return "/".join(p if (not p or p in _LITERAL_SEGMENTS) else "{}" for p in parts) or "/"


def q(segment: str) -> str:
    """Quote one path segment (flow aliases have spaces, user input may have slashes)."""
    return quote(segment, safe="")


def _message(resp: Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip().splitlines()
        return text[0][:200] if text else resp.reason or ""
    if isinstance(body, dict):
        for key in ("errorMessage", "error_description", "error"):
            if body.get(key):
                return str(body[key])
    return str(body)[:200]


def translate(resp: Response, what: str) -> TwostepError:
    """Map one failed HTTP answer to an error named by meaning."""
    code, msg = resp.status_code, _message(resp)
    if code == 401:
        return Unauthorized(f"{what}: Keycloak rejected our credentials ({msg})")
    if code == 403:
        return Forbidden(f"{what}: not allowed for these credentials ({msg})")
    if code == 404:
        return NotFound(f"{what}: not found")
    if code == 409:
        return Conflict(f"{what}: conflict ({msg})")
    if code >= 500:
        return KeycloakUnavailable(f"{what}: Keycloak answered HTTP {code} ({msg})")
    return BadRequest(f"{what}: Keycloak refused the request, HTTP {code} ({msg})")


@dataclass
class CallCounter:
    count: int = 0


class KeycloakClient:
    """Admin REST access to one realm. Paths given to the verbs are relative to /admin/realms/{realm}."""

    def __init__(self, settings: Settings, realm: str | None = None, *, token: str | None = None) -> None:
        self.settings = settings
        self.realm = realm or settings.require_realm()
        self.calls = CallCounter()
        if token is None:
            settings.check_credentials()
        if token is not None:
            # A signed-in person's own access token (web pages): Keycloak decides what they may do.
            conn = KeycloakOpenIDConnection(
                server_url=settings.url, realm_name=self.realm, token={"access_token": token, "expires_in": 300},
                verify=settings.verify_tls, timeout=int(settings.timeout), max_retries=0,
            )
        elif settings.uses_service_account:
            conn = KeycloakOpenIDConnection(
                server_url=settings.url, realm_name=self.realm, client_id=settings.client_id or "",
                client_secret_key=settings.client_secret, grant_type="client_credentials",
                verify=settings.verify_tls, timeout=int(settings.timeout), max_retries=0,
            )
        else:
            conn = KeycloakOpenIDConnection(
                server_url=settings.url, realm_name=self.realm, user_realm_name=settings.admin_realm,
                username=settings.admin_username, password=settings.admin_password,
                client_id="admin-cli", grant_type="password",
                verify=settings.verify_tls, timeout=int(settings.timeout), max_retries=0,
            )
        adapter = HTTPAdapter(max_retries=_SAFE_RETRY, pool_maxsize=16)
        conn._s.mount("http://", adapter)
        conn._s.mount("https://", adapter)
        self._conn = conn
        self._authenticated = token is not None
        if token is not None:
            conn.headers = {**(conn.headers or {}), "Authorization": f"Bearer {token}"}

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._conn._s.close()

    def _login(self) -> None:
        if self._authenticated:
            return
        who = (
            f"service account {self.settings.client_id!r} in realm {self.realm!r}"
            if self.settings.uses_service_account
            else f"admin {self.settings.admin_username!r} in realm {self.settings.admin_realm!r}"
        )
        try:
            self.calls.count += 1
            self._conn.get_token()
        except KeycloakConnectionError as exc:
            raise KeycloakUnavailable(f"cannot reach Keycloak at {self.settings.url} ({_short(exc)})") from None
        except KeycloakAuthenticationError:
            raise Unauthorized(f"Keycloak rejected the credentials of {who}") from None
        except KeycloakError as exc:
            code = getattr(exc, "response_code", None)
            if code == 404:
                token_realm = self.realm if self.settings.uses_service_account else self.settings.admin_realm
                raise NotFound(f"realm {token_realm!r} does not exist at {self.settings.url}") from None
            if code in (400, 401):
                raise Unauthorized(f"Keycloak rejected the credentials of {who}") from None
            if code is not None and code >= 500:
                raise KeycloakUnavailable(f"Keycloak answered HTTP {code} while signing in") from None
            raise Unauthorized(f"signing in as {who} failed ({_short(exc)})") from None
        self._authenticated = True

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, Any] | None = None,
        body: JSON = None,
        realm_level: bool = True,
    ) -> Response:
        """Send one admin request; raise our error unless it succeeded."""
        self._login()
        base = f"admin/realms/{q(self.realm)}" if realm_level else "admin/realms"
        url = base + path
        payload = None if body is None else json.dumps(body)
        t0 = time.perf_counter()
        status: int | None = None
        try:
            self.calls.count += 1
            if method == "GET":
                resp = self._conn.raw_get(url, **(params or {}))
            elif method == "POST":
                resp = self._conn.raw_post(url, data=payload or "", **(params or {}))
            elif method == "PUT":
                resp = self._conn.raw_put(url, data=payload or "", **(params or {}))
            elif method == "DELETE":
                resp = self._conn.raw_delete(url, data=payload, **(params or {}))
            else:  # pragma: no cover - programming error
                raise ValueError(method)
            status = resp.status_code
        except KeycloakConnectionError as exc:
            raise KeycloakUnavailable(f"{what}: cannot reach Keycloak at {self.settings.url} ({_short(exc)})") \
                from None
        except KeycloakError as exc:
            # python-keycloak signs in again after a 401 and raises its own error when it cannot
            # (a signed-in person's token has expired, or our credentials were revoked meanwhile).
            code = getattr(exc, "response_code", None)
            if code is not None and code >= 500:
                raise KeycloakUnavailable(f"{what}: Keycloak answered HTTP {code}") from None
            raise Unauthorized(f"{what}: the sign-in to Keycloak is no longer valid; sign in again") from None
        finally:
            self._observe(method, path, params, status, time.perf_counter() - t0)
        if resp.status_code >= 400:
            if resp.status_code == 404 and realm_level and (not path or self._realm_missing()):
                raise NotFound(f"realm {self.realm!r} does not exist at {self.settings.url}")
            raise translate(resp, what)
        return resp

    def _observe(self, method: str, path: str, params: dict[str, Any] | None, status: int | None,
                 seconds: float) -> None:
        """Latency histogram and one debug event: method, path template, parameter NAMES, status."""
        metrics.observe_request(method, seconds)
        _log.debug("keycloak.request", method=method, path=path_template(path), params=sorted(params or {}),
                   status=status if status is not None else "unreachable", ms=round(seconds * 1000, 1),
                   realm=self.realm)

    def _realm_missing(self) -> bool:
        try:
            self.calls.count += 1
            resp = self._conn.raw_get(f"admin/realms/{q(self.realm)}")
        except KeycloakConnectionError:
            return False
        return resp.status_code == 404

    def get(self, path: str, what: str, **params: Any) -> JSON:
        resp = self.request("GET", path, what=what, params=params)
        return resp.json() if resp.content else None

    def post(self, path: str, body: JSON, what: str) -> Response:
        return self.request("POST", path, what=what, body=body)

    def put(self, path: str, body: JSON, what: str) -> Response:
        return self.request("PUT", path, what=what, body=body)

    def delete(self, path: str, what: str) -> Response:
        return self.request("DELETE", path, what=what)

    def paged(self, path: str, what: str, page_size: int = 100, **params: Any) -> Iterator[JSON]:
        """Iterate a list endpoint page by page (never one unbounded request)."""
        first = 0
        while True:
            page = self.get(path, what, first=first, max=page_size, **params)
            if not page:
                return
            yield from page
            if len(page) < page_size:
                return
            first += page_size

    @staticmethod
    def created_id(resp: Response) -> str:
        return resp.headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]

    # -- server ---------------------------------------------------------------------------------

    def server_info(self) -> JSON:
        """Server version and providers (needs a master-realm admin or view-system)."""
        self._login()
        self.calls.count += 1
        try:
            resp = self._conn.raw_get("admin/serverinfo")
        except KeycloakConnectionError as exc:
            raise KeycloakUnavailable(f"cannot reach Keycloak at {self.settings.url} ({_short(exc)})") from None
        if resp.status_code >= 400:
            raise translate(resp, "server info")
        return resp.json()

    # -- realm ----------------------------------------------------------------------------------

    def get_realm(self) -> JSON:
        return self.get("", f"realm {self.realm!r}")

    def update_realm(self, changes: dict[str, Any]) -> None:
        self.put("", changes, f"update realm {self.realm!r}")

    # -- authentication flows -----------------------------------------------------------------

    def flows(self) -> list[JSON]:
        return list(self.get("/authentication/flows", "list authentication flows") or [])

    def flow_executions(self, alias: str) -> list[JSON]:
        return list(self.get(f"/authentication/flows/{q(alias)}/executions", f"flow {alias!r}") or [])

    def copy_flow(self, source: str, new_alias: str) -> None:
        """Keycloak's deep copy: subflows become "<new_alias> <subflow>", configs are copied too."""
        self.post(f"/authentication/flows/{q(source)}/copy", {"newName": new_alias},
                  f"copy flow {source!r} to {new_alias!r}")

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

    # -- user profile ---------------------------------------------------------------------------

    def user_profile(self) -> JSON:
        return self.get("/users/profile", "user profile")

    def update_user_profile(self, profile: JSON) -> None:
        self.put("/users/profile", profile, "update user profile")

    # -- clients and roles ---------------------------------------------------------------------

    def find_client(self, client_id: str) -> JSON | None:
        found = self.get("/clients", f"client {client_id!r}", clientId=client_id) or []
        return found[0] if found else None

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

    # -- users ----------------------------------------------------------------------------------

    def get_user(self, user_id: str) -> JSON:
        return self.get(f"/users/{q(user_id)}", f"user {user_id!r}", userProfileMetadata="false")

    def update_user(self, user_id: str, rep: JSON) -> None:
        self.put(f"/users/{q(user_id)}", rep, f"update user {rep.get('username', user_id)!r}")

    def find_users(self, **params: Any) -> list[JSON]:
        return list(self.get("/users", "search users", **params) or [])

    def count_users(self, **params: Any) -> int:
        return int(self.get("/users/count", "count users", **params))

    def iter_users(self, page_size: int = 100, **params: Any) -> Iterator[JSON]:
        return self.paged("/users", "list users", page_size, **params)

    def user_credentials(self, user_id: str) -> list[JSON]:
        return list(self.get(f"/users/{q(user_id)}/credentials", "user credentials") or [])

    def delete_credential(self, user_id: str, credential_id: str) -> None:
        self.delete(f"/users/{q(user_id)}/credentials/{q(credential_id)}", "delete credential")

    def move_credential_first(self, user_id: str, credential_id: str) -> None:
        self.post(f"/users/{q(user_id)}/credentials/{q(credential_id)}/moveToFirst", None, "reorder credentials")

    def logout_user(self, user_id: str) -> None:
        self.post(f"/users/{q(user_id)}/logout", None, "end user sessions")

    def user_sessions(self, user_id: str) -> list[JSON]:
        return list(self.get(f"/users/{q(user_id)}/sessions", "user sessions") or [])

    def find_group_by_path(self, path: str) -> JSON | None:
        try:
            return self.get(f"/group-by-path/{quote(path.strip('/'), safe='/')}", f"group {path!r}")
        except NotFound:
            return None

    def group_children(self, group_id: str) -> list[JSON]:
        return list(self.paged(f"/groups/{q(group_id)}/children", "subgroups"))

    def iter_group_members(self, group_id: str, page_size: int = 100, brief: bool = True) -> Iterator[JSON]:
        return self.paged(f"/groups/{q(group_id)}/members", "group members", page_size,
                          briefRepresentation=str(brief).lower())

    def iter_role_users(self, role: str, page_size: int = 100) -> Iterator[JSON]:
        """Users holding the realm role `role` directly (Keycloak's own list: not through groups or
        composites), full representations, page by page."""
        return self.paged(f"/roles/{q(role)}/users", f"users with role {role!r}", page_size,
                          briefRepresentation="false")

    def user_groups(self, user_id: str) -> list[JSON]:
        return list(self.get(f"/users/{q(user_id)}/groups", "user groups") or [])

    # -- codes and devices ----------------------------------------------------------------------

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

    def realm_smtp(self) -> dict[str, str]:
        """The realm's SMTP settings (`smtpServer`); Keycloak masks the password."""
        return dict(self.get_realm().get("smtpServer") or {})

    # -- bypass and sync --------------------------------------------------------------------------

    def iter_users_with_attribute(self, name: str, value: str, page_size: int = 100) -> Iterator[JSON]:
        """Users whose OWN attribute `name` equals `value`: one targeted query, page by page, full
        representations (attributes, totp, requiredActions). Cost grows with the matches, not the realm."""
        return self.paged("/users", f"search users with {name}={value}", page_size,
                          q=f"{name}:{value}", briefRepresentation="false")

    def groups_with_attribute(self, name: str, value: str) -> list[JSON]:
        """Groups (at any depth) carrying attribute `name` = `value`."""
        found: list[JSON] = []
        stack = list(self.paged("/groups", f"search groups with {name}={value}", 100,
                                q=f"{name}:{value}", briefRepresentation="false", populateHierarchy="true"))
        while stack:
            g = stack.pop()
            if value in ((g.get("attributes") or {}).get(name) or []):
                found.append(g)
            stack.extend(g.get("subGroups") or [])
        return found

    def get_group(self, group_id: str) -> JSON:
        return self.get(f"/groups/{q(group_id)}", f"group {group_id!r}")

    def update_group(self, group_id: str, rep: JSON) -> None:
        self.put(f"/groups/{q(group_id)}", rep, f"update group {rep.get('path', group_id)!r}")

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

    def create_group(self, name: str) -> str:
        """A top-level group; its id. A concurrent create (409) answers with the existing one."""
        try:
            return self.created_id(self.post("/groups", {"name": name}, f"create group {name!r}"))
        except Conflict:
            found = self.find_group_by_path(name)
            if found is None:
                raise
            return str(found["id"])

    def join_group(self, user_id: str, group_id: str) -> None:
        self.put(f"/users/{q(user_id)}/groups/{q(group_id)}", None, "join group")

    def leave_group(self, user_id: str, group_id: str) -> None:
        self.delete(f"/users/{q(user_id)}/groups/{q(group_id)}", "leave group")


def _merge_attributes(user: JSON, attributes: dict[str, list[str] | None]) -> None:
    """Set (list) or drop (None) attributes in a user representation about to be PUT back."""
    attrs = dict(user.get("attributes") or {})
    for key, value in attributes.items():
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
    user["attributes"] = attrs


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__
