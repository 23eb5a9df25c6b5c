"""The demo's own journey (issue 22): `twostep demo`'s `admin`, who holds manage-users but no
realm-admin, signs in to the pages and grants carol a bypass; carol then signs in with the password
alone. The pages act with the admin's own token through the provider's admin extension, so Keycloak's
permissions decide and its admin events name the admin."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from twostep.settings import Settings
from twostep.web.app import create_app
from twostep.web.auth import WebConfig
from werkzeug.serving import make_server

from tests.conftest import Admin, Keycloak, Twostep, User, lock_roles
from tests.support.bypass_helpers import record_fields
from tests.support.login import LoginDriver
from tests.test_web_app import action_form, flashes, free_port, post


@pytest.fixture
def demo(keycloak: Keycloak, realm: str, twostep: Twostep, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`twostep demo` on the test realm (as deploy/local/demo.sh runs it), and its pages served."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret_file = tmp_path / "web.secret"
    r = twostep("demo", "--realm", realm, "--web-url", url, "--web-secret-file", str(secret_file))
    assert r.code == 0, r.err
    otp = {m.group(1): parse_qs(urlparse(m.group(2)).query)["secret"][0]
           for m in re.finditer(r"^\s+(\w+)\s+/.*\n\s+OTP app URI \(shown once\): (\S+)$", r.out, re.M)}
    app = create_app(Settings(url=keycloak.url, realm=realm, audit_file=str(tmp_path / "audit.jsonl")),
                     WebConfig(public_url=url, client_secret=secret_file.read_text().strip(),
                               token_dir=str(tmp_path / "tokens")))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": url, "otp": otp, "audit": tmp_path / "audit.jsonl"}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _user(admin: Admin, realm: str, username: str, password: str, secret: str | None) -> User:
    uid = admin.get(f"/{realm}/users", username=username, exact="true")[0]["id"]
    return User(str(uid), username, password, secret)


def _sign_in(keycloak: Keycloak, realm: str, base: str, user: User, path: str) -> LoginDriver:
    d = LoginDriver(keycloak.url, realm, client_id="twostep-web")
    page = d.open_url(f"{base}/auth/login?next={path}")
    assert page.kind == "login", page.summary()
    page = d.submit({"username": user.username, "password": user.password})
    if page.kind == "otp":
        page = d.submit({"otp": pyotp.TOTP(str(user.totp_secret)).now()})
    if page.kind == "configure-recovery-codes":  # the demo's policy requires backup codes: set them up
        page = d.submit({"kcRecoveryCodesConfirmation": "on"}, form_field="generatedRecoveryAuthnCodes")
    assert page.url.startswith(base), page.summary()
    return d


def test_demo_admin_grants_carol_a_bypass_in_the_pages(keycloak: Keycloak, admin: Admin, realm: str,
                                                       demo: dict[str, Any]) -> None:
    boss = _user(admin, realm, "admin", "admin-demo-pass", demo["otp"]["admin"])
    carol = _user(admin, realm, "carol", "carol-demo-pass", demo["otp"]["carol"])
    rm = admin.get(f"/{realm}/clients", clientId="realm-management")[0]["id"]
    held = {r["name"] for r in admin.get(f"/{realm}/users/{boss.id}/role-mappings/clients/{rm}")}
    assert "manage-users" in held and "realm-admin" not in held and "manage-realm" not in held, held
    assert LoginDriver(keycloak.url, realm).login(carol.username, carol.password).kind == "otp"

    d = _sign_in(keycloak, realm, demo["url"], boss, f"/admin/users/{carol.id}")
    assert d.page is not None and d.page.status == 200, d.summary()
    form = action_form(d.page, "grant")
    page = post(d, f"{demo['url']}/admin/users/{carol.id}/action",
                {**form, "kind": "password", "preset": "8h", "reason": "phone at home", "confirm": "yes"})
    assert any(m.startswith("Done for carol") for m in flashes(page)), flashes(page)
    rec = record_fields(admin, realm, carol.id)
    assert rec["marker"] == "true" and rec["by"] == f"admin@{realm} via web", rec
    b = LoginDriver(keycloak.url, realm)
    b.login(carol.username, carol.password)
    assert b.logged_in(), "carol signs in with the password alone"

    events = admin.get(f"/{realm}/admin-events", resourcePath=f"twostep/users/{carol.id}/*", max=20)
    grants = [e for e in events if e["resourcePath"].endswith("/bypass.grant")]
    assert len(grants) == 1 and grants[0]["authDetails"]["userId"] == boss.id, events
    assert json.loads(grants[0]["representation"])["who"] == f"admin@{realm}"
    assert '"event": "bypass.grant"' in Path(demo["audit"]).read_text(), "the local audit is kept as a second sink"

    page = post(d, f"{demo['url']}/admin/users/{carol.id}/action",
                {**action_form(page, "revoke"), "confirm": "yes"})
    assert any("remove the bypass" in m for m in flashes(page)), flashes(page)
    assert record_fields(admin, realm, carol.id) == {}
    assert LoginDriver(keycloak.url, realm).login(carol.username, carol.password).kind == "otp"
    assert lock_roles(admin, realm) == []
