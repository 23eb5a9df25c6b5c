"""The connection to Keycloak: sign-in, one admin request, counting, safe retries, errors by meaning.

One constructor path (the credentials choose the token source), one handler for connection errors
(`_reaching`), one place that turns an HTTP answer into an error (`translate`). The per-resource
calls (realm.py, authentication.py, ...) are built on `request`/`get`/`post`/`put`/`delete`.

The token: Authlib's OAuth2Session (a requests.Session) fetches it with the client-credentials grant
(service account) or the password grant (bootstrap admin, admin-cli) and sends it as the bearer; a
signed-in person's own token (web pages) is sent as it is and never renewed here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from authlib.integrations.requests_client import OAuth2Session
from requests import Response
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .. import logs, metrics
from ..errors import (
    BadRequest,
    Conflict,
    Forbidden,
    KeycloakUnavailable,
    NotFound,
    TwostepError,
    Unauthorized,
)
from ..settings import Settings

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
# A token this close to its end is fetched anew before a request rather than sent and refused.
_TOKEN_LEEWAY_S = 30

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
    "offline-sessions", "testLDAPConnection", "serverinfo", "authenticator-providers", "twostep", "bypass",
    "grant", "extend", "revoke", "help", "dismiss", "otp", "reset", "codes", "policy", "bypass-records",
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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def bump(self) -> None:
        with self._lock:  # sync's ends may run on a few threads sharing one client
            self.count += 1


class Connection:
    """Admin REST access to one realm. Paths given to the verbs are relative to /admin/realms/{realm}."""

    def __init__(self, settings: Settings, realm: str | None = None, *, token: str | None = None) -> None:
        self.settings = settings
        self.realm = realm or settings.require_realm()
        self.calls = CallCounter()
        self._personal = token is not None
        if token is None:
            settings.check_credentials()
        session: requests.Session
        if token is not None:
            # A signed-in person's own access token (web pages): Keycloak decides what they may do.
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
        else:
            oauth = OAuth2Session(
                settings.client_id if settings.uses_service_account else "admin-cli",
                settings.client_secret if settings.uses_service_account else None,
                token_endpoint_auth_method="client_secret_post" if settings.uses_service_account else "none",
                leeway=5,  # below _TOKEN_LEEWAY_S: _login renews first, Authlib never has to
            )
            oauth.register_compliance_hook("access_token_response", self._token_answer)
            session = oauth
        session.verify = settings.verify_tls
        adapter = HTTPAdapter(max_retries=_SAFE_RETRY, pool_maxsize=16)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._session.close()

    @property
    def _who(self) -> str:
        if self.settings.uses_service_account:
            return f"service account {self.settings.client_id!r} in realm {self.realm!r}"
        return f"admin {self.settings.admin_username!r} in realm {self.settings.admin_realm!r}"

    @contextlib.contextmanager
    def _reaching(self, what: str) -> Iterator[None]:
        """The one translation of 'no answer at all' (refused, reset, timed out, TLS) into our error."""
        try:
            yield
        except (requests.ConnectionError, requests.Timeout) as exc:
            prefix = f"{what}: " if what else ""
            raise KeycloakUnavailable(f"{prefix}cannot reach Keycloak at {self.settings.url} ({_short(exc)})") \
                from None

    def _token_answer(self, resp: Response) -> Response:
        """The token endpoint's answer, refused by meaning before Authlib parses it."""
        self.calls.bump()
        code = resp.status_code
        if code < 400:
            return resp
        if code == 404:
            token_realm = self.realm if self.settings.uses_service_account else self.settings.admin_realm
            raise NotFound(f"realm {token_realm!r} does not exist at {self.settings.url}")
        if code in (400, 401, 403):
            raise Unauthorized(f"Keycloak rejected the credentials of {self._who}")
        if code >= 500:
            raise KeycloakUnavailable(f"Keycloak answered HTTP {code} while signing in")
        raise Unauthorized(f"signing in as {self._who} failed (HTTP {code}: {_message(resp)})")

    def _login(self, *, fresh: bool = False) -> None:
        """A token that is valid for a while yet: fetched anew (never refreshed, so a long-running
        sync does not depend on the refresh token's shorter life) when missing or near its end."""
        session = self._session
        if not isinstance(session, OAuth2Session):
            return
        if not fresh and session.token and not session.token.is_expired(leeway=_TOKEN_LEEWAY_S):
            return
        s = self.settings
        try:
            with self._reaching(""):
                if s.uses_service_account:
                    session.fetch_token(self._token_url(self.realm), grant_type="client_credentials",
                                        timeout=s.timeout)
                else:
                    session.fetch_token(self._token_url(s.admin_realm), grant_type="password",
                                        username=s.admin_username, password=s.admin_password, timeout=s.timeout)
        except TwostepError:
            raise
        except Exception as exc:  # Authlib's OAuthError or an unreadable token answer
            raise Unauthorized(f"signing in as {self._who} failed ({_short(exc)})") from None

    def token_roles(self) -> frozenset[str] | None:
        """The realm-management roles a service account holds, as Keycloak wrote them into its
        current access token (composites expanded: what Keycloak will allow). None when signed in
        otherwise, or when the token carries no roles claim (the client scope `roles` removed). Read
        for reporting only: the token came from Keycloak's token endpoint, Keycloak checks it."""
        if not self.settings.uses_service_account or not isinstance(self._session, OAuth2Session):
            return None
        self._login()
        token = str((self._session.token or {}).get("access_token") or "")
        try:
            part = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except (IndexError, ValueError, binascii.Error):
            return None
        access = claims.get("resource_access") if isinstance(claims, dict) else None
        if not isinstance(access, dict):
            return None
        roles = (access.get("realm-management") or {}).get("roles") or []
        return frozenset(str(r) for r in roles)

    def _token_url(self, realm: str) -> str:
        return f"{self.settings.url}/realms/{q(realm)}/protocol/openid-connect/token"

    def _send(self, method: str, path: str, what: str, params: dict[str, Any] | None, body: JSON) -> Response:
        """One request to `{url}/admin{path}`, counted and observed; a refused token is fetched anew
        once (Keycloak restarted, or the service account's session ended) and the request sent again:
        a 401 means Keycloak did nothing, so even a POST is safe to resend."""
        self._login()
        kwargs: dict[str, Any] = {"params": params or None, "timeout": self.settings.timeout}
        if body is not None:
            kwargs.update(data=json.dumps(body), headers={"Content-Type": "application/json"})
        url = f"{self.settings.url}/admin{path}"
        t0 = time.perf_counter()
        status: int | None = None
        try:
            with self._reaching(what):
                self.calls.bump()
                resp = self._session.request(method, url, **kwargs)
                if resp.status_code == 401 and not self._personal:
                    self._login(fresh=True)
                    self.calls.bump()
                    resp = self._session.request(method, url, **kwargs)
            status = resp.status_code
        finally:
            self._observe(method, path, params, status, time.perf_counter() - t0)
        if resp.status_code == 401 and self._personal:
            raise Unauthorized(f"{what}: the sign-in to Keycloak is no longer valid; sign in again")
        return resp

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
        base = f"/realms/{q(self.realm)}" if realm_level else "/realms"
        resp = self._send(method, base + path, what, params, body)
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
            return self._send("GET", f"/realms/{q(self.realm)}", "realm", None, None).status_code == 404
        except KeycloakUnavailable:
            return False

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

    def server_info(self) -> JSON:
        """Server version and providers (needs a master-realm admin or view-system)."""
        resp = self._send("GET", "/serverinfo", "server info", None, None)
        if resp.status_code >= 400:
            raise translate(resp, "server info")
        return resp.json()


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__
