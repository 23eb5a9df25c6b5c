"""The access pass on the admin pages, as the least-privileged help desk (a person holding only
manage-users, view-users, query-users): the kind in the grant form and the help answer, a new pass shown
once on its own page, a realm that forbids password-only bypasses refusing them with one line; in headless
Chromium the pass then signs the user in on the themed page. With TWOSTEP_WEB_SCREENSHOTS=DIR (e.g.
docs/screenshots) the grant form, the pass shown once and the login page are captured in en and de."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Admin, User
from tests.support.access_pass import GROUPED
from tests.support.bypass_helpers import record_fields
from tests.support.help_helpers import file_request, stored_request
from tests.support.locale import enable_locales, set_user_locale
from tests.support.login import LoginDriver
from tests.support.personas import HELPDESK_ROLES, give_roles
from tests.test_web_app import (  # noqa: F401 - fixtures
    CHROMIUM,
    CHROMIUM_ARGS,
    WebApp,
    _pw_sign_in,
    action_form,
    flashes,
    post,
    web,
)

FORBIDDEN = "the realm policy forbids password-only bypasses"


def _shoot(page: Any, name: str) -> None:
    target = os.environ.get("TWOSTEP_WEB_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def help_desk(admin: Admin, realm: str, make_user: Any, name: str) -> User:
    desk: User = make_user(name, otp=True)
    give_roles(admin, realm, desk.id, HELPDESK_ROLES)
    return desk


@pytest.mark.browser
def test_grant_page_offers_the_pass_first_shows_it_once_and_it_signs_in(
        web: WebApp, admin: Admin, make_user: Any) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    enable_locales(admin, web.realm)
    hilde, heinz = help_desk(admin, web.realm, make_user, "hilde"), help_desk(admin, web.realm, make_user, "heinz")
    set_user_locale(admin, web.realm, heinz.id, "de")
    eve: User = make_user("eve")  # no device yet: the pass is the first thing asked after the password
    frieda: User = make_user("frieda")
    set_user_locale(admin, web.realm, frieda.id, "de")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for desk, user, lang in ((hilde, eve, "en"), (heinz, frieda, "de")):
                page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
                _pw_sign_in(page, web, desk, f"/admin/users/{user.id}")
                kinds = page.locator("#grant input[name=kind]")
                assert [kinds.nth(i).get_attribute("value") for i in range(kinds.count())] == [
                    "pass-once", "pass-multi", "password"], "the pass first"
                _shoot(page, f"pass-grant-{lang}")
                page.check("#grant input[value=pass-once]")
                page.fill("#grant input[name=reason]", "lost phone, ticket 4711")
                page.check("#grant input[name=confirm]")
                page.click("#grant button[type=submit]")
                page.wait_for_selector("#access-pass")
                access_pass = page.inner_text("#access-pass").strip()
                assert GROUPED.match(access_pass), access_pass
                _shoot(page, f"pass-shown-{lang}")
                assert access_pass not in web.audit.read_text()
                assert record_fields(admin, web.realm, user.id)["kind"] == "pass"

                login = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
                login.goto(LoginDriver(web.kc_url, web.realm).auth_url())
                login.fill("#username", user.username)
                login.fill("#password", user.password)
                login.click("#kc-login")
                login.wait_for_selector("#twostep-pass")
                assert login.locator("html").get_attribute("lang") == lang
                _shoot(login, f"pass-login-{lang}")
                login.fill("#twostep-pass", access_pass)
                login.click("#twostep-pass-send")
                login.wait_for_selector("#totpSecret", state="attached")  # a once pass: the new device now
        finally:
            chromium.close()


def test_pages_refuse_password_only_where_the_realm_forbids_it(
        web: WebApp, admin: Admin, make_user: Any, twostep: Any) -> None:  # noqa: F811
    r = twostep("setup", "--no-service-client", "--web-url", web.url, "--backup-codes", "offered",
                "--bypass-kinds", "pass")
    assert r.code == 0, r.err
    desk = help_desk(admin, web.realm, make_user, "hilde")
    gus: User = make_user("gus", otp=True)
    d = web.sign_in(desk, f"/admin/users/{gus.id}")
    assert d.page is not None and 'value="password"' not in d.page.text
    assert "does not allow password-only" in d.page.text
    form = action_form(d.page, "grant")
    page = post(d, f"{web.url}/admin/users/{gus.id}/action", {**form, "kind": "password", "reason": "trip",
                                                               "preset": "1h", "confirm": "yes"})
    assert any(FORBIDDEN in m for m in flashes(page)), flashes(page)
    assert "kind" not in record_fields(admin, web.realm, gus.id)

    file_request(admin, web.realm, gus.id, "lost my phone")
    page = d.open_url(web.url + "/admin/help")
    form = action_form(page, "grant")
    page = post(d, f"{web.url}/admin/help/{gus.id}/answer", {**form, "kind": "password", "preset": "1d",
                                                             "confirm": "yes"})
    assert any(FORBIDDEN in m for m in flashes(page)), flashes(page)
    assert stored_request(admin, web.realm, gus.id) is not None, "the request stays open"
    page = post(d, f"{web.url}/admin/help/{gus.id}/answer", {**form, "kind": "pass-multi", "preset": "1d",
                                                             "confirm": "yes"})
    assert 'id="access-pass"' in page.text and stored_request(admin, web.realm, gus.id) is None, page.summary()


def test_pages_grant_the_realms_default_kind_the_pass_unless_setup_says_password(
        web: WebApp, admin: Admin, make_user: Any, twostep: Any) -> None:  # noqa: F811
    desk = help_desk(admin, web.realm, make_user, "hanna")
    ulf: User = make_user("ulf", otp=True)
    d = web.sign_in(desk, f"/admin/users/{ulf.id}")
    assert d.page is not None
    form = action_form(d.page, "grant")
    assert form["kind"] == "pass-once", "the realm's default, the access pass, is preselected"
    page = post(d, f"{web.url}/admin/users/{ulf.id}/action", {**form, "reason": "trip", "confirm": "yes"})
    assert 'id="access-pass"' in page.text, page.summary()
    assert record_fields(admin, web.realm, ulf.id)["kind"] == "pass"

    # The help answer, posted without any kind (a form from before the choice): the realm's default too.
    vera: User = make_user("vera", otp=True)
    file_request(admin, web.realm, vera.id, "lost my phone")
    page = d.open_url(web.url + "/admin/help")
    form = {k: v for k, v in action_form(page, "grant").items() if k != "kind"}
    page = post(d, f"{web.url}/admin/help/{vera.id}/answer", {**form, "confirm": "yes"})
    assert 'id="access-pass"' in page.text, page.summary()
    assert record_fields(admin, web.realm, vera.id)["kind"] == "pass"

    r = twostep("setup", "--no-service-client", "--web-url", web.url, "--backup-codes", "offered",
                "--bypass-default", "password")
    assert r.code == 0, r.err
    wim: User = make_user("wim", otp=True)
    page = d.open_url(f"{web.url}/admin/users/{wim.id}")
    form = action_form(page, "grant")
    assert form["kind"] == "password", "setup --bypass-default password: preselected"
    page = post(d, f"{web.url}/admin/users/{wim.id}/action", {**form, "reason": "trip", "confirm": "yes"})
    assert any("set the bypass marker" in m for m in flashes(page)), flashes(page)
    assert "kind" not in record_fields(admin, web.realm, wim.id)
