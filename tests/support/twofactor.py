"""Helpers for the backup-code and device tests: pick an option on Keycloak's select-authenticator
page (its label sits next to, not inside, each small form), read codes off Keycloak's pages."""

from __future__ import annotations

import html
import json
import re
from typing import TYPE_CHECKING, Any

from tests.conftest import Admin, Twostep
from tests.support.login import LoginDriver, Page

if TYPE_CHECKING:
    from twostep.keycloak_adapter import KeycloakClient

RECOVERY_OPTION = "Recovery Authentication Code"
OTP_OPTION = "Authenticator Application"


def choose_option(b: LoginDriver, label_contains: str) -> Page:
    return b.choose(label_contains)


def to_recovery_form(b: LoginDriver) -> Page:
    """From the OTP page: "try another way", then the recovery-code option."""
    assert b.page is not None
    if b.page.kind == "otp":
        b.try_another_way()
    assert b.page is not None
    if b.page.kind == "select-authenticator":
        choose_option(b, RECOVERY_OPTION)
    assert b.page is not None and b.page.kind == "recovery-code", b.page.summary()
    return b.page


def requested_number(page: Page) -> int:
    """The code number Keycloak's recovery form asks for ("code #N")."""
    m = re.search(r"#\s*(\d+)", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))
    assert m, "the recovery form names no code number: " + page.summary()
    return int(m.group(1))


def codes_on_config_page(page: Page) -> list[str]:
    """The codes Keycloak shows on its own CONFIGURE_RECOVERY_AUTHN_CODES page, in order."""
    text = html.unescape(page.text)
    found = re.findall(r"\b([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})\b", text)
    out: list[str] = []
    for c in found:
        if c not in out:
            out.append(c)
    return out


def kc_client(url: str, realm: str, username: str = "admin", password: str = "admin") -> KeycloakClient:
    """Our own adapter as the bootstrap admin, for calling the service functions directly."""
    from twostep.keycloak_adapter import KeycloakClient
    from twostep.settings import Settings

    return KeycloakClient(Settings(url=url, realm=realm, admin_username=username, admin_password=password))


def setup_realm(twostep: Twostep, *args: str) -> None:
    r = twostep("setup", "--no-service-client", *args)
    assert r.code == 0, r.err
    assert "applied" in r.out


def credential_types(admin: Admin, realm: str, user_id: str) -> list[str]:
    return [c["type"] for c in admin.get(f"/{realm}/users/{user_id}/credentials")]


def _policy(admin: Admin, realm: str) -> dict[str, Any]:
    text = (admin.get(f"/{realm}").get("attributes") or {}).get("twostep.policy") or "{}"
    return dict(json.loads(text))


def provider_decides(admin: Admin, realm: str) -> bool:
    """Whether setup put the realm in provider mode (the policy record says who decides)."""
    return _policy(admin, realm).get("decided_by") == "provider"


def finish_sign_in(b: LoginDriver, admin: Admin, realm: str, enrolled: bool = False) -> None:
    """After a second factor of a user without backup codes. With the provider deciding, Keycloak's own
    backup-code page comes next when the policy asks for it (docs/formats.md): after a first
    enrollment unless backup codes are off, for a device without codes when they are required. The
    fallback flow signs in at once."""
    assert b.page is not None
    policy = _policy(admin, realm)
    codes = policy.get("backup_codes", "required")
    if policy.get("decided_by") == "provider" and (codes != "off" if enrolled else codes == "required"):
        assert b.page.kind == "configure-recovery-codes", b.page.summary()
        b.submit({"kcRecoveryCodesConfirmation": "on"}, form_field="generatedRecoveryAuthnCodes")
    assert b.logged_in(), b.page.summary() if b.page else ""
