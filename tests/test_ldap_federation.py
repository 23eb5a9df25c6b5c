"""Users from a real OpenLDAP directory, federated in each edit mode, with real logins.

The directory is Debian's slapd started by the harness (tests/support/ldap.py, seeded from
tests/data/ldap-seed.ldif); the realm federates it through the admin REST API as an operator would.
In READ_ONLY mode the user's directory entry must be byte-for-byte the same afterwards: the dump
holds every user attribute (`*`) and every operational one (`+`), so any write, even one that
rewrote a value with itself, would show as a new entryCSN / modifyTimestamp / modifiersName. Nothing
is left out of the comparison: without the syncprov overlay there is no contextCSN, and slapd keeps
no last-bind time unless the lastbind overlay is loaded (it is not). The server's audit log
(every add, modify, delete, rename it accepted) must stay empty too.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from twostep.policy import POLICY_ATTR

from tests.conftest import Admin, Browser, Federate, Keycloak, Twostep
from tests.support.bypass_helpers import client, grant_ending_at, utcnow
from tests.support.ldap import EDIT_MODES, PASSWORDS, Directory
from tests.support.login import LoginDriver
from tests.support.twofactor import (
    OTP_OPTION,
    choose_option,
    credential_types,
    requested_number,
    setup_realm,
    to_recovery_form,
)
from tests.test_otp_reset import enroll


def _ldap_user(admin: Admin, realm: str, username: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = admin.get(f"/{realm}/users", username=username, exact="true")
    assert len(found) == 1 and found[0].get("federationLink"), found
    return found[0]


def _decided_by(admin: Admin, realm: str) -> str:
    return str(json.loads(admin.get(f"/{realm}")["attributes"][POLICY_ATTR]).get("decided_by", "sync"))


def _enrolled(twostep: Twostep, browser: Browser, admin: Admin, realm: str,
              username: str) -> tuple[dict[str, Any], str]:
    """Sign in with the directory password and enroll on Keycloak's own pages.

    The user is imported first (an admin search imports from the directory, as a first sign-in
    does). Provider mode: the condition asks for a device (and backup codes) at this sign-in.
    Fallback mode: the sync asks for a device (CONFIGURE_TOTP); a user imported by the sync's own
    listing is younger than that run's clock, so their grace period starts with the next run."""
    user = _ldap_user(admin, realm, username)
    provider = _decided_by(admin, realm) == "provider"
    if not provider:
        r = twostep("sync")
        assert r.code == 0, r.err
        assert "CONFIGURE_TOTP" in admin.get(f"/{realm}/users/{user['id']}")["requiredActions"]
    b: LoginDriver = browser()
    page = b.login(username, PASSWORDS[username])
    assert page.kind == "configure-totp", page.summary()
    secret = enroll(b, "ldap phone")
    if provider:
        assert b.page is not None and b.page.kind == "configure-recovery-codes", b.page.summary() if b.page else ""
        b.submit({"kcRecoveryCodesConfirmation": "on"}, form_field="generatedRecoveryAuthnCodes")
    assert b.logged_in(), b.page.summary() if b.page else ""
    return user, secret


@pytest.mark.parametrize("mode", EDIT_MODES)
def test_federated_user_enrolls_and_signs_in_with_code(
    mode: str, twostep: Twostep, federate: Federate, browser: Browser, admin: Admin, realm: str, directory: Directory
) -> None:
    import pyotp

    setup_realm(twostep)
    federate(mode)
    entry_before, tree_before, writes_before = directory.entry_dump("bob"), directory.tree_dump(), directory.writes()
    user, secret = _enrolled(twostep, browser, admin, realm, "bob")
    assert credential_types(admin, realm, user["id"]).count("otp") == 1

    b = browser()
    page = b.login("bob", PASSWORDS["bob"])
    assert page.kind == "otp", "a federated user with a device is asked for the code: " + page.summary()
    # The enrollment used this window's code and reuse is off: the next window's (look-around 1).
    page = b.submit({"otp": pyotp.TOTP(secret).at(time.time() + 30)})
    assert b.logged_in(), page.summary()
    wrong = browser()
    assert wrong.login("bob", "not-the-directory-password").kind == "login", "the directory checks the password"

    listed = json.loads(twostep("otp", "list", "bob", "--json").out)
    assert [d["label"] for d in listed["devices"]] == ["ldap phone"]
    # Enrollment and sign-in write nothing to the directory, whatever the edit mode.
    assert directory.entry_dump("bob") == entry_before
    assert directory.tree_dump() == tree_before
    assert directory.writes() == writes_before


# (edit mode, setup's --decide-with): "provider" keeps the records in credentials (the harness
# starts Keycloak with the twostep provider), "sync" is fallback mode (records in user attributes).
# READ_ONLY needs provider mode: in fallback mode the grant is refused there with
# error-user-attribute-read-only, which test_federation_checks.py shows with the status check
# that warns about it.
RECORD_CASES = [("READ_ONLY", "provider"), ("WRITABLE", "provider"), ("UNSYNCED", "provider"),
                ("WRITABLE", "sync")]


