"""Flask app factory: OIDC sign-in (code + PKCE, Authlib), sessions, CSRF, errors, health, metrics."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, abort, flash, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from ..clock import Clock, system_clock
from ..errors import ConfigError, Forbidden, KeycloakUnavailable, NotFound, TwostepError, Unauthorized
from ..keycloak_adapter import KeycloakClient
from ..settings import Settings
from ..web_client import CALLBACK_PATH, WEB_CLIENT_ID, normalize_url
from . import i18n
from .tokens import FileTokenStore

F = TypeVar("F", bound=Callable[..., Any])
ADMIN_ROLE = "manage-users"
KC_ACTIONS = ("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES")
SERVICE_CLIENT_TTL_S = 50.0
SESSION_LIFETIME_S = 8 * 3600
# TWOSTEP_WEB_SECRET_KEY values shipped in this repository's examples and docs: never a real key.
PLACEHOLDER_KEYS = frozenset({"change-me-to-64-random-hex-characters", "change-me", "changeme", "replace-me",
                              "secret", "..."})
MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class WebConfig:
    public_url: str  # where people reach the app, e.g. https://twostep.example.org
    client_secret: str
    client_id: str = WEB_CLIENT_ID
    secret_key: str | None = None  # signs the session cookie; random per start when None
    token_dir: str | None = None
    page_size: int = 20
    max_sessions: int = 2000  # token files kept at most (FileTokenStore.max_records)


def check_secret_key(key: str | None) -> None:
    """Refuse a session-signing key that is a shipped placeholder or has fewer than 32 random bytes
    (whoever knows the key can forge any session cookie). None: a random key is made at start."""
    if key is None:
        return
    low = key.strip().lower()
    if low in PLACEHOLDER_KEYS or any(word in low for word in ("change-me", "changeme", "replace-me")):
        raise ConfigError("TWOSTEP_WEB_SECRET_KEY is a placeholder from the examples; set a random key "
                          "(e.g. openssl rand -hex 32)")
    if _key_bytes(key) < MIN_KEY_BYTES or _entropy_bits(key) < 4 * MIN_KEY_BYTES:
        raise ConfigError(f"TWOSTEP_WEB_SECRET_KEY is too weak: use at least {MIN_KEY_BYTES} random bytes "
                          "(e.g. openssl rand -hex 32)")


def _key_bytes(key: str) -> int:
    """How many bytes the key stands for: hex and base64 text carry fewer bytes than characters."""
    if re.fullmatch(r"[0-9a-fA-F]+", key):
        return len(key) // 2
    if re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", key):
        try:
            return len(base64.urlsafe_b64decode(key.replace("+", "-").replace("/", "_") + "=" * (-len(key) % 4)))
        except (binascii.Error, ValueError):
            pass
    return len(key.encode())


def _entropy_bits(key: str) -> float:
    """Upper estimate of the key's randomness from its character frequencies (a repeated or
    low-variety string scores low); a random hex key of 64 characters scores about 240 bits."""
    counts: Iterable[int] = Tally(key).values()
    n = len(key)
    per_char = -sum(c / n * math.log2(c / n) for c in counts) if n else 0.0
    return per_char * n


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


class ServiceClients:
    """The web app's own service account (client twostep-web, roles web_client.WEB_SERVICE_ROLES:
    no manage-realm, no view-events), for the self-service pages; never the CLI's credentials.
    Reused for a short while so a page does not pay a token request."""

    def __init__(self, settings: Settings, web: WebConfig) -> None:
        own = replace(settings, client_id=web.client_id, client_secret=web.client_secret,
                      admin_username=None, admin_password=None)
        self.settings = own
        self.factory: Callable[[], KeycloakClient] = lambda: KeycloakClient(own)
        self._lock = threading.Lock()
        self._client: KeycloakClient | None = None
        self._made = 0.0

    def get(self) -> KeycloakClient:
        with self._lock:
            if self._client is None or time.monotonic() - self._made > SERVICE_CLIENT_TTL_S:
                self._client = self.factory()
                self._made = time.monotonic()
            return self._client


def _metrics(app: Flask) -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from ..metrics import attach

    registry = CollectorRegistry()
    attach(registry)  # the shared twostep_* metrics (Keycloak latency, bypass gauges) next to the page metrics
    reqs = Counter("twostep_web_requests", "HTTP requests", ["endpoint", "method", "status"], registry=registry)
    lat = Histogram("twostep_web_request_seconds", "Request latency", ["endpoint"], registry=registry)
    kc_calls = Counter("twostep_web_keycloak_calls", "Keycloak admin calls made by pages", ["endpoint"],
                       registry=registry)

    @app.before_request
    def _start() -> None:
        g.t0 = time.perf_counter()

    @app.after_request
    def _count(resp: Response) -> Response:
        ep = request.endpoint or "unknown"
        reqs.labels(ep, request.method, str(resp.status_code)).inc()
        lat.labels(ep).observe(time.perf_counter() - getattr(g, "t0", time.perf_counter()))
        kc = getattr(g, "kc", None)
        if kc is not None:
            kc_calls.labels(ep).inc(kc.calls.count)
            resp.headers["X-Keycloak-Calls"] = str(kc.calls.count)
        return resp

    app.extensions["twostep_metrics"] = registry


def metrics_app(app: Flask) -> Callable[..., Any]:
    """A WSGI app serving only GET /metrics of `app`'s registry: `twostep web --metrics-port` binds it
    to its own address (loopback by default), so the pages' port never answers /metrics."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    registry = app.extensions["twostep_metrics"]

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Cache-Control", "no-store")])
            return [b"not found\n"]
        body = generate_latest(registry)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    return wsgi


