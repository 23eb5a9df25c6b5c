"""Sign-in for the web pages: OIDC code + PKCE (Authlib), the server-side token records, the
`login_required` / `admin_required` decorators, and the typed per-app state they read.

`app` builds the state and registers the routes; `admin`, `security` (and any other blueprint)
import only this module, never `app`, so no module of the package imports one that imports it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from markupsafe import Markup

from ..clock import Clock
from ..errors import Forbidden, KeycloakUnavailable, NotFound, TwostepError, Unauthorized
from ..keycloak_adapter import KeycloakClient
from ..settings import Settings
from ..web_oidc_client import CALLBACK_PATH, SIGN_IN_STEPS_CLAIM, WEB_CLIENT_ID
from .caches import AccessCache, IdCache
from .tokens import FileTokenStore

F = TypeVar("F", bound=Callable[..., Any])
# Fallback mode only (no provider JAR, so no admin extension to ask): the role that lets in the admin pages.
ADMIN_ROLE = "manage-users"
# Keycloak's answer (the admin extension's /access) that lets someone in: may manage all users, or some.
MANAGES = frozenset({"all", "some"})
KC_ACTIONS = ("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES")
SERVICE_CLIENT_TTL_S = 50.0
SESSION_LIFETIME_S = 8 * 3600
REFRESH_LEEWAY_S = 15
STATE_KEY = "twostep"
# Authenticators that are a second factor (or, passkeys, two in one): an admin's sign-in must have
# completed one of them for the admin pages (docs/web.md, "Admins sign in with a second factor").
SECOND_FACTORS = frozenset({"auth-otp-form", "auth-conditional-otp-form", "auth-recovery-authn-code-form",
                            "webauthn-authenticator", "webauthn-authenticator-passwordless"})


@dataclass(frozen=True)
class WebConfig:
    public_url: str  # where people reach the app, e.g. https://twostep.example.org
    client_secret: str
    client_id: str = WEB_CLIENT_ID
    secret_key: str | None = None  # signs the session cookie; random per start when None
    token_dir: str | None = None
    page_size: int = 20
    max_sessions: int = 2000  # token files kept at most (FileTokenStore.max_records)


class ServiceClients:
    """The web app's own service account (client twostep-web, roles web_oidc_client.WEB_SERVICE_ROLES:
    no manage-realm, no view-events), for the self-service pages; never the CLI's credentials.
    Reused for a short while so a page does not pay a token request. A replaced client is closed
    (its connection pool) one period later, when no page can still be using it: never more than two."""

    def __init__(self, settings: Settings, web: WebConfig) -> None:
        own = replace(settings, client_id=web.client_id, client_secret=web.client_secret,
                      admin_username=None, admin_password=None)
        self.settings = own
        self.factory: Callable[[], KeycloakClient] = lambda: KeycloakClient(own)
        self._lock = threading.Lock()
        self._client: KeycloakClient | None = None
        self._retired: KeycloakClient | None = None
        self._made = 0.0

    def get(self) -> KeycloakClient:
        with self._lock:
            if self._client is None or time.monotonic() - self._made > SERVICE_CLIENT_TTL_S:
                # The one retired a period ago has had a whole period to finish its last page.
                if self._retired is not None:
                    self._retired.close()
                self._retired = self._client
                self._client = self.factory()
                self._made = time.monotonic()
            return self._client

    def close(self) -> None:
        with self._lock:
            for client in (self._retired, self._client):
                if client is not None:
                    client.close()
            self._client = self._retired = None


@dataclass
class AppState:
    """Everything the pages need of one app, typed (was a dict under app.extensions)."""

    settings: Settings
    realm: str
    web: WebConfig
    public_url: str
    clock: Clock
    tokens: FileTokenStore
    service: ServiceClients
    oauth: Any  # Authlib's registered Flask client for Keycloak
    ids: IdCache = field(default_factory=IdCache)
    access: AccessCache = field(default_factory=AccessCache)
    # Called by the sign-in callback when Keycloak sends the user back from one of its own actions
    # (security page); set by whoever registers that page, so this module imports none of them.
    after_kc_action: Callable[[dict[str, Any], str | None], Any] | None = None


def state() -> AppState:
    return cast(AppState, current_app.extensions[STATE_KEY])


# -- tokens ------------------------------------------------------------------------------------------

def jwt_claims(token: str) -> dict[str, Any]:
    """Claims of a JWT we received ourselves from Keycloak's token endpoint (back channel, TLS):
    read, not verified again. Keycloak verifies the token on every admin call anyway."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def admin_roles(access_token: str) -> list[str]:
    ra = jwt_claims(access_token).get("resource_access") or {}
    return list((ra.get("realm-management") or {}).get("roles") or [])