@pytest.mark.parametrize(("mode", "decide"), RECORD_CASES)
def test_bypass_reset_and_admin_codes_for_a_federated_user(
    mode: str, decide: str, twostep: Twostep, federate: Federate, browser: Browser, keycloak: Keycloak, admin: Admin,
    realm: str, directory: Directory
) -> None:
    import pyotp

    setup_realm(twostep, "--decide-with", decide)
    federate(mode)
    entry_before, tree_before, writes_before = directory.entry_dump("alice"), directory.tree_dump(), directory.writes()
    pw = PASSWORDS["alice"]
    user, _secret = _enrolled(twostep, browser, admin, realm, "alice")

    # A bypass: the directory password alone is enough; revoked, the code is asked again.
    r = twostep("bypass", "grant", "alice", "--for", "1h", "--reason", "lost phone, ticket 1", "--password")
    assert r.code == 0, r.err
    b = browser()
    b.login("alice", pw)
    assert b.logged_in(), "during the bypass the password alone is enough: " + (b.page.summary() if b.page else "")
    # The index: an entry `<user id>.<credential id>` in a bucket under the local group twostep-bypass.
    in_index = [g["name"] for g in admin.get(f"/{realm}/groups", search=user["id"], briefRepresentation="false")
                if g["name"] == "twostep-bypass"]
    if decide == "provider":  # the record is a credential, the index local groups (docs/formats.md)
        assert "twostep-bypass" in credential_types(admin, realm, user["id"]) and in_index
    else:
        assert (admin.get(f"/{realm}/users/{user['id']}")["attributes"] or {}).get("twostep_bypass") == ["true"]
    ext = twostep("bypass", "grant", "alice", "--for", "2h", "--reason", "still lost", "--extend", "--json")
    assert ext.code == 0 and json.loads(ext.out)["action"] == "bypass.extend", ext.err
    shown = json.loads(twostep("bypass", "show", "alice", "--json").out)
    assert shown["state"] == "active" and shown["reason"] == "still lost" and shown["extended"] in (1, "1"), shown
    assert twostep("bypass", "revoke", "alice", "--reason", "found it").code == 0
    assert json.loads(twostep("bypass", "show", "alice", "--json").out)["state"] == "none"
    assert browser().login("alice", pw).kind == "otp"

    # A bypass that ends on its own (made by a clock 5 minutes early, so it ends seconds from now).
    until = utcnow().replace(microsecond=0) + timedelta(seconds=8)
    grant_ending_at(client(keycloak.url, realm), "alice", until, reason="short trip")
    b = browser()
    b.login("alice", pw)
    assert b.logged_in(), "bypassed until " + until.isoformat()
    time.sleep(max(0.0, (until - utcnow()).total_seconds()) + 1.5)
    if decide == "sync":
        # Fallback mode: Keycloak's flow has no clock, the sync job ends bypasses.
        assert twostep("sync").code == 0
    page = browser().login("alice", pw)
    assert page.kind == "otp", "the bypass is over: " + page.summary()
    # Provider mode: the server already asked again; the sync clears the record and the index.
    assert twostep("sync").code == 0
    assert json.loads(twostep("bypass", "show", "alice", "--json").out)["state"] == "none"
    assert "twostep-bypass" not in credential_types(admin, realm, user["id"])
    assert not [g for g in admin.get(f"/{realm}/users/{user['id']}/groups") if g["name"] == "twostep-bypass"]

    # Admin-made backup codes (they replace any the user made): code #1 signs in once, not twice.
    r = twostep("codes", "generate", "alice", "--count", "5", "--json", "--no-notify")
    assert r.code == 0, r.err
    codes = [c["code"] for c in json.loads(r.out)["codes"]]
    st = json.loads(twostep("codes", "status", "alice", "--json").out)
    assert st["total"] == 5 and st["made_by"] == "admin", st
    b = browser()
    b.login("alice", pw)
    assert requested_number(to_recovery_form(b)) == 1
    assert b.submit({"recoveryCodeInput": codes[0]}).kind == "done" and b.logged_in()
    b = browser()
    b.login("alice", pw)
    assert requested_number(to_recovery_form(b)) == 2
    page = b.submit({"recoveryCodeInput": codes[0]})
    assert not b.logged_in() and page.kind == "recovery-code", "a used code never works again"

    # Lost phone: the device is reset; the next sign-in is still two steps (a backup code) and
    # then enrolls a new device.
    r = twostep("otp", "reset", "alice", "--reason", "lost phone", "--no-notify")
    assert r.code == 0, r.err
    assert "otp" not in credential_types(admin, realm, user["id"])
    time.sleep(1.2)  # brute-force protection: the failed code above was less than a second ago
    b = browser()
    b.login("alice", pw)
    assert requested_number(to_recovery_form(b)) == 2
    page = b.submit({"recoveryCodeInput": codes[1]})
    assert page.kind == "configure-totp", page.summary()
    new_secret = enroll(b, "new phone")
    assert b.logged_in(), b.page.summary() if b.page else ""
    b = browser()
    page = b.login("alice", pw)
    if page.kind == "recovery-code":
        # The codes credential is now older than the new device, and Keycloak 26.4+ offers the
        # older one first (upstream 44115); the device is one "try another way" away.
        b.try_another_way()
        page = choose_option(b, OTP_OPTION)
    assert page.kind == "otp", page.summary()
    assert b.submit({"otp": pyotp.TOTP(new_secret).at(time.time() + 30)}).kind == "done"

    # Revoking the codes removes them and their provenance (credential or attributes).
    assert twostep("codes", "revoke", "alice", "--reason", "test").code == 0
    types = credential_types(admin, realm, user["id"])
    assert "recovery-authn-codes" not in types and "twostep-codes-provenance" not in types, types
    assert json.loads(twostep("codes", "status", "alice", "--json").out)["present"] is False

    # A healthy federation: status has no complaint about it in this mode.
    report = json.loads(twostep("status", "--json").out)
    fed = [c for c in report["checks"] if c["name"].startswith("federation 'ldap'")]
    assert fed and all(c["ok"] for c in fed), fed

    # None of this wrote to the directory, in any edit mode (READ_ONLY: it could not have).
    assert directory.entry_dump("alice") == entry_before
    assert directory.tree_dump() == tree_before
    assert directory.writes() == writes_before


