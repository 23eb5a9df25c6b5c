"""Lost phone: `twostep otp reset` and `otp list`, proven by real logins."""

from __future__ import annotations

import base64
import json
import time

import pyotp

from tests.conftest import Admin, Browser, MakeUser, Twostep
from tests.support.login import LoginDriver
from tests.support.twofactor import credential_types, finish_sign_in, setup_realm, to_recovery_form


def enroll(b: LoginDriver, label: str) -> str:
    """On Keycloak's configure-TOTP page: enroll a device, return its Base32 secret."""
    assert b.page is not None and b.page.kind == "configure-totp", b.page.summary() if b.page else ""
    form = b.page.form_with("totpSecret")
    secret = base64.b32encode(form.fields["totpSecret"].encode()).decode()
    b.submit({"totp": pyotp.TOTP(secret).now(), "userLabel": label}, form_field="totpSecret")
    return secret


def test_otp_list_and_reset(twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin, realm: str) -> None:
    # Backup codes "offered": fay saves none, so after the reset she has no second factor at all
    # (with codes, the provider would rightly ask for one before the new device).
    setup_realm(twostep, "--backup-codes", "offered")
    fay = make_user("fay", otp=True)
    b = browser()
    b.login(fay.username, fay.password)
    b.submit({"otp": fay.code()})
    assert b.logged_in()
    assert admin.get(f"/{realm}/users/{fay.id}/sessions"), "a session exists before the reset"

    listed = twostep("otp", "list", "fay", "--json")
    assert listed.code == 0, listed.err
    devices = json.loads(listed.out)["devices"]
    assert [d["label"] for d in devices] == ["phone"] and devices[0]["created"]
    assert fay.totp_secret and fay.totp_secret not in listed.out

    dry = twostep("otp", "reset", "fay", "--dry-run")
    assert dry.code == 0 and "would remove 1 device" in dry.out
    assert "otp" in credential_types(admin, realm, fay.id) and admin.get(f"/{realm}/users/{fay.id}/sessions")

    r = twostep("otp", "reset", "fay", "--reason", "lost phone")
    assert r.code == 0, r.err
    assert "removed 1 device" in r.out
    assert "otp" not in credential_types(admin, realm, fay.id)
    assert "CONFIGURE_TOTP" in admin.get(f"/{realm}/users/{fay.id}")["requiredActions"]
    assert admin.get(f"/{realm}/users/{fay.id}/sessions") == [], "all sessions ended"
    assert "no devices" in twostep("otp", "list", "fay").out

    # The old browser's session is gone: it must sign in again.
    assert b.open().kind == "login"
    # Next login asks for a new device.
    b2 = browser()
    page = b2.login(fay.username, fay.password)
    assert page.kind == "configure-totp", page.summary()
    new_secret = enroll(b2, "new phone")
    finish_sign_in(b2, admin, realm, enrolled=True)  # with the provider, enrollment ends with backup codes

    # The old device's codes fail, the new device's work.
    b3 = browser()
    assert b3.login(fay.username, fay.password).kind == "otp"
    old_code = fay.code()
    if old_code == pyotp.TOTP(new_secret).now():  # pragma: no cover - 1 in a million
        old_code = fay.code(time.time() - 300)
    b3.submit({"otp": old_code})
    assert not b3.logged_in(), "the old device's code must fail"
    time.sleep(1.2)  # brute-force protection: failures less than 1 s apart lock the user
    b3.submit({"otp": pyotp.TOTP(new_secret).at(time.time() + 30)})
    assert b3.logged_in(), b3.page.summary() if b3.page else ""


def test_lost_phone_with_admin_codes_is_still_two_steps(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                        admin: Admin,
                                                        realm: str) -> None:
    setup_realm(twostep)
    gus = make_user("gus", otp=True)
    assert twostep("otp", "reset", "gus", "--no-notify").code == 0
    r = twostep("codes", "generate", "gus", "--count", "5", "--json", "--no-notify")
    assert r.code == 0, r.err
    codes = [c["code"] for c in json.loads(r.out)["codes"]]
    b = browser()
    b.login(gus.username, gus.password)
    assert b.page is not None
    page = to_recovery_form(b)  # no OTP any more: the recovery form comes straight away
    page = b.submit({"recoveryCodeInput": codes[0]})
    assert page.kind == "configure-totp", "after the code, a new device is asked for: " + page.summary()
    enroll(b, "replacement")
    assert b.logged_in()
    types = credential_types(admin, realm, gus.id)
    assert types.index("otp") > 0
