"""Flask app factory: OIDC sign-in (code + PKCE, Authlib), sessions, CSRF, errors, health, metrics."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, abort, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from ..clock import Clock, system_clock
from ..errors import Forbidden, NotFound, TwostepError, Unauthorized
from ..keycloak_adapter import KeycloakClient
from ..settings import Settings
from .client_setup import CALLBACK_PATH, WEB_CLIENT_ID, normalize_url
from .tokens import FileTokenStore

F = TypeVar("F", bound=Callable[..., Any])
ADMIN_ROLE = "manage-users"
KC_ACTIONS = ("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES")
SERVICE_CLIENT_TTL_S = 50.0


@dataclass(frozen=True)
class WebConfig:
    public_url: str  # where people reach the app, e.g. https://twostep.example.org
    client_secret: str
    client_id: str = WEB_CLIENT_ID
    secret_key: str | None = None  # signs the session cookie; random per start when None
    token_dir: str | None = None
    page_size: int = 20


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
    """The app's own Keycloak client (settings' credentials), for the self-service pages: reused
    for a short while so a page does not pay a token request."""

    def __init__(self, settings: Settings, factory: Callable[[], KeycloakClient] | None = None) -> None:
        self.settings = settings
        self.factory = factory or (lambda: KeycloakClient(settings))
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
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

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

    app.add_url_rule("/metrics", "metrics",
                     lambda: Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST))


def create_app(settings: Settings, web: WebConfig, *, clock: Clock = system_clock,
               service_client: Callable[[], KeycloakClient] | None = None) -> Flask:
    """The web app for `settings.realm`. Admin pages act with the signed-in admin's own token;
    the security page reads and changes only the signed-in user's own account with the app's
    credentials (settings: the twostep-cli service account)."""
    realm = settings.require_realm()
    public_url = normalize_url(web.public_url)
    app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
    app.config.update(
        SECRET_KEY=web.secret_key or secrets.token_hex(32),
        SESSION_COOKIE_NAME="twostep_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which ends with sign-out
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["twostep"] = {
        "settings": settings, "realm": realm, "web": web, "public_url": public_url, "clock": clock,
        "tokens": FileTokenStore(web.token_dir), "service": ServiceClients(settings, service_client),
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
        if request.endpoint not in ("static", "healthz", "metrics"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.context_processor
    def _ctx() -> dict[str, Any]:
        return {"me": session.get("user"), "realm": realm}

    _metrics(app)
    _auth_routes(app)

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
        old = session.get("sid")
        if old:
            ext()["tokens"].delete(old)
        pending = session.get("pending")
        next_url = session.get("next", "/")
        session.clear()
        sid = FileTokenStore.new_id()
        ext()["tokens"].put(sid, _token_record(token))
        session["sid"] = sid
        session["user"] = {"id": claims.get("sub"), "username": claims.get("preferred_username"),
                           "email": claims.get("email"), "name": claims.get("name"),
                           "admin": ADMIN_ROLE in roles}
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
    now = time.time()
    return {"access_token": token["access_token"], "refresh_token": token.get("refresh_token"),
            "id_token": token.get("id_token"),
            "expires_at": float(token.get("expires_at") or now + float(token.get("expires_in") or 60))}


def access_token() -> str | None:
    """The signed-in person's access token, refreshed when it is about to expire; None when the
    session is gone (signed out elsewhere, refresh refused)."""
    sid = session.get("sid")
    if not sid:
        return None
    rec = ext()["tokens"].get(sid)
    if rec is None:
        return None
    if rec["expires_at"] - time.time() > 15:
        return str(rec["access_token"])
    if not rec.get("refresh_token"):
        return None
    meta = ext()["oauth"].load_server_metadata()
    web: WebConfig = ext()["web"]
    try:
        resp = requests.post(meta["token_endpoint"], timeout=ext()["settings"].timeout, data={
            "grant_type": "refresh_token", "refresh_token": rec["refresh_token"],
            "client_id": web.client_id, "client_secret": web.client_secret})
    except requests.RequestException:
        return None
    if resp.status_code != 200:
        return None
    token = resp.json()
    new = _token_record(token)
    new["id_token"] = new["id_token"] or rec.get("id_token")
    ext()["tokens"].put(sid, new)
    return str(new["access_token"])


def login_required(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = access_token() if session.get("user") else None
        if token is None:
            session.pop("user", None)
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