def test_read_only_federated_user_changes_device(
    twostep: Twostep, federate: Federate, browser: Browser, keycloak: Keycloak, admin: Admin, realm: str,
    directory: Directory
) -> None:
    """Changed phone (self-service, Keycloak's own kc_action): the new device first, then the old
    one goes; at no step has the user no device. READ_ONLY, the directory untouched."""
    import base64

    import pyotp
    from twostep import devices
    from twostep.audit import MemorySink

    setup_realm(twostep)
    federate("READ_ONLY")
    entry_before, writes_before = directory.entry_dump("carol"), directory.writes()
    user, old_secret = _enrolled(twostep, browser, admin, realm, "carol")
    kc = client(keycloak.url, realm)
    plan = devices.change_device_plan(kc, user["id"])
    assert len(plan.old_ids) == 1

    b = browser()
    b.login("carol", PASSWORDS["carol"])
    assert b.submit({"otp": pyotp.TOTP(old_secret).at(time.time() + 30)}).kind == "done"
    page = b.open(kc_action="CONFIGURE_TOTP")
    assert page.kind == "configure-totp", page.summary()
    secret = base64.b32encode(page.form_with("totpSecret").fields["totpSecret"].encode()).decode()
    page = b.submit({"totp": pyotp.TOTP(secret).now(), "userLabel": "new phone"}, form_field="totpSecret")
    assert b.logged_in() and "kc_action_status=success" in page.url, page.summary()
    new_id = devices.new_device_id(kc, user["id"], plan)
    assert new_id is not None and credential_types(admin, realm, user["id"]).count("otp") == 2
    removed = devices.finish_device_change(kc, user["id"], new_id, now=utcnow(), sink=MemorySink([]))
    assert [d.id for d in removed] == list(plan.old_ids)
    assert [d.label for d in devices.list_devices(kc, user["id"])] == ["new phone"]

    b2 = browser()
    assert b2.login("carol", PASSWORDS["carol"]).kind == "otp"
    assert b2.submit({"otp": pyotp.TOTP(secret).at(time.time() + 30)}).kind == "done"
    assert directory.entry_dump("carol") == entry_before and directory.writes() == writes_before


def test_read_only_federated_users_scope_by_local_group_and_grace(
    twostep: Twostep, federate: Federate, browser: Browser, admin: Admin, realm: str, directory: Directory
) -> None:
    """Provider mode. Enforcement by a local group works for directory users (Keycloak accepts the
    membership in READ_ONLY mode); a grace period lets a new member in with the password for now."""
    admin.post(f"/{realm}/groups", {"name": "staff"})
    setup_realm(twostep, "--decide-with", "provider", "--enforce", "group:staff", "--grace-days", "7")
    federate("READ_ONLY")
    writes_before = directory.writes()
    staff = next(g for g in admin.get(f"/{realm}/groups", search="staff") if g["name"] == "staff")
    dave = _ldap_user(admin, realm, "dave")
    _ldap_user(admin, realm, "erin")  # imported, not in the group
    admin.put(f"/{realm}/users/{dave['id']}/groups/{staff['id']}")
    b = browser()
    b.login("dave", PASSWORDS["dave"])
    assert b.logged_in(), "in grace (7 days from the import): the password alone for now"

    r = twostep("setup", "--no-service-client", "--decide-with", "provider", "--enforce", "group:staff",
                "--grace-days", "0")
    assert r.code == 0, r.err
    page = browser().login("dave", PASSWORDS["dave"])
    assert page.kind == "configure-totp", "in scope through the local group, grace over: " + page.summary()
    b = browser()
    b.login("erin", PASSWORDS["erin"])
    assert b.logged_in(), "out of scope: the password alone"
    assert directory.writes() == writes_before
