"""`twostep setup` proven by real logins through Keycloak's own pages."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pyotp

from tests.conftest import Admin, Browser, MakeUser, Twostep
from tests.support.brute_force import wait_recorded
from tests.support.twofactor import finish_sign_in


def setup_realm(twostep: Twostep, *args: str) -> None:
    r = twostep("setup", "--no-service-client", *args)
    assert r.code == 0, r.err
    assert "applied" in r.out


def test_otp_user_needs_valid_fresh_code(twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin,
                                         realm: str) -> None:
    setup_realm(twostep)
    alice = make_user("alice", otp=True)
    b = browser()
    page = b.login(alice.username, alice.password)
    assert page.kind == "otp", page.summary()

    page = b.submit({"otp": "000000" if alice.code() != "000000" else "111111"})
    assert page.kind == "otp" and not b.logged_in(), "a wrong code must be rejected"
    wait_recorded(admin, realm, alice.id, 1)  # until then Keycloak refuses the right code too

    code = alice.code()
    b.submit({"otp": code})
    finish_sign_in(b, admin, realm)

    # The same code again, in a new browser within its validity: code reuse is off.
    b2 = browser()
    assert b2.login(alice.username, alice.password).kind == "otp"
    b2.submit({"otp": code})
    assert not b2.logged_in(), "a reused code must be rejected"


def test_password_alone_is_not_enough_for_otp_user(twostep: Twostep, make_user: MakeUser, browser: Browser) -> None:
    setup_realm(twostep)
    bob = make_user("bob", otp=True)
    b = browser()
    b.login(bob.username, bob.password)
    assert not b.logged_in()
    assert b.page is not None and b.page.kind == "otp"


def test_enforced_user_without_otp_must_enroll(twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin,
                                               realm: str) -> None:
    carol = make_user("carol")
    setup_realm(twostep, "--enforce", "all", "--grace-days", "0")
    b = browser()
    page = b.login(carol.username, carol.password)
    assert page.kind == "configure-totp", page.summary()
    form = page.form_with("totpSecret")
    # Keycloak's HMAC key is the UTF-8 bytes of the hidden secret; apps get their Base32.
    secret = base64.b32encode(form.fields["totpSecret"].encode()).decode()
    b.submit({"totp": pyotp.TOTP(secret).now(), "userLabel": "new phone"}, form_field="totpSecret")
    finish_sign_in(b, admin, realm, enrolled=True)  # enrollment ends with backup codes (provider mode)


def test_grace_period_lets_new_user_in_until_it_ends(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                     admin: Admin, realm: str) -> None:
    dave = make_user("dave")
    setup_realm(twostep, "--enforce", "all", "--grace-days", "3")
    b = browser()
    b.login(dave.username, dave.password)
    assert b.logged_in(), "inside the grace period the password is enough"
    assert "CONFIGURE_TOTP" not in admin.get(f"/{realm}/users/{dave.id}")["requiredActions"]


def test_user_outside_scope_logs_in_with_password(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                  admin: Admin, realm: str) -> None:
    admin.post(f"/{realm}/groups", {"name": "staff"})
    inside = make_user("inside", groups=["/staff"])
    outside = make_user("outside")
    setup_realm(twostep, "--enforce", "group:staff")
    b = browser()
    b.login(outside.username, outside.password)
    assert b.logged_in(), b.page.summary() if b.page else ""
    b2 = browser()
    assert b2.login(inside.username, inside.password).kind == "configure-totp"


def test_setup_is_idempotent_and_dry_run_changes_nothing(twostep: Twostep, admin: Admin, realm: str) -> None:
    before = admin.get(f"/{realm}")
    flows_before = {f["alias"] for f in admin.get(f"/{realm}/authentication/flows")}
    dry = twostep("setup", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    planned = json.loads(dry.out)["changes"]
    assert any("create flow 'twostep browser'" in c for c in planned)
    after = admin.get(f"/{realm}")
    assert after["browserFlow"] == before["browserFlow"] == "browser"
    assert after.get("bruteForceProtected") == before.get("bruteForceProtected")
    assert {f["alias"] for f in admin.get(f"/{realm}/authentication/flows")} == flows_before
    assert admin.get(f"/{realm}/clients", clientId="twostep-cli") == []

    first = twostep("setup", "--secret-file", "/dev/null/nope")
    assert first.code != 0 and "cannot write" in first.err and "Traceback" not in first.err
    assert admin.get(f"/{realm}")["browserFlow"] == "browser", "nothing is applied when the output file is bad"

    first = twostep("setup")
    assert first.code == 0, first.err
    assert "client secret of 'twostep-cli'" in first.out
    second = twostep("setup", "--json")
    assert second.code == 0, second.err
    assert json.loads(second.out)["changes"] == []
    third = twostep("setup")
    assert "no changes" in third.out and "secret" not in third.out


def test_teardown_restores_previous_binding(twostep: Twostep, admin: Admin, realm: str) -> None:
    admin.post(f"/{realm}/authentication/flows/browser/copy", {"newName": "corp browser"})
    admin.put(f"/{realm}", {"browserFlow": "corp browser"})
    setup_realm(twostep)
    assert admin.get(f"/{realm}")["browserFlow"] == "twostep browser"
    r = twostep("teardown")
    assert r.code == 0, r.err
    rep = admin.get(f"/{realm}")
    assert rep["browserFlow"] == "corp browser"
    assert rep["resetCredentialsFlow"] == "reset credentials"
    aliases = {f["alias"] for f in admin.get(f"/{realm}/authentication/flows")}
    assert "twostep browser" not in aliases and "twostep reset credentials" not in aliases
    assert "twostep.policy" not in (rep.get("attributes") or {})


def test_service_account_can_run_status_and_setup(twostep: Twostep, realm: str, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    r = twostep("setup", "--secret-file", str(secret_file))
    assert r.code == 0, r.err
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    secret = secret_file.read_text().strip()
    assert secret not in r.out + r.err
    env = {"TWOSTEP_CLIENT_ID": "twostep-cli", "TWOSTEP_CLIENT_SECRET": secret,
           "TWOSTEP_ADMIN_USERNAME": "", "TWOSTEP_ADMIN_PASSWORD": ""}
    st = twostep("status", "--json", env=env)
    assert st.code == 0, st.err + st.out
    assert json.loads(st.out)["ok"] is True
    again = twostep("setup", "--json", env=env)
    assert again.code == 0, again.err
    assert json.loads(again.out)["changes"] == []
    assert secret not in again.out + again.err + st.out + st.err, "the secret is never printed again"
