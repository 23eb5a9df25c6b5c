"""'Forgot password' must not be a way around the second factor (upstream issue 12759)."""

from __future__ import annotations

import base64
import html
import re

import pyotp

from tests.conftest import Admin, Browser, MakeUser, Twostep
from tests.support.brute_force import wait_recorded
from tests.support.smtp_sink import SmtpSink
from tests.support.twofactor import finish_sign_in


def test_forgot_password_still_asks_for_the_second_factor(twostep: Twostep, admin: Admin, realm: str,
                                                          make_user: MakeUser,
                                                          browser: Browser) -> None:
    assert twostep("setup", "--no-service-client").code == 0
    user = make_user("forgetful", otp=True)
    with SmtpSink() as smtp:
        admin.put(f"/{realm}", {"resetPasswordAllowed": True, "smtpServer": smtp.realm_settings()})
        b = browser()
        page = b.open()
        link = re.search(r'href="([^"]*login-actions/reset-credentials[^"]*)"', page.text)
        assert link, "the login page offers 'Forgot password?'"
        page = b.open_url(html.unescape(link.group(1)))
        page = b.submit({"username": user.username})
        assert page.status == 200
        mail = smtp.wait_for("forgetful@example.test")[0]
        action = re.search(r'(http://127\.0\.0\.1:\d+/realms/[^\s"<>]*action-token[^\s"<>]*)', SmtpSink.body(mail))
        assert action, SmtpSink.body(mail)[:500]
        page = b.open_url(html.unescape(action.group(1)))
        if page.kind == "other" and "proceed" in page.text.lower():  # "click here to proceed" info page
            nxt = re.search(r'href="([^"]*)"[^>]*>[^<]*(?:proceed|Click here)', page.text, re.I)
            assert nxt
            page = b.open_url(html.unescape(nxt.group(1)))
        assert page.kind == "otp", f"the e-mail link alone must not reach the new-password page: {page.summary()}"
        page = b.submit({"otp": "123456" if user.code() != "123456" else "654321"})
        assert page.kind == "otp", "a wrong code is rejected in the reset flow too"
        wait_recorded(admin, realm, user.id, 1)  # until then Keycloak refuses the right code too
        page = b.submit({"otp": user.code()})
        # The realm's own reset flow is kept as it was: Keycloak's stock "Reset - Conditional OTP"
        # (reset-otp, "Remove none") asks a user with OTP to add a device after the reset.
        assert page.kind == "configure-totp", page.summary()
        form = page.form_with("totpSecret")
        secret = base64.b32encode(form.fields["totpSecret"].encode()).decode()
        page = b.submit({"totp": pyotp.TOTP(secret).now(), "userLabel": "after reset"}, form_field="totpSecret")
        assert page.kind == "update-password", page.summary()
        page = b.submit({"password-new": "N3w-pass-word!", "password-confirm": "N3w-pass-word!"})
        finish_sign_in(b, admin, realm)
