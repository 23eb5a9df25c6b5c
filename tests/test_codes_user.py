"""Codes the user makes through Keycloak's own required action, read by our layer."""

from __future__ import annotations

import json

from tests.conftest import Admin, Browser, MakeUser, Twostep
from tests.support.twofactor import codes_on_config_page, requested_number, setup_realm, to_recovery_form


def test_user_made_codes_are_read_and_work(twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin,
                                           realm: str) -> None:
    setup_realm(twostep)
    erin = make_user("erin", otp=True, required_actions=["CONFIGURE_RECOVERY_AUTHN_CODES"])
    b = browser()
    page = b.login(erin.username, erin.password)
    assert page.kind == "otp", page.summary()
    page = b.submit({"otp": erin.code()})
    assert page.kind == "configure-recovery-codes", page.summary()
    codes = codes_on_config_page(page)
    assert len(codes) == 12, codes
    form = next(f for f in page.forms if "generatedRecoveryAuthnCodes" in f.fields)
    data = {"kcRecoveryCodesConfirmation": "on"}
    page = b.submit(data, form_field="generatedRecoveryAuthnCodes")
    assert b.logged_in(), page.summary() + " " + json.dumps(sorted(form.fields))

    r = twostep("codes", "status", "erin", "--json")
    assert r.code == 0, r.err
    st = json.loads(r.out)
    assert st["present"] and st["total"] == 12 and st["remaining"] == 12
    assert st["made_by"] == "user" and st["admin"] is None and st["made_at"]
    text = twostep("codes", "status", "erin")
    assert "12 of 12" in text.out and "the user" in text.out and "warning" not in text.out

    b2 = browser()
    assert b2.login(erin.username, erin.password).kind == "otp"
    page = to_recovery_form(b2)
    assert requested_number(page) == 1
    page = b2.submit({"recoveryCodeInput": codes[0]})
    assert b2.logged_in(), page.summary()
    st = json.loads(twostep("codes", "status", "erin", "--json").out)
    assert st["remaining"] == 11 and st["next_number"] == 2 and st["made_by"] == "user"
