"""Flask app factory: sessions, CSRF, errors, health, metrics; sign-in and page state are in auth.py."""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from ..clock import Clock, system_clock
from ..errors import ConfigError, Forbidden, NotFound, TwostepError, Unauthorized
from ..settings import Settings
from ..web_oidc_client import normalize_url
from . import charts, i18n
from .admin import bp as admin_bp
from .auth import (
    SESSION_LIFETIME_S,
    STATE_KEY,
    AppState,
    ServiceClients,
    WebConfig,
    register_routes,
)
from .export import bp as export_bp
from .help_queue import bp as help_bp
from .security import after_kc_action
from .security import bp as security_bp
from .tokens import FileTokenStore

# TWOSTEP_WEB_SECRET_KEY values shipped in this repository's examples and docs: never a real key.
PLACEHOLDER_KEYS = frozenset({"change-me-to-64-random-hex-characters", "change-me", "changeme", "replace-me",
                              "secret", "..."})
MIN_KEY_BYTES = 32


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
    CSRFProtect(app)
    oauth = OAuth(app)
    issuer = f"{settings.url}/realms/{realm}"
    oauth.register(
        "keycloak", client_id=web.client_id, client_secret=web.client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256",
                       "timeout": settings.timeout},
    )
    app.extensions[STATE_KEY] = AppState(
        settings=settings, realm=realm, web=web, public_url=public_url, clock=clock,
        tokens=FileTokenStore(web.token_dir, max_records=web.max_sessions),
        service=ServiceClients(settings, web), oauth=oauth.keycloak, after_kc_action=after_kc_action)

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
    register_routes(app)
    i18n.register(app)  # |time_until, |time_since ...: times in the viewer's language; _() words
    charts.register(app)  # inline SVG charts (overview)
    app.add_template_global(Markup, "Markup")
    app.register_blueprint(export_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(help_bp)
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
        _ = i18n.gettext
        return render_template("error.html", status=400, title=_("Form expired or forged"),
                               message=_("The form was refused (missing or wrong security token): "
                                         "nothing was changed. Reload the page and try again.")), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[str, int]:
        code = exc.code or 500
        title, message = http_error_words(exc)
        return render_template("error.html", status=code, title=title, message=message), code

    @app.errorhandler(TwostepError)
    def _twostep(exc: TwostepError) -> Any:
        if isinstance(exc, Unauthorized) and getattr(g, "access_token", None):
            # The person's Keycloak session ended (signed out elsewhere, expired): sign in again.
            session.clear()
            return redirect(url_for("login", next=request.path))
        status = 403 if isinstance(exc, Forbidden) else 404 if isinstance(exc, NotFound) else 502
        return render_template("error.html", status=status, title=i18n.gettext("Keycloak refused"),
                               message=i18n.untranslated(str(exc))), status

    return app


def http_error_words(exc: HTTPException) -> tuple[str, str | Markup]:
    """An HTTP error page's title and text in the viewer's language. A message given to abort() is
    already translated where it is raised; werkzeug's own default text is replaced by ours."""
    _ = i18n.gettext
    code = exc.code or 500
    names = {400: _("Bad Request"), 403: _("Forbidden"), 404: _("Not Found"), 405: _("Method Not Allowed"),
             500: _("Internal Server Error")}
    defaults = {400: _("The request could not be understood."), 403: _("You may not open this page."),
                404: _("There is no such page."), 405: _("This page does not take that kind of request."),
                500: _("Something went wrong on the server; its log says what.")}
    description = exc.description or ""
    if description == type(exc).description:
        return names.get(code, exc.name), defaults.get(code) or i18n.untranslated(description)
    return names.get(code, exc.name), description
