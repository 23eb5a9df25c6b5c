"""`twostep demo`: a demo realm with users, under the policy, for trying the product locally."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..demo import ensure_realm, ensure_users
from ..keycloak_adapter import KeycloakClient
from ..realm_setup import Desired, apply, plan, read_actual
from ..web_oidc_client import WEB_CLIENT_ID, normalize_url
from .common import app


@click.command()
@click.option("--realm", default="demo", show_default=True)
@click.option("--web-url", default="http://127.0.0.1:8000", show_default=True,
              help="Where the admin pages will listen (for the web client's redirect URI).")
@click.option("--web-secret-file", metavar="FILE", required=True,
              help="Where to keep the demo web client's secret (mode 0600) for `twostep web`.")
def demo(realm: str, web_url: str, web_secret_file: str) -> None:
    """Create (or reuse) a demo realm with demo users and apply the policy with the twostep theme."""
    a = app()
    settings = a.settings
    master = KeycloakClient(settings, settings.admin_realm)
    created = ensure_realm(master, realm)
    kc = KeycloakClient(settings, realm)
    users = ensure_users(kc)
    desired = Desired(theme="twostep", service_client=False, web_url=normalize_url(web_url))
    now = a.clock()
    actions = plan(desired, read_actual(kc, desired, now), now)
    apply(kc, actions, lambda _n, _v: None)
    web_client = kc.find_client(WEB_CLIENT_ID)
    if web_client is not None:
        # A local demo only: the bootstrap admin may read the secret back, so restarts just work.
        path = Path(web_secret_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(kc.client_secret(web_client["id"]) + "\n")
    click.echo(f"realm {realm!r} {'created' if created else 'reused'}; policy: {len(actions)} change(s) applied")
    click.echo(f"  login (account console): {settings.url}/realms/{realm}/account")
    click.echo(f"  Keycloak admin console:  {settings.url}/admin/master/console/#/{realm} "
               f"(bootstrap admin {settings.admin_username})")
    click.echo(f"  twostep admin pages:     {web_url}/admin   your security page: {web_url}/security")
    for u, uri in users:
        line = f"  {u.username:6} / {u.password:16} {u.note}"
        click.echo(line)
        if uri:
            click.echo(f"         OTP app URI (shown once): {uri}")
