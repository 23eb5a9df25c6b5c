"""twostep web: serve the admin and security pages with gunicorn (a production WSGI server)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError
from .common import app, realm_options


def _secret(value: str | None, file: str | None, what: str) -> str | None:
    if value:
        return value
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {what} file {file}: {exc.strerror}") from None
    return None


@click.command()
@realm_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--public-url", metavar="URL", envvar="TWOSTEP_WEB_URL",
              help="Where people reach the app (else $TWOSTEP_WEB_URL; default http://HOST:PORT).")
@click.option("--client-secret-file", metavar="FILE", envvar="TWOSTEP_WEB_CLIENT_SECRET_FILE",
              help="File with the twostep-web client secret (else $TWOSTEP_WEB_CLIENT_SECRET).")
@click.option("--token-dir", metavar="DIR", envvar="TWOSTEP_WEB_TOKEN_DIR",
              help="Private directory for signed-in people's tokens (default: a new temporary one).")
@click.option("--max-sessions", type=click.IntRange(10, 1_000_000), default=2000, show_default=True,
              help="Token files kept at most (about 4 KiB each); the closest to their end go first.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="N",
              help="Serve Prometheus metrics on http://METRICS-HOST:N/metrics (never on the pages' port).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, metavar="HOST",
              help="Address for --metrics-port (loopback unless you mean it).")
def web(host: str, port: int, workers: int, public_url: str | None, client_secret_file: str | None,
        token_dir: str | None, max_sessions: int, metrics_port: int | None, metrics_host: str) -> None:
    """Serve the admin pages and the users' security page."""
    try:
        from gunicorn.app.base import BaseApplication

        from ..web.app import PortDispatch, check_secret_key, create_app, metrics_app
        from ..web.auth import WebConfig
    except ImportError:
        raise ConfigError("the web pages need the web extra: pip install 'keycloak-twostep[web]'") from None
    if metrics_port == port:
        raise ConfigError("--metrics-port must differ from --port: the pages' port never serves /metrics")
    secret = _secret(os.environ.get("TWOSTEP_WEB_CLIENT_SECRET"), client_secret_file, "client secret")
    if not secret:
        raise ConfigError("no twostep-web client secret: set TWOSTEP_WEB_CLIENT_SECRET or "
                          "--client-secret-file (twostep setup --web-url URL --web-secret-file FILE made it)")
    secret_key = os.environ.get("TWOSTEP_WEB_SECRET_KEY") or None
    check_secret_key(secret_key)
    settings = app().settings
    # The pages act with their own client (twostep-web: no manage-realm, no view-events). The CLI's
    # credentials in this process would undo that for whoever takes the process over.
    if settings.client_secret or settings.admin_password:
        raise ConfigError("twostep web acts with its own client twostep-web: remove the CLI's credentials "
                          "(TWOSTEP_CLIENT_SECRET / TWOSTEP_ADMIN_PASSWORD or the config file's) from its settings")
    config = WebConfig(public_url=public_url or f"http://{host}:{port}", client_secret=secret,
                       secret_key=secret_key, token_dir=token_dir, max_sessions=max_sessions)
    pages = create_app(settings, config)
    wsgi = pages if metrics_port is None else PortDispatch(pages, metrics_app(pages), metrics_port)
    binds = [f"{host}:{port}"] + ([f"{metrics_host}:{metrics_port}"] if metrics_port is not None else [])

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", binds)
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 60)
            # gunicorn 25+ opens a control socket ($XDG_RUNTIME_DIR or ~/.gunicorn) by default: a
            # management interface the pages do not need (and a write outside the token dir).
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return wsgi

    click.echo(f"serving {config.public_url} (realm {settings.realm}) on {host}:{port} with {workers} worker(s)"
               + (f"; metrics on http://{metrics_host}:{metrics_port}/metrics" if metrics_port else ""), err=True)
    Server().run()
