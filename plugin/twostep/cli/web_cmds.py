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
def web(host: str, port: int, workers: int, public_url: str | None, client_secret_file: str | None,
        token_dir: str | None) -> None:
    """Serve the admin pages and the users' security page."""
    try:
        from gunicorn.app.base import BaseApplication

        from ..web.app import WebConfig, create_app
    except ImportError:
        raise ConfigError("the web pages need the web extra: pip install 'keycloak-twostep[web]'") from None
    secret = _secret(os.environ.get("TWOSTEP_WEB_CLIENT_SECRET"), client_secret_file, "client secret")
    if not secret:
        raise ConfigError("no twostep-web client secret: set TWOSTEP_WEB_CLIENT_SECRET or "
                          "--client-secret-file (twostep setup --web-url URL --web-secret-file FILE made it)")
    settings = app().settings
    settings.check_credentials()
    config = WebConfig(public_url=public_url or f"http://{host}:{port}", client_secret=secret,
                       secret_key=os.environ.get("TWOSTEP_WEB_SECRET_KEY") or None, token_dir=token_dir)
    wsgi = create_app(settings, config)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 60)

        def load(self) -> Any:
            return wsgi

    click.echo(f"serving {config.public_url} (realm {settings.realm}) on {host}:{port} with {workers} worker(s)",
               err=True)
    Server().run()
