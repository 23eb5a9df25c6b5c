"""The access pass (issue 24 items 1 and 2; docs/bypass.md, "Kinds"; docs/provider.md, "The access
pass"): a bypass that stays two-step, granted by the least-privileged help desk (a service account and a
person holding only manage-users, view-users, query-users), used in real sign-ins through the login pages
of a real Keycloak with the provider. The pass is shown once, in the grant's own output, and nowhere else."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import requests

from tests.conftest import INSTANCE, Admin, Keycloak, User
from tests.support.access_pass import GROUPED, new_pass, write_pass_record
from tests.support.brute_force import wait_recorded
from tests.support.bypass_helpers import record_fields, utcnow
from tests.support.help_helpers import file_request, stored_request
from tests.support.login import LoginDriver, Page
from tests.support.personas import helpdesk_service_account
from tests.support.twofactor import credential_types, setup_realm

FORBIDDEN = ("twostep: error: the realm policy forbids password-only bypasses: grant an access pass instead "
             "(--pass once|multi)")


def help_desk(admin: Admin, realm: str, audit: Path) -> dict[str, str]:
    client_id, secret = helpdesk_service_account(admin, realm)
    return {"TWOSTEP_CLIENT_ID": client_id, "TWOSTEP_CLIENT_SECRET": secret, "TWOSTEP_ACTOR": "hilde",
            "TWOSTEP_AUDIT_FILE": str(audit)}


def shown_pass(out: str) -> str:
    [line] = [x for x in out.splitlines() if "shown only now" in x]
    access_pass = line.rsplit(" ", 1)[-1]
    assert GROUPED.match(access_pass), line
    return access_pass


def to_pass_page(b: LoginDriver, user: User) -> Page:
    """Password, then (a user with a device is offered the code first) "Try another way": the pass."""
    page = b.login(user.username, user.password)
    if page.kind == "otp":
        b.try_another_way()
        page = b.choose("Access pass")
    assert page.kind == "access-pass", page.summary()
    return page


def pass_error(page: Page) -> str:
    m = re.search(r'id="input-error-pass"[^>]*>([^<]*)<', page.text)
    return m.group(1).strip() if m else ""


def refused_in_a_new_sign_in(b: LoginDriver, user: User) -> None:
    """The user's own device is asked, and the pass is not taken: "Try another way" may still list it
    (the record is there until the expiry task removes it), but choosing it leads back to the code."""
    page = b.login(user.username, user.password)
    assert page.kind == "otp", page.summary()
    b.try_another_way()
    assert b.page is not None
    if "Access pass" in b.page.text:
        page = b.choose("Access pass")
        assert page.kind == "otp", page.summary()


def enroll(b: LoginDriver) -> None:
    assert b.page is not None and b.page.kind == "configure-totp", b.page.summary() if b.page else ""
    secret = base64.b32encode(b.page.form_with("totpSecret").fields["totpSecret"].encode()).decode()
    b.submit({"totp": pyotp.TOTP(secret).now(), "userLabel": "new phone"}, form_field="totpSecret")


def keycloak_log() -> str:
    if os.environ.get("TWOSTEP_TEST_KEYCLOAK_URL"):
        return ""  # an outside Keycloak: its log is not ours to read
    cache = Path(os.environ.get("TWOSTEP_CACHE", Path.home() / ".cache" / "keycloak-twostep"))
    log = cache / "instances" / INSTANCE / "keycloak.log"
    assert log.is_file(), log
    return log.read_text(errors="replace")


def test_a_once_pass_is_asked_after_the_password_works_once_and_is_shown_once(
        twostep: Any, keycloak: Keycloak, admin: Admin, realm: str, make_user: Any, browser: Any,
        tmp_path: Path) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    env = help_desk(admin, realm, tmp_path / "audit.jsonl")
    alice: User = make_user("alice", otp=True)
    r = twostep("bypass", "grant", "alice", "--for", "1h", "--reason", "lost phone, ticket 4711", "--pass", "once",
                "--reset-device", env=env)
    assert r.code == 0, r.err
    access_pass = shown_pass(r.out)
    assert r.out.count(access_pass) == 1, "printed once"
    record = record_fields(admin, realm, alice.id)
    assert (record["kind"], record["pass_use"], record["pass_used"]) == ("pass", "once", "0")
    assert "otp" not in credential_types(admin, realm, alice.id)

    # The password alone does not sign in: the pass is asked, on a page that says who granted it, until when.
    early: LoginDriver = browser()
    page = to_pass_page(early, alice)
    granted = re.search(r'id="twostep-pass-granted"[^>]*>([^<]*)<', page.text)
    said = granted.group(1) if granted else ""
    assert "hilde" in said and "UTC" in said and record["until"][:4] in said, page.summary()
    assert not early.logged_in()

    # A wrong pass is a failed sign-in for Keycloak's brute-force protection, like a wrong code.
    page = early.submit({"pass": new_pass()})
    assert page.kind == "access-pass" and "not right" in pass_error(page), page.summary()
    wait_recorded(admin, realm, alice.id, 1)

    # Password + pass (typed loosely): in, and the new device is set up in that very sign-in.
    b: LoginDriver = browser()
    to_pass_page(b, alice)
    b.submit({"pass": access_pass.lower().replace("-", " ")})
    enroll(b)
    assert b.logged_in(), b.page.summary() if b.page else ""
    assert record_fields(admin, realm, alice.id)["pass_used"] == "1"

    # Used up: the tab opened before is refused, and a new sign-in asks the new device's code, no pass.
    page = early.submit({"pass": access_pass})
    assert page.kind == "access-pass" and "cannot be used" in pass_error(page) and not early.logged_in()
    refused_in_a_new_sign_in(browser(), alice)

    # Shown once: not in the audit, the admin events, Keycloak's log, or `bypass show --json`.
    canonical = access_pass.replace("-", "")
    audit = (tmp_path / "audit.jsonl").read_text()
    assert '"event": "bypass.grant"' in audit and '"kind": "pass once"' in audit
    events = json.dumps(admin.get(f"/{realm}/admin-events", max=500))
    assert "bypass.grant" in events and "pass once" in events
    shown = twostep("bypass", "show", "alice", "--json", env=env)
    assert shown.code == 0 and json.loads(shown.out)["kind"] == "pass once"
    for where, text in (("audit", audit), ("admin events", events), ("keycloak log", keycloak_log()),
                        ("bypass show --json", shown.out), ("grant stderr", r.err),
                        ("credentials", json.dumps(admin.get(f"/{realm}/users/{alice.id}/credentials")))):
        assert access_pass not in text and canonical not in text, where


def test_a_multi_pass_works_until_the_end_then_is_refused(
        twostep: Any, admin: Admin, realm: str, make_user: Any, browser: Any) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    bob: User = make_user("bob", otp=True)
    # Written as the provider's grant writes it (docs/formats.md), ending soon: a grant lasts 5 min at least.
    until = utcnow().replace(microsecond=0) + timedelta(seconds=45)
    access_pass = write_pass_record(admin, realm, bob.id, until, "multi")
    for _ in range(2):  # his own device is offered first; the pass under "Try another way"
        b: LoginDriver = browser()
        to_pass_page(b, bob)
        b.submit({"pass": access_pass})
        assert b.logged_in(), b.page.summary() if b.page else ""
    assert record_fields(admin, realm, bob.id)["pass_used"] == "2"
    late: LoginDriver = browser()
    to_pass_page(late, bob)  # the page opened within the window ...
    deadline = time.monotonic() + 120
    while utcnow() < until + timedelta(seconds=1):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    page = late.submit({"pass": access_pass})  # ... and sent after it
    assert page.kind == "access-pass" and not late.logged_in(), page.summary()
    assert "cannot be used" in pass_error(page), page.summary()
    refused_in_a_new_sign_in(browser(), bob)


def test_a_password_grant_never_takes_the_pass(twostep: Any, keycloak: Keycloak, admin: Admin, realm: str,
                                               make_user: Any) -> None:
    """docs/provider.md: a password grant cannot ask for a pass, so a pass bypass is no bypass there: the
    OTP code is still asked (`totp`), and a pass in its place is refused."""
    setup_realm(twostep, "--backup-codes", "offered")
    admin.post(f"/{realm}/clients", {"clientId": "cli-app", "publicClient": True, "directAccessGrantsEnabled": True})
    carl: User = make_user("carl", otp=True)
    access_pass = write_pass_record(admin, realm, carl.id, utcnow().replace(microsecond=0) + timedelta(minutes=4))
    url = f"{keycloak.url}/realms/{realm}/protocol/openid-connect/token"

    def grant(**extra: str) -> requests.Response:
        return requests.post(url, timeout=30, data={"grant_type": "password", "client_id": "cli-app",
                                                    "username": carl.username, "password": carl.password, **extra})

    ok = grant(totp=carl.code())  # first: the refusals below count toward a quick brute-force lockout
    assert ok.status_code == 200, ok.text
    for refused in (grant(), grant(totp=access_pass)):  # the password alone; the pass is no code
        assert refused.status_code in (400, 401) and refused.json()["error"] == "invalid_grant", refused.text


def test_a_realm_that_forbids_password_only_refuses_it_in_the_cli_the_extension_and_the_help_answer(
        twostep: Any, keycloak: Keycloak, admin: Admin, realm: str, make_user: Any, tmp_path: Path) -> None:
    setup_realm(twostep, "--backup-codes", "offered", "--bypass-kinds", "pass")
    policy = json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])
    assert (policy["bypass_kinds"], policy["bypass_default"]) == (["pass"], "pass")
    env = help_desk(admin, realm, tmp_path / "audit.jsonl")
    dora: User = make_user("dora", otp=True)

    r = twostep("bypass", "grant", "dora", "--for", "1h", "--reason", "trip", "--password", env=env)
    assert r.code != 0 and r.err.strip().splitlines() == [FORBIDDEN], r.err
    assert "twostep-bypass" not in credential_types(admin, realm, dora.id), "nothing written"

    # The extension enforces it for any caller (here the help desk's account, skipping the CLI).
    token = requests.post(f"{keycloak.url}/realms/{realm}/protocol/openid-connect/token", timeout=30, data={
        "grant_type": "client_credentials", "client_id": env["TWOSTEP_CLIENT_ID"],
        "client_secret": env["TWOSTEP_CLIENT_SECRET"]}).json()["access_token"]
    resp = requests.post(f"{keycloak.url}/admin/realms/{realm}/twostep/users/{dora.id}/bypass/grant", timeout=30,
                         headers={"Authorization": f"Bearer {token}"},
                         json={"seconds": 3600, "reason": "trip", "by": "hilde", "kind": "password"})
    assert resp.status_code == 400 and resp.json()["errorMessage"] == FORBIDDEN.removeprefix("twostep: error: ")
    assert "twostep-bypass" not in credential_types(admin, realm, dora.id)

    # The help answer: password alone refused, nothing half-applied; the realm's default (the pass) works.
    file_request(admin, realm, dora.id, "lost my phone")
    r = twostep("help", "grant", "dora", "--password", env=env)
    assert r.code != 0 and r.err.strip().splitlines() == [FORBIDDEN], r.err
    assert stored_request(admin, realm, dora.id) is not None and "otp" in credential_types(admin, realm, dora.id)
    r = twostep("help", "grant", "dora", "--json", env=env)
    assert r.code == 0, r.err
    answer = json.loads(r.out)
    assert answer["kind"] == "pass once" and GROUPED.match(answer["access_pass"])
    assert stored_request(admin, realm, dora.id) is None
    assert re.search(answer["access_pass"], (tmp_path / "audit.jsonl").read_text()) is None


def _policy(admin: Admin, realm: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])
    return loaded


def test_a_grant_that_names_no_kind_is_a_pass_unless_setup_makes_the_password_the_default(
        twostep: Any, admin: Admin, realm: str, make_user: Any, browser: Any, tmp_path: Path) -> None:
    """Issue 24 item 2: the safer kind by default. A fresh realm's policy has no kind keys (both kinds, the
    pass by default); `bypass grant` and `help grant` without --pass / --password give a pass, shown once,
    and the password alone is then not enough. `setup --bypass-default password` brings the old default back."""
    setup_realm(twostep, "--backup-codes", "offered")
    assert not {"bypass_kinds", "bypass_default"} & set(_policy(admin, realm)), "the defaults are written as nothing"
    env = help_desk(admin, realm, tmp_path / "audit.jsonl")
    erik: User = make_user("erik", otp=True)
    r = twostep("bypass", "grant", "erik", "--for", "1h", "--reason", "phone at home", env=env)
    assert r.code == 0, r.err
    access_pass = shown_pass(r.out)
    assert r.out.count(access_pass) == 1, "printed once"
    record = record_fields(admin, realm, erik.id)
    assert (record["kind"], record["pass_use"], record["pass_used"]) == ("pass", "once", "0"), record
    alone: LoginDriver = browser()
    assert alone.login(erik.username, erik.password).kind == "otp", "the password alone: the code is asked"
    assert not alone.logged_in()
    b: LoginDriver = browser()
    to_pass_page(b, erik)
    b.submit({"pass": access_pass})
    assert b.logged_in(), b.page.summary() if b.page else ""

    # The help answer follows the same default.
    fred: User = make_user("fred", otp=True)
    file_request(admin, realm, fred.id, "lost my phone")
    r = twostep("help", "grant", "fred", "--json", env=env)
    assert r.code == 0, r.err
    answer = json.loads(r.out)
    assert answer["kind"] == "pass once" and GROUPED.match(answer["access_pass"]), answer

    # A realm that wants the password alone by default says so; a later setup keeps it.
    setup_realm(twostep, "--backup-codes", "offered", "--bypass-default", "password")
    again = twostep("setup", "--no-service-client", "--backup-codes", "offered")
    assert again.code == 0 and "applied" not in again.out, again.out
    assert _policy(admin, realm)["bypass_default"] == "password"
    gus: User = make_user("gus", otp=True)
    r = twostep("bypass", "grant", "gus", "--for", "1h", "--reason", "trip", env=env)
    assert r.code == 0 and "shown only now" not in r.out, r.out
    assert "kind" not in record_fields(admin, realm, gus.id), "a password bypass, written as before"
    assert browser().login(gus.username, gus.password).kind == "done", "the password alone signs in"
    setup_realm(twostep, "--backup-codes", "offered", "--bypass-default", "pass")
    assert not {"bypass_kinds", "bypass_default"} & set(_policy(admin, realm)), "back to the default: nothing written"


def test_fallback_mode_grants_the_password_alone_by_default(
        twostep: Any, admin: Admin, realm: str, make_user: Any, browser: Any) -> None:
    """Without the provider deciding (records in attributes) there is no pass to ask for: a grant that
    names no kind is the password alone, as before."""
    setup_realm(twostep, "--decide-with", "sync", "--backup-codes", "offered")
    ivo: User = make_user("ivo", otp=True)
    r = twostep("bypass", "grant", "ivo", "--for", "1h", "--reason", "trip")
    assert r.code == 0 and "shown only now" not in r.out, (r.out, r.err)
    attrs = admin.get(f"/{realm}/users/{ivo.id}").get("attributes") or {}
    assert attrs.get("twostep_bypass") == ["true"], attrs
    b: LoginDriver = browser()
    b.login(ivo.username, ivo.password)
    assert b.logged_in(), b.page.summary() if b.page else ""
