"""The found phone on the user's admin page (#24 item 3): the demo's `admin` (manage-users, no
realm-admin) resets carol's device in the pages, the page then offers "Restore device", and after it
carol's own authenticator codes sign her in again."""

from __future__ import annotations

import time
from typing import Any

import pyotp

from tests.conftest import Admin, Keycloak
from tests.support.login import LoginDriver
from tests.support.twofactor import credential_types
from tests.test_admin_rest_web import _sign_in, _user, demo
from tests.test_web_app import action_form, flashes, post

__all__ = ["demo"]


def test_admin_restores_a_found_phone_in_the_pages(keycloak: Keycloak, admin: Admin, realm: str,
                                                   demo: dict[str, Any]) -> None:
    boss = _user(admin, realm, "admin", "admin-demo-pass", demo["otp"]["admin"])
    carol = _user(admin, realm, "carol", "carol-demo-pass", demo["otp"]["carol"])
    d = _sign_in(keycloak, realm, demo["url"], boss, f"/admin/users/{carol.id}")
    assert d.page is not None
    assert "Restore device" not in d.page.text, "nothing disabled yet: no restore form"

    page = post(d, f"{demo['url']}/admin/users/{carol.id}/action",
                {**action_form(d.page, "reset_device"), "reason": "lost phone", "confirm": "yes"})
    assert "otp" not in credential_types(admin, realm, carol.id)
    page = d.open_url(f"{demo['url']}/admin/users/{carol.id}")
    page = post(d, f"{demo['url']}/admin/users/{carol.id}/action",
                {**action_form(page, "restore_device"), "reason": "found it", "confirm": "yes"})
    assert any(m.startswith("Restored 1 device of carol") for m in flashes(page)), flashes(page)
    assert "otp" in credential_types(admin, realm, carol.id)

    b = LoginDriver(keycloak.url, realm)
    assert b.login(carol.username, carol.password).kind == "otp"
    page = b.submit({"otp": pyotp.TOTP(str(carol.totp_secret)).at(time.time() + 30)})
    if page.kind == "configure-recovery-codes":  # the demo's policy requires backup codes
        b.submit({"kcRecoveryCodesConfirmation": "on"}, form_field="generatedRecoveryAuthnCodes")
    assert b.logged_in(), b.page.summary() if b.page else ""
    restores = [e for e in admin.get(f"/{realm}/admin-events", resourcePath=f"twostep/users/{carol.id}/*", max=20)
                if e["resourcePath"].endswith("/otp.restore")]
    assert len(restores) == 1 and restores[0]["authDetails"]["userId"] == boss.id