class PortDispatch:
    """One gunicorn serving two listeners: connections accepted on `metrics_port` get the metrics
    app, all others the pages. Decided by the local port of the accepted socket, which a client
    cannot choose by a header."""

    def __init__(self, pages: Callable[..., Any], metrics: Callable[..., Any], metrics_port: int) -> None:
        self.pages, self.metrics, self.metrics_port = pages, metrics, metrics_port

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
        try:
            local = sock.getsockname() if sock is not None else None
        except OSError:
            local = None
        port = local[1] if isinstance(local, tuple) and len(local) >= 2 else None
        return (self.metrics if port == self.metrics_port else self.pages)(environ, start_response)


def create_app(settings: Settings, web: WebConfig, *, clock: Clock = system_clock) -> Flask:
    """The web app for `settings.realm`. Admin pages act with the signed-in admin's own token;
    the security page reads and changes only the signed-in user's own account with the web
    client's own service account (twostep-web; settings' credentials are not used)."""
    realm = settings.require_realm()
    check_secret_key(web.secret_key)
    public_url = normalize_url(web.public_url)
    app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
    app.config.update(
        SECRET_KEY=web.secret_key or secrets.token_hex(32),
        SESSION_COOKIE_NAME="twostep_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME_S,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which ends with sign-out
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["twostep"] = {
        "settings": settings, "realm": realm, "web": web, "public_url": public_url, "clock": clock,
        "tokens": FileTokenStore(web.token_dir, max_records=web.max_sessions),
        "service": ServiceClients(settings, web),
    }
    CSRFProtect(app)
    oauth = OAuth(app)
    issuer = f"{settings.url}/realms/{realm}"
    oauth.register(
        "keycloak", client_id=web.client_id, client_secret=web.client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256",
                       "timeout": settings.timeout},
    )
    app.extensions["twostep"]["oauth"] = oauth.keycloak

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self' "
                                + settings.url + "; frame-ancestors 'none'")
        if request.endpoint not in ("static", "healthz"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.context_processor
    def _ctx() -> dict[str, Any]:
        return {"me": session.get("user"), "realm": realm}

    _metrics(app)
    _auth_routes(app)
    i18n.register(app)  # |time_until, |time_since ...: times in the viewer's language

    from .admin import bp as admin_bp
    from .security import bp as security_bp

    app.register_blueprint(admin_bp)
    app.register_blueprint(security_bp)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/")
    def index() -> Any:
        if not session.get("user"):
            return render_template("home.html")
        return redirect(url_for("admin.overview" if session["user"].get("admin") else "security.page"))

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> tuple[str, int]:
        return render_template("error.html", status=400, title="Form expired or forged",
                               message="The form was refused (missing or wrong security token): "
                                       "nothing was changed. Reload the page and try again."), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[str, int]:
        code = exc.code or 500
        return render_template("error.html", status=code, title=exc.name,
                               message=exc.description or ""), code

    @app.errorhandler(TwostepError)
    def _twostep(exc: TwostepError) -> Any:
        if isinstance(exc, Unauthorized) and getattr(g, "access_token", None):
            # The person's Keycloak session ended (signed out elsewhere, expired): sign in again.
            session.clear()
            return redirect(url_for("login", next=request.path))
        status = 403 if isinstance(exc, Forbidden) else 404 if isinstance(exc, NotFound) else 502
        return render_template("error.html", status=status, title="Keycloak refused",
                               message=str(exc)), status

    return app


def ext() -> dict[str, Any]:
    from flask import current_app

    return cast(dict[str, Any], current_app.extensions["twostep"])


# -- sign-in ---------------------------------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _auth_routes(app: Flask) -> None:
    @app.get("/auth/login")
    def login() -> Any:
        session["next"] = _safe_next(request.args.get("next"))
        return ext()["oauth"].authorize_redirect(ext()["public_url"] + CALLBACK_PATH)

    @app.get(CALLBACK_PATH)
    def callback() -> Any:
        if request.args.get("error") and not request.args.get("code"):
            why = request.args.get("error_description") or request.args["error"]
            return render_template("error.html", status=400, title="Sign-in did not finish",
                                   message=f"Keycloak answered: {why}"), 400
        try:
            token = ext()["oauth"].authorize_access_token()
        except OAuthError as exc:
            return render_template("error.html", status=400, title="Sign-in failed",
                                   message=f"The sign-in answer was refused ({exc.error}). Try again."), 400
        claims = token.get("userinfo") or jwt_claims(token.get("id_token", ""))
        roles = admin_roles(token["access_token"])
        sub = claims.get("sub")
        if not sub or jwt_claims(token["access_token"]).get("sub") != sub:
            return render_template("error.html", status=400, title="Sign-in failed",
                                   message="The sign-in answer names no user (or two different ones). Try again."), 400
        store: FileTokenStore = ext()["tokens"]
        old = session.get("sid")
        if old:
            store.delete(old)
        pending = session.get("pending")
        next_url = session.get("next", "/")
        notes = session.get("_flashes")  # e.g. "your sign-in had ended" from before this sign-in
        session.clear()
        if notes:
            session["_flashes"] = notes
        key = FileTokenStore.user_key(ext()["realm"], str(sub))
        store.admit(key)
        sid = FileTokenStore.new_id(key)
        rec = _token_record(token)
        store.put(sid, rec, rec["ends_at"])
        session["sid"] = sid
        session["user"] = {"id": sub, "username": claims.get("preferred_username"),
                           "email": claims.get("email"), "name": claims.get("name"),
                           "admin": ADMIN_ROLE in roles, "locale": claims.get("locale")}
        session.permanent = True
        status = request.args.get("kc_action_status")
        if pending:
            from .security import after_kc_action

            return after_kc_action(pending, status)
        return redirect(_safe_next(next_url))

    @app.post("/auth/logout")
    def logout() -> Any:
        sid = session.get("sid")
        rec = ext()["tokens"].get(sid) if sid else None
        if sid:
            ext()["tokens"].delete(sid)
        session.clear()
        meta = ext()["oauth"].load_server_metadata()
        params = {"post_logout_redirect_uri": ext()["public_url"] + "/", "client_id": ext()["web"].client_id}
        if rec and rec.get("id_token"):
            params["id_token_hint"] = rec["id_token"]
        return redirect(meta["end_session_endpoint"] + "?" + urlencode(params))


def start_kc_action(action: str, pending: dict[str, Any]) -> Any:
    """Send the signed-in user to one of Keycloak's own application-initiated actions."""
    if action not in KC_ACTIONS:
        abort(400, "unknown action")
    session["pending"] = {**pending, "kc_action": action}
    session["next"] = "/security"
    return ext()["oauth"].authorize_redirect(ext()["public_url"] + CALLBACK_PATH, kc_action=action)


def _token_record(token: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a token answer; `ends_at`: after it nothing in the record can be used (the
    later of the access and refresh tokens' expiry, never past the session cookie's lifetime)."""
    now = time.time()
    expires_at = float(token.get("expires_at") or now + float(token.get("expires_in") or 60))
    refresh_at = now + float(token.get("refresh_expires_in") or 0) if token.get("refresh_token") else 0.0
    return {"access_token": token["access_token"], "refresh_token": token.get("refresh_token"),
            "id_token": token.get("id_token"), "expires_at": expires_at,
            "ends_at": min(now + SESSION_LIFETIME_S, max(expires_at, refresh_at))}


def _refresh(sid: str, rec: dict[str, Any]) -> dict[str, Any] | None:
    """A new token from Keycloak for the stored refresh token (Authlib). None when Keycloak refuses:
    the session ended (signed out elsewhere, expired, ended by an admin) or the user is disabled."""
    if not rec.get("refresh_token"):
        return None
    try:
        token = ext()["oauth"].fetch_access_token(grant_type="refresh_token", refresh_token=rec["refresh_token"])
    except OAuthError:
        return None
    except requests.RequestException:
        raise KeycloakUnavailable("cannot reach Keycloak to check your sign-in; nothing was changed, "
                                  "try again in a moment") from None
    new = _token_record(token)
    new["id_token"] = new["id_token"] or rec.get("id_token")
    ext()["tokens"].put(sid, new, new["ends_at"])
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
    store: FileTokenStore = ext()["tokens"]
    rec = store.get(sid)
    if rec is None:
        return None
    if fresh or rec["expires_at"] - time.time() <= 15:
        rec = _refresh(sid, rec)
        if rec is None:
            store.delete(sid)
            return None
    token = str(rec["access_token"])
    if not user.get("id") or jwt_claims(token).get("sub") != user.get("id"):
        store.delete(sid)
        return None
    return token


def login_required(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        changes = request.method not in ("GET", "HEAD", "OPTIONS")
        token = access_token(fresh=changes)
        if token is None:
            session.clear()
            if changes:
                # The form's target is a POST: after signing in again, start from the page.
                flash("Your sign-in had ended, so nothing was changed. Sign in and try again.", "error")
                return redirect(url_for("login", next="/"))
            return redirect(url_for("login", next=request.full_path.rstrip("?")))
        g.access_token = token
        return fn(*args, **kwargs)

    return cast(F, wrapper)


def admin_required(fn: F) -> F:
    @login_required
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if ADMIN_ROLE not in admin_roles(g.access_token):
            abort(403, "These pages are for admins of the realm (Keycloak role realm-management/"
                       f"{ADMIN_ROLE}). Your own page is /security.")
        g.kc = KeycloakClient(ext()["settings"], ext()["realm"], token=g.access_token)
        return fn(*args, **kwargs)

    return cast(F, wrapper)
