"""The twostep login pages in headless Chromium: desktop and mobile screenshots and an axe-core
accessibility check (no serious or critical violation allowed).

Chromium is Debian's (/usr/bin/chromium) driven by Playwright's Python package; axe-core comes from
npm (``npm ci`` at the repository root). The screenshots of a run go to the test's temporary folder;
``python -m tests.theme_pages --screenshots`` writes the ones in docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.theme_pages import (
    AXE_JS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LOCALES,
    PAGES,
    REDIRECT_URI,
    VIEWPORTS,
    axe_violations,
    load_messages,
    rendered_text,
    screenshot_name,
    theme_realm,
    visit_pages,
)

pytestmark = pytest.mark.browser

BLOCKING_IMPACTS = {"serious", "critical"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser_realm(keycloak: Any, admin: Any) -> Iterator[str]:
    with theme_realm(admin) as realm:
        yield realm


def test_axe_core_is_installed() -> None:
    assert AXE_JS.is_file(), f"{AXE_JS} missing: run `npm ci` in the repository root"


def test_screenshots_and_accessibility(chromium: Any, keycloak: Any, browser_realm: str,
                                       tmp_path: Path) -> None:
    problems: list[str] = []
    shots: list[Path] = []
    for name, width, page in visit_pages(chromium, keycloak.url, browser_realm):
        target = tmp_path / screenshot_name(name, width)
        page.screenshot(path=str(target), full_page=True)
        shots.append(target)
        # Nothing may stick out sideways on a phone.
        scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
        if scroll_width > width:
            problems.append(f"{name} @{width}px: page is {scroll_width}px wide")
        for v in axe_violations(page):
            if v.get("impact") in BLOCKING_IMPACTS:
                targets = [n.get("target") for n in v.get("nodes", [])][:3]
                problems.append(f"{name} @{width}px: {v['id']} ({v['impact']}): {v['help']} {targets}")
    assert not problems, "\n".join(problems)
    assert len(shots) == len(PAGES) * len(VIEWPORTS)
    for shot in shots:
        assert shot.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("locale", LOCALES)
def test_use_a_backup_code_button_leads_to_the_code_form(chromium: Any, keycloak: Any,
                                                         browser_realm: str, locale: str) -> None:
    """A user clicks 'use a backup code', picks the backup code in the chooser and sees which
    numbered code to type: the same walk as a person, in each language (visit_pages clicks it)."""
    expected = rendered_text(load_messages(locale)["twostepRecoveryWhichCode"], "1")
    seen = 0
    for _, width, page in visit_pages(chromium, keycloak.url, browser_realm, locale,
                                      names=["login-recovery-authn-code-input"]):
        assert page.locator("#twostep-recovery-which").inner_text().strip() == expected, f"@{width}px"
        assert page.locator("#recoveryCodeInput").is_visible()
        seen += 1
    assert seen == len(VIEWPORTS)


@pytest.mark.parametrize("locale", LOCALES)
def test_otp_page_shows_lost_phone_help_in_the_viewport(chromium: Any, keycloak: Any,
                                                        browser_realm: str, locale: str) -> None:
    messages = load_messages(locale)
    for _, width, page in visit_pages(chromium, keycloak.url, browser_realm, locale, names=["login-otp"]):
        button = page.locator("#twostep-use-backup-code")
        assert button.is_visible(), f"@{width}px"
        assert button.inner_text().strip() == rendered_text(messages["twostepOtpUseBackupCode"])
        assert page.locator("#twostep-lost-phone").is_visible()
        # The parent's generic "Try another way" link is hidden where our button stands in for it.
        assert not page.locator("#kc-select-try-another-way-form").is_visible()


def test_backup_codes_page_download_confirm_and_save(chromium: Any, keycloak: Any, admin: Any) -> None:
    """Download as text gives the numbered codes; "I saved them" unlocks the button; saving works."""
    with theme_realm(admin) as realm:
        for _, width, page in visit_pages(chromium, keycloak.url, realm,
                                          names=["login-recovery-authn-code-config"]):
            if width != VIEWPORTS["desktop"][0]:
                continue
            codes = [c.strip() for c in page.locator("#kc-recovery-codes-list li").all_inner_texts()]
            assert len(codes) == 12
            save = page.locator("#saveRecoveryAuthnCodesBtn")
            assert save.is_disabled()
            with page.expect_download() as download_info:
                page.click("#downloadRecoveryCodes")
            download = download_info.value
            assert download.suggested_filename == load_messages("en")["twostepCodesFileName"]
            content = Path(download.path()).read_text(encoding="utf-8")
            for number, code in enumerate(codes, start=1):
                assert f"#{number}  {code}" in content
            assert page.locator("#twostep-codes-status").inner_text().strip() == rendered_text(
                load_messages("en")["twostepCodesDownloaded"])
            page.check("#kcRecoveryCodesConfirmationCheck")
            assert save.is_enabled()
            # Saving ends the login: Keycloak redirects to the client with a code. (Nothing listens
            # at the redirect URI; the redirect itself is what counts.)
            with page.expect_response(lambda r: r.request.method == "POST" and r.status in (302, 303)) as done:
                save.click()
            location = done.value.headers.get("location", "")
            assert location.startswith(REDIRECT_URI) and "code=" in location, location
            break  # the user has codes now: the mobile walk would end elsewhere