def may_administer(access_token: str) -> bool:
    """Whether Keycloak lets this person manage at least one user of the realm: the provider's admin
    extension answers with Keycloak's own permissions (realm-management roles or fine-grained admin
    permissions v2, e.g. "members of staff may be managed by group helpdesk-staff"), asked with the
    person's own token. Without the extension (fallback mode) the token's manage-users role decides.
    Fails closed: a refused or unreadable answer is "no"."""
    st = state()
    key = hashlib.sha256(access_token.encode()).hexdigest()
    known = st.access.get(key)
    if known is not None:
        return known
    kc = KeycloakClient(st.settings, st.realm, token=access_token)
    try:
        answer = kc.admin_access()
        allowed = isinstance(answer, dict) and answer.get("manage") in MANAGES
    except NotFound:
        allowed = ADMIN_ROLE in admin_roles(access_token)
    except (Forbidden, Unauthorized):
        allowed = False
    finally:
        kc.close()
    st.access.put(key, allowed)
    return allowed


def second_factor_used(id_token: str) -> bool:
    """Whether the sign-in behind this ID token completed a second-factor step. The token's
    `twostep_steps` claim is Keycloak's own record of the executions the user session completed
    (web_oidc_client.SIGN_IN_STEPS_MAPPER); their ids are looked up in the realm's browser flow with the
    pages' own service account (view-realm). Fails closed: no claim, an unreadable one, ids not in the
    flow (it was rebuilt since) or Keycloak not answering all mean "no"."""
    raw = jwt_claims(id_token).get(SIGN_IN_STEPS_CLAIM)
    try:
        done = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return False
    if not isinstance(done, dict) or not done:
        return False
    try:
        kc = state().service.get()
        flow = str(kc.get_realm().get("browserFlow") or "")
        steps = kc.flow_executions(flow) if flow else []
    except TwostepError:
        return False
    return any(e.get("id") in done and e.get("providerId") in SECOND_FACTORS for e in steps)


