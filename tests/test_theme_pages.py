"""Every page of the twostep login theme, rendered by a real Keycloak through a real login.

The theme is served from the folder (deploy/local/keycloak.sh links themes/twostep into the
server's themes/); tests/test_theme_jar.py covers the JAR. One realm serves the whole module.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.theme_pages import (
    BACKUP_CODES,
    EXPECTED_KEYS,
    FREEMARKER_ERRORS,
    LOCALES,
    PAGES,
    TEMPLATE_OF,
    SimpleAdmin,
    Walker,
    backup_code_execution,
    forms_of,
    insecure_cookie_session,
    load_messages,
    page_id,
    rendered_text,
    theme_realm,
    totp_now,
)


@pytest.fixture(scope="module")
def theme_realm_name(keycloak: Any, admin: Any) -> Iterator[str]:
    with theme_realm(admin) as realm:
        yield realm


@pytest.fixture(scope="module")
def walker(keycloak: Any, theme_realm_name: str) -> Walker:
    return Walker(keycloak.url, theme_realm_name)


def visible_text(page: str) -> str:
    return " ".join(html.unescape(page).split())


def test_keycloak_lists_the_folder_theme(keycloak: Any) -> None:
    themes = SimpleAdmin(keycloak.url, keycloak.admin_username, keycloak.admin_password).login_themes()
    assert "twostep" in themes, sorted(themes)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", PAGES)
def test_page_renders(walker: Walker, name: str, locale: str) -> None:
    page = walker.reach(name, locale)
    assert page.status == 200, page.html[:2000]
    for marker in FREEMARKER_ERRORS:
        assert marker not in page.html, f"{name} ({locale}): {marker}"
    assert page.page == TEMPLATE_OF[name], f"{name} ({locale}) ended on {page.page!r}"
    assert f'lang="{locale}"' in page.html
    assert f"template: {TEMPLATE_OF[name]}.ftl (twostep)" in page.html, "not our template"
    assert "/login/twostep/css/twostep.css" in page.html, "our stylesheet is not linked"
    text = visible_text(page.html)
    messages = load_messages(locale)
    for key in EXPECTED_KEYS[name]:
        expected = " ".join(rendered_text(messages[key]).split())
        assert expected in text, f"{name} ({locale}): {key} = {expected!r} not shown"


@pytest.mark.parametrize("locale", LOCALES)
def test_recovery_page_names_the_next_code_number(walker: Walker, locale: str) -> None:
    page = walker.reach("login-recovery-authn-code-input", locale)
    messages = load_messages(locale)
    text = visible_text(page.html)
    for key in ("twostepRecoveryWhichCode", "twostepRecoveryWhy", "auth-recovery-code-prompt"):
        assert rendered_text(messages[key], "1") in text, key


def test_backup_code_path_signs_in(keycloak: Any, admin: Any) -> None:
    """The 'use a backup code' button leads, through the chooser, to a working code form; the next
    visit asks for code #2 (Keycloak's strict numbered order, as our page explains)."""
    with theme_realm(admin) as realm:
        walker = Walker(keycloak.url, realm)
        first = walker.reach("login-recovery-authn-code-input", "en")
        assert "#1" in visible_text(first.html)
        s = insecure_cookie_session()
        resp = walker.login(s, "codes-user", "en")
        resp = _submit(s, resp.text, "twostep-backup-code-form")
        assert page_id(resp.text) == "select-authenticator"
        resp = _choose_backup_codes(s, resp.text)
        assert page_id(resp.text) == "login-recovery-authn-code-input"
        done = _submit(s, resp.text, "kc-recovery-code-login-form", recoveryCodeInput=BACKUP_CODES[0],
                       allow_redirects=False)
        assert done.status_code in (302, 303), visible_text(done.text)[:500]
        assert "code=" in done.headers["Location"]
        again = walker.reach("login-recovery-authn-code-input", "en")
        assert rendered_text(load_messages("en")["twostepRecoveryWhichCode"], "2") in visible_text(again.html)


def test_admin_api_otp_credential_signs_in(keycloak: Any, admin: Any) -> None:
    """The OTP credential written through the admin API works: its code passes the OTP page."""
    with theme_realm(admin) as realm:
        walker = Walker(keycloak.url, realm)
        s = insecure_cookie_session()
        resp = walker.login(s, "otp-user", "en")
        assert page_id(resp.text) == "login-otp"
        done = _submit(s, resp.text, "kc-otp-login-form", otp=totp_now(), allow_redirects=False)
        assert done.status_code in (302, 303), visible_text(done.text)[:500]


def _submit(s: requests.Session, page: str, form_id: str, allow_redirects: bool = True,
            **values: str) -> requests.Response:
    form = next(f for f in forms_of(page) if f.id == form_id)
    return s.post(form.action, data={**form.fields, **values}, timeout=60, allow_redirects=allow_redirects)


def _choose_backup_codes(s: requests.Session, chooser: str) -> requests.Response:
    execution = backup_code_execution(chooser)
    form = next(f for f in forms_of(chooser) if f.fields.get("authenticationExecution") == execution)
    return s.post(form.action, data=form.fields, timeout=60)
