"""Admin-made backup codes, proven by real logins through Keycloak's own recovery-code form."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from tests.conftest import Admin, Browser, MakeUser, Twostep, otp_credential
from tests.support.brute_force import wait_recorded
from tests.support.twofactor import credential_types, requested_number, setup_realm, to_recovery_form


def generate(twostep: Twostep, user: str, *args: str) -> list[str]:
    r = twostep("codes", "generate", user, "--json", *args)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [c["number"] for c in data["codes"]] == list(range(1, len(data["codes"]) + 1))
    return [c["code"] for c in data["codes"]]


def codes_status(twostep: Twostep, user: str) -> dict[str, Any]:
    r = twostep("codes", "status", user, "--json")
    assert r.code == 0, r.err
    status: dict[str, Any] = json.loads(r.out)
    return status


def test_admin_codes_login_once_each_and_regeneration(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                      admin: Admin,
                                                      realm: str) -> None:
    setup_realm(twostep)
    alice = make_user("alice", otp=True)
    codes = generate(twostep, "alice", "--count", "5")
    assert len(codes) == 5 and len(set(codes)) == 5
    for c in codes:
        raw = c.replace("-", "")
        assert len(raw) == 13 and raw.isalnum() and raw == raw.upper(), c  # 13 of 34 symbols: 66 bits
    # OTP stays first in credential order, so the OTP page still comes first.
    types = credential_types(admin, realm, alice.id)
    assert types.index("otp") < types.index("recovery-authn-codes"), types

    st = codes_status(twostep, "alice")
    assert st["present"] and st["total"] == 5 and st["remaining"] == 5
    assert st["made_by"] == "admin" and st["admin"] == "admin@master via cli" and st["next_number"] == 1

    b = browser()
    assert b.login(alice.username, alice.password).kind == "otp", "OTP comes first for a user with OTP"
    page = to_recovery_form(b)
    assert requested_number(page) == 1, "Keycloak asks for code #1 first"
    page = b.submit({"recoveryCodeInput": codes[0]})
    assert b.logged_in(), page.summary()
    assert codes_status(twostep, "alice")["remaining"] == 4

    # The same code a second time fails; the form now asks for #2.
    b2 = browser()
    b2.login(alice.username, alice.password)
    page = to_recovery_form(b2)
    assert requested_number(page) == 2
    page = b2.submit({"recoveryCodeInput": codes[0]})
    assert not b2.logged_in() and page.kind == "recovery-code", "a used code must never work again"
    # Keycloak refuses every attempt until its brute-force job has recorded this failure.
    wait_recorded(admin, realm, alice.id, 1)
    # Without dashes works too (Keycloak strips them); the count drops again.
    page = b2.submit({"recoveryCodeInput": codes[1].replace("-", "")})
    assert b2.logged_in(), page.summary()
    wait_recorded(admin, realm, alice.id, 0)  # the success cleared the failure count
    st = codes_status(twostep, "alice")
    assert st["remaining"] == 3 and st["low"] is True
    text = twostep("codes", "status", "alice")
    assert "3 of 5" in text.out and "warning" in text.out and "#3" in text.out

    # Regeneration: every old code fails (even the next one in order), the new ones work.
    new = generate(twostep, "alice", "--count", "6")
    assert not set(new) & set(codes)
    types = credential_types(admin, realm, alice.id)
    assert types.count("recovery-authn-codes") == 1 and types.index("otp") < types.index("recovery-authn-codes")
    b3 = browser()
    b3.login(alice.username, alice.password)
    page = to_recovery_form(b3)
    assert requested_number(page) == 1
    for n, old in enumerate((codes[2], codes[4]), start=1):
        # Brute-force protection locks a user whose failures Keycloak records less than 1 s apart
        # (quickLoginCheckMilliSeconds, by its own clock when its job runs): each failure is
        # recorded before the next attempt, and the next one comes more than a second later.
        time.sleep(1.2)
        page = b3.submit({"recoveryCodeInput": old})
        assert not b3.logged_in(), "an old code must fail after regeneration"
        wait_recorded(admin, realm, alice.id, n)
    page = b3.submit({"recoveryCodeInput": new[0]})
    assert b3.logged_in(), page.summary()
    assert codes_status(twostep, "alice")["remaining"] == 5


def test_codes_written_before_otp_do_not_come_first(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                    admin: Admin,
                                                    realm: str) -> None:
    """Upstream 44115/46915: a codes credential older than the OTP one puts the codes page first.
    After `codes generate` the OTP page comes first again."""
    setup_realm(twostep)
    bob = make_user("bob")
    generate(twostep, "bob", "--count", "5")  # in scope (enforce all), no device yet
    import pyotp

    secret = pyotp.random_base32()
    rep = admin.get(f"/{realm}/users/{bob.id}")
    rep["credentials"] = [otp_credential(secret, "late phone")]
    rep["requiredActions"] = []
    admin.put(f"/{realm}/users/{bob.id}", rep)
    types = credential_types(admin, realm, bob.id)
    assert types.index("recovery-authn-codes") < types.index("otp"), types  # the problem arranged

    generate(twostep, "bob", "--count", "5")
    types = credential_types(admin, realm, bob.id)
    assert types.index("otp") < types.index("recovery-authn-codes"), types
    b = browser()
    page = b.login(bob.username, bob.password)
    assert page.kind == "otp", page.summary()
    page = b.submit({"otp": pyotp.TOTP(secret).now()})
    assert b.logged_in(), page.summary()


def test_text_output_and_out_file(twostep: Twostep, make_user: MakeUser, tmp_path: Path, admin: Admin,
                                  realm: str) -> None:
    setup_realm(twostep)
    carol = make_user("carol", otp=True)
    r = twostep("codes", "generate", "carol", "--count", "5", "--no-notify")
    assert r.code == 0, r.err
    assert "IN ORDER" in r.out and "#1" in r.out and "#5" in r.out and "shown only this once" in r.out
    lines = [ln for ln in r.out.splitlines() if ln.strip().startswith("#")]
    assert len(lines) == 5

    out = tmp_path / "carol-codes.txt"
    r = twostep("codes", "generate", "carol", "--count", "8", "--out", str(out))
    assert r.code == 0, r.err
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    sheet = out.read_text()
    file_codes = [ln.split()[-1] for ln in sheet.splitlines() if ln.strip().startswith("#")]
    assert len(file_codes) == 8
    for c in file_codes:
        assert c not in r.out and c not in r.err
    assert "written to" in r.out and "numbered order" in r.out

    dry = twostep("codes", "generate", "carol", "--dry-run")
    assert dry.code == 0 and "would make 12" in dry.out and "replacing" in dry.out
    st = json.loads(twostep("codes", "status", "carol", "--json").out)
    assert st["total"] == 8, "a dry run changes nothing"

    rv = twostep("codes", "revoke", "carol", "--reason", "test")
    assert rv.code == 0, rv.err
    assert not {"recovery-authn-codes", "twostep-codes-provenance"} & set(credential_types(admin, realm, carol.id))
    rep = admin.get(f"/{realm}/users/{carol.id}")
    assert not {"twostep_codes_by", "twostep_codes_at"} & set(rep.get("attributes") or {})
    assert json.loads(twostep("codes", "status", "carol", "--json").out)["present"] is False
    again = twostep("codes", "revoke", "carol")
    assert again.code != 0 and "no backup codes" in again.err


def test_bad_input_changes_nothing(twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str,
                                   tmp_path: Path) -> None:
    dora = make_user("dora", otp=True)
    before = credential_types(admin, realm, dora.id)

    r = twostep("codes", "generate", "dora")
    assert r.code == 2 and "not under the two-step policy" in r.err and "Traceback" not in r.err

    setup_realm(twostep, "--enforce", "none")
    outside = make_user("outside")
    r = twostep("codes", "generate", "outside")
    assert r.code == 2 and "does not require one" in r.err, r.err
    assert credential_types(admin, realm, outside.id) == ["password"]

    r = twostep("codes", "generate", "nobody-here")
    assert r.code == 4 and "no user 'nobody-here'" in r.err
    r = twostep("otp", "reset", "nobody-here")
    assert r.code == 4 and "no user" in r.err
    for bad in ("4", "51", "0", "-3"):
        r = twostep("codes", "generate", "dora", "--count", bad)
        assert r.code == 2 and "--count must be between 5 and 50" in r.err, r.err
    r = twostep("codes", "generate", "dora", "--count", "many")
    assert r.code == 2 and "Traceback" not in r.err
    r = twostep("codes", "generate", "dora", "--out", "/nonexistent-dir/codes.txt")
    assert r.code == 2 and "cannot write" in r.err
    existing = tmp_path / "exists.txt"
    existing.write_text("keep me")
    r = twostep("codes", "generate", "dora", "--out", str(existing))
    assert r.code == 2 and "already exists" in r.err and existing.read_text() == "keep me"

    assert credential_types(admin, realm, dora.id) == before, "nothing changed in Keycloak"
    rep = admin.get(f"/{realm}/users/{dora.id}")
    assert not {"twostep_codes_by", "twostep_codes_at"} & set(rep.get("attributes") or {})