def _token_record(token: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a token answer; `ends_at`: after it nothing in the record can be used (the
    later of the access and refresh tokens' expiry, never past the session cookie's lifetime)."""
    now = time.time()
    expires_at = float(token.get("expires_at") or now + float(token.get("expires_in") or 60))
    refresh_at = now + float(token.get("refresh_expires_in") or 0) if token.get("refresh_token") else 0.0
    return {"access_token": token["access_token"], "refresh_token": token.get("refresh_token"),
            "id_token": token.get("id_token"), "expires_at": expires_at,
            "ends_at": min(now + SESSION_LIFETIME_S, max(expires_at, refresh_at))}


def _refreshed(rec: dict[str, Any], *, force: bool) -> dict[str, Any] | None:
    """The record, refreshed by Authlib's OAuth2 session when its access token is within
    REFRESH_LEEWAY_S of expiry (or always, when `force`). Returns the new record, the same one
    when nothing was due, or None when Keycloak refused the refresh token (the session ended:
    signed out elsewhere, expired, ended by an admin, or the user was disabled)."""
    if not rec.get("refresh_token"):
        return None if force or rec["expires_at"] - time.time() <= REFRESH_LEEWAY_S else rec
    st = state()
    got: dict[str, Any] = {}
    meta = st.oauth.load_server_metadata()
    sess = OAuth2Session(st.web.client_id, st.web.client_secret, token_endpoint=meta["token_endpoint"],
                         token={"access_token": rec["access_token"], "refresh_token": rec["refresh_token"],
                                "token_type": "Bearer", "expires_at": int(rec["expires_at"])},
                         update_token=lambda token, **_kw: got.update(token), leeway=REFRESH_LEEWAY_S,
                         default_timeout=st.settings.timeout)
    sess.verify = st.settings.verify_tls
    try:
        if force:
            sess.refresh_token(meta["token_endpoint"])
        else:
            sess.ensure_active_token(sess.token)
    except (OAuthError, AuthlibBaseError):
        return None
    except requests.RequestException:
        raise KeycloakUnavailable("cannot reach Keycloak to check your sign-in; nothing was changed, "
                                  "try again in a moment") from None
    finally:
        sess.close()
    if not got:
        return rec
    new = _token_record(got)
    new["id_token"] = new["id_token"] or rec.get("id_token")
    return new


def access_token(*, fresh: bool = False) -> str | None:
    """The signed-in person's access token, or None when the session is gone. Refreshed when it is
    about to expire, and always when `fresh` (before any change: Keycloak then says whether the
    session still exists and the user is still enabled). The token's `sub` must be the session's
    user: a session cookie naming someone else than its tokens is refused."""
    sid = session.get("sid")
    user = session.get("user")
    if not sid or not user:
        return None
    store = state().tokens
    rec = store.get(sid)
    if rec is None:
        return None
    new = _refreshed(rec, force=fresh)
    if new is None:
        store.delete(sid)
        return None
    if new is not rec:
        store.put(sid, new, new["ends_at"])
    token = str(new["access_token"])
    if not user.get("id") or jwt_claims(token).get("sub") != user.get("id"):
        store.delete(sid)
        return None
    return token


# -- decorators ----------------------------------------------------------------------------------

def login_required(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        changes = request.method not in ("GET", "HEAD", "OPTIONS")
        token = access_token(fresh=changes)
        if token is None:
            session.clear()
            if changes:
                # The form's target is a POST: after signing in again, start from the page.
                from . import i18n
                flash(i18n.gettext("Your sign-in had ended, so nothing was changed. Sign in and try again."),
                      "error")
                return redirect(url_for("login", next="/"))
            return redirect(url_for("login", next=request.full_path.rstrip("?")))
        g.access_token = token
        return fn(*args, **kwargs)

    return cast(F, wrapper)


def admin_required(fn: F) -> F:
    @login_required
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not may_administer(g.access_token):
            from . import i18n  # here: i18n imports this module
            abort(403, i18n.gettext("These pages are for people Keycloak lets manage users of this realm (role "
                                    "%(role)s, or a fine-grained admin permission). Your own page is /security.")
                  % {"role": f"realm-management/{ADMIN_ROLE}"})
        if not (session.get("user") or {}).get("mfa"):
            # Read only and change alike: an admin whose own sign-in skipped the second factor (a
            # bypass, no device yet, outside the policy's scope) administers nobody.
            from . import i18n
            _ = i18n.gettext
            return render_template(
                "error.html", status=403, title=_("Sign in with your second factor"),
                message=_("The admin pages need a sign-in that used a second factor (authenticator app, "
                          "backup code or security key). Yours did not: you may have a bypass, no "
                          "authenticator yet, or the policy may not cover your account. Sign out, end "
                          "that, and sign in again; your own page is /security.")), 403
        st = state()
        g.kc = KeycloakClient(st.settings, st.realm, token=g.access_token)
        return fn(*args, **kwargs)

    return cast(F, wrapper)


# -- sign-in routes --------------------------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def start_kc_action(action: str, pending: dict[str, Any]) -> Any:
    """Send the signed-in user to one of Keycloak's own application-initiated actions."""
    if action not in KC_ACTIONS:
        from . import i18n
        abort(400, i18n.gettext("Unknown action: nothing was changed."))
    session["pending"] = {**pending, "kc_action": action}
    session["next"] = "/security"
    st = state()
    return st.oauth.authorize_redirect(st.public_url + CALLBACK_PATH, kc_action=action)


def register_routes(app: Flask) -> None:
    @app.get("/auth/login")
    def login() -> Any:
        session["next"] = _safe_next(request.args.get("next"))
        st = state()
        return st.oauth.authorize_redirect(st.public_url + CALLBACK_PATH)

    @app.get(CALLBACK_PATH)
    def callback() -> Any:
        from . import i18n
        _ = i18n.gettext
        st = state()
        if request.args.get("error") and not request.args.get("code"):
            why = request.args.get("error_description") or request.args["error"]
            return render_template("error.html", status=400, title=_("Sign-in did not finish"),
                                   message=Markup("{} {}").format(_("Keycloak answered:"), i18n.untranslated(why))), 400
        try:
            token = st.oauth.authorize_access_token()
        except OAuthError as exc:
            return render_template("error.html", status=400, title=_("Sign-in failed"),
                                   message=_("The sign-in answer was refused (%(why)s). Try again.")
                                   % {"why": exc.error}), 400
        claims = token.get("userinfo") or jwt_claims(token.get("id_token", ""))
        is_admin = may_administer(str(token["access_token"]))
        sub = claims.get("sub")
        if not sub or jwt_claims(token["access_token"]).get("sub") != sub:
            return render_template("error.html", status=400, title=_("Sign-in failed"),
                                   message=_("The sign-in answer names no user (or two different ones). "
                                             "Try again.")), 400
        store = st.tokens
        old = session.get("sid")
        if old:
            store.delete(old)
        pending = session.get("pending")
        next_url = session.get("next", "/")
        notes = session.get("_flashes")  # e.g. "your sign-in had ended" from before this sign-in
        session.clear()
        if notes:
            session["_flashes"] = notes
        key = FileTokenStore.user_key(st.realm, str(sub))
        store.admit(key)
        sid = FileTokenStore.new_id(key)
        rec = _token_record(token)
        store.put(sid, rec, rec["ends_at"])
        session["sid"] = sid
        session["user"] = {"id": sub, "username": claims.get("preferred_username"),
                           "email": claims.get("email"), "name": claims.get("name"),
                           "admin": is_admin, "locale": claims.get("locale"),
                           "mfa": is_admin and second_factor_used(str(token.get("id_token") or ""))}
        session.permanent = True
        status = request.args.get("kc_action_status")
        if pending and st.after_kc_action is not None:
            return st.after_kc_action(pending, status)
        return redirect(_safe_next(next_url))

    @app.post("/auth/logout")
    def logout() -> Any:
        st = state()
        sid = session.get("sid")
        rec = st.tokens.get(sid) if sid else None
        if sid:
            st.tokens.delete(sid)
        session.clear()
        meta = st.oauth.load_server_metadata()
        params = {"post_logout_redirect_uri": st.public_url + "/", "client_id": st.web.client_id}
        if rec and rec.get("id_token"):
            params["id_token_hint"] = rec["id_token"]
        return redirect(meta["end_session_endpoint"] + "?" + urlencode(params))
