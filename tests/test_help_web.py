"""The help request queue on the admin pages, through the real OIDC sign-in against the real Keycloak:
the overview's card, the queue page (message escaped, devices and codes), CSRF and bad answers changing
nothing, and in headless Chromium an admin answering from the queue, after which the user signs in
with the password alone and enrolls a new device; axe-core on the queue page."""

from __future__ import annotations

import base64
import time

import pyotp
import pytest

from tests.conftest import Admin, Twostep, User
from tests.support.bypass_helpers import audit_events, record_fields
from tests.support.help_helpers import file_request, in_index, stored_request
from tests.support.login import LoginDriver
from tests.test_help_request_login import ask
from tests.test_web_app import (  # noqa: F401 - fixtures
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORTS,
    WebApp,
    _pw_sign_in,
    action_form,
    csrf_of,
    flashes,
    people,
    post,
    shoot,
    web,
)
from tests.theme_pages import axe_violations

MESSAGE = "lost my phone <script>alert(1)</script> & the backup sheet"


def test_queue_page_lists_requests_and_refuses_bad_answers(
        web: WebApp, people: tuple[User, User], admin: Admin) -> None:  # noqa: F811
    boss, eve = people
    d = web.sign_in(eve, "/admin/help")
    assert d.page is not None and d.page.status == 403, "the queue is for admins"

    d = web.sign_in(boss, "/admin")
    assert d.page is not None and "No open help requests" in d.page.text
    file_request(admin, web.realm, eve.id, MESSAGE)
    over = d.open_url(web.url + "/admin")
    assert over.text.index('id="help-card"') < over.text.index('id="last-pass"'), "open requests first"
    assert "1 open" in over.text and "Waiting: eve." in over.text

    page = d.open_url(web.url + "/admin/help")
    assert page.status == 200
    calls = d.s.get(web.url + "/admin/help", timeout=30).headers["X-Keycloak-Calls"]
    assert calls == "4", "the realm, the index group, its members, one credentials read per request"
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; the backup" in page.text
    assert "phone" in page.text and "No OTP device" not in page.text, "eve's device is listed"
    grant, dismiss = action_form(page, "grant"), action_form(page, "dismiss")
    assert grant["preset"] == "1d" and grant["user_id"] == eve.id
    url = f"{web.url}/admin/help/{eve.id}/answer"

    no_token = {k: v for k, v in dismiss.items() if k != "csrf_token"}
    refused = post(d, url, {**no_token, "reason": "x", "confirm": "yes"})
    assert refused.status == 400 and "nothing was changed" in refused.text
    cases = [
        ({**dismiss, "reason": " ", "confirm": "yes"}, "reason is required"),
        ({**dismiss, "reason": "r"}, "I confirm"),
        ({**grant, "preset": "forever", "confirm": "yes"}, "choose a duration"),
        ({**grant, "confirm": "yes", "user_id": boss.id}, "does not belong"),
        ({**grant, "confirm": "yes", "action": "approve_all"}, "Unknown answer"),
    ]
    for values, expected in cases:
        msgs = flashes(post(d, url, values))
        assert any(expected in m and "othing was changed" in m for m in msgs), (values, msgs)
        assert stored_request(admin, web.realm, eve.id) is not None and in_index(admin, web.realm, eve.id)
        assert record_fields(admin, web.realm, eve.id) == {}

    done = post(d, url, {**dismiss, "reason": "not you, says the phone call", "confirm": "yes"})
    assert any("closed the help request of eve" in m for m in flashes(done)), flashes(done)
    assert stored_request(admin, web.realm, eve.id) is None and not in_index(admin, web.realm, eve.id)
    again = post(d, url, {**dismiss, "reason": "twice", "confirm": "yes"})
    assert any("no open help request" in m and "othing was changed" in m for m in flashes(again)), flashes(again)
    (ev,) = audit_events(web.audit, "help.dismiss")
    assert ev["actor"].startswith("boss@") and ev["reason"] == "not you, says the phone call"

    # The admin's own request: listed, but no grant form (another admin must answer it).
    file_request(admin, web.realm, boss.id, "mine")
    page = d.open_url(web.url + "/admin/help")
    assert "your own request" in page.text and not any(f.fields.get("action") == "grant" for f in page.forms)


@pytest.mark.browser
def test_browser_admin_answers_from_queue_then_user_enrolls_new_device(
        web: WebApp, people: tuple[User, User], admin: Admin, twostep: Twostep) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    boss, eve = people
    # eve asks from the login page herself: password, "Try another way", "ask an administrator".
    admin.put(f"/{web.realm}", {"loginTheme": "twostep"})
    asked = ask(LoginDriver(web.kc_url, web.realm), eve, MESSAGE)
    assert 'data-twostep-help="sent"' in asked.text, asked.summary()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # bypass_csp: the pages' CSP (no inline script) would refuse axe-core's injected script.
            page = chromium.new_context(viewport=VIEWPORTS["desktop"], bypass_csp=True).new_page()
            _pw_sign_in(page, web, boss, "/admin")
            assert "1 open" in page.inner_text("#help-card")
            page.click("#help-card a:has-text('1 open')")
            page.wait_for_url(f"{web.url}/admin/help")
            assert MESSAGE in page.inner_text("blockquote.message"), "shown as text, not markup"
            violations = axe_violations(page)
            assert violations == [], [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in violations]
            shoot(page, "help-queue", prefix="")

            grant = page.locator(f"#req-{eve.id} form.grant")
            assert grant.locator("input[value='1d']").is_checked()
            assert grant.locator("input[name='kind'][value='pass-once']").is_checked(), "the realm's default"
            grant.locator("input[name='kind'][value='password']").check()
            grant.locator("input[name='confirm']").check()
            grant.locator("button[type=submit]").click()
            page.wait_for_selector(".flash.ok")
            assert "closed the help request of eve" in page.inner_text(".flash.ok")
            assert "No open help requests" in page.inner_text("main")
            shoot(page, "help-queue-answered", prefix="")
            violations = axe_violations(page)
            assert violations == [], [(v["id"], v["help"]) for v in violations]

            # eve: the password alone lets her in, and the lost device is gone.
            d = LoginDriver(web.kc_url, web.realm)
            d.login(eve.username, eve.password)
            assert d.logged_in(), d.page.summary() if d.page else None
            creds = admin.get(f"/{web.realm}/users/{eve.id}/credentials")
            assert [c for c in creds if c["type"] == "otp"] == []

            # ... and she sets up her new phone on her security page, signed in with the password alone.
            mine = chromium.new_context(viewport=VIEWPORTS["desktop"]).new_page()
            mine.goto(f"{web.url}/auth/login?next=/security")
            mine.fill("#username", eve.username)
            mine.fill("#password", eve.password)
            mine.click("#kc-login")
            mine.wait_for_url(f"{web.url}/security*")
            mine.click("button:has-text('Set up an authenticator app')")
            mine.wait_for_selector("input[name=totpSecret]", state="attached")
            secret = base64.b32encode(mine.input_value("input[name=totpSecret]").encode()).decode()
            mine.fill("#totp", pyotp.TOTP(secret).now())
            mine.fill("#userLabel", "new phone")
            mine.click("#kc-login, input[type=submit]")
            mine.wait_for_url(f"{web.url}/security*")
            assert "new phone" in mine.inner_text("main")
        finally:
            chromium.close()
    otps = [c for c in admin.get(f"/{web.realm}/users/{eve.id}/credentials") if c["type"] == "otp"]
    assert [c["userLabel"] for c in otps] == ["new phone"]
    # The new device ends the bypass at the next sync pass: the code is asked again, from the new phone.
    r = twostep("sync", "--json")
    assert r.code == 0, r.out + r.err
    b = LoginDriver(web.kc_url, web.realm)
    assert b.login(eve.username, eve.password).kind == "otp"
    # The next period's code (look-around 1): the current one was spent at enrollment (no reuse).
    b.submit({"otp": pyotp.TOTP(secret).at(time.time() + 30)})
    assert b.logged_in(), b.page.summary() if b.page else None

    (ev,) = audit_events(web.audit, "help.grant")
    assert ev["username"] == "eve" and ev["actor"].startswith("boss@") and ev["devices_removed"] == 1
    (bev,) = audit_events(web.audit, "bypass.grant")
    assert bev["username"] == "eve" and bev["reset_device"] is True and bev["until"] == ev["until"]
    assert record_fields(admin, web.realm, eve.id) == {}, "ended early by the sync (new device)"
