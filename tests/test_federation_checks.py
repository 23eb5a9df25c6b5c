"""`status` and `doctor` report federation settings that stop twostep from working, each with its fix.

The unit tests cover `federation.assess` (pure); the integration tests show, on a real Keycloak with
a real OpenLDAP directory, both the report and the failure it warns about.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from twostep import federation
from twostep.policy import STORE_ATTRIBUTES, STORE_CREDENTIAL

from tests.conftest import Admin, Browser, Federate, Twostep
from tests.support.ldap import PASSWORDS, Directory
from tests.support.ldap import component as ldap_component
from tests.support.twofactor import credential_types, setup_realm

# -- unit: assess ------------------------------------------------------------------------------


def _comp(**cfg: str) -> dict[str, Any]:
    base = {"enabled": "true", "importEnabled": "true", "editMode": "WRITABLE"}
    base.update(cfg)
    return {"id": "c1", "name": "corp", "providerId": "ldap", "config": {k: [v] for k, v in base.items()}}


def _mapper(mode: str, path: str | None, provider: str = "group-ldap-mapper") -> dict[str, Any]:
    cfg = {"mode": [mode]}
    if path is not None:
        cfg["groups.path"] = [path]
    return {"name": "groups", "providerId": provider, "config": cfg}


def _by_name(findings: list[federation.Finding]) -> dict[str, federation.Finding]:
    return {f.name.removeprefix("federation 'corp' "): f for f in findings}


def test_assess_healthy_federation_in_both_modes() -> None:
    for store in (STORE_ATTRIBUTES, STORE_CREDENTIAL):
        found = _by_name(federation.assess([_comp()], {}, store, "acme"))
        assert all(f.ok for f in found.values()), found
        assert {"enabled", "import", "edit mode"} <= set(found)
    # READ_ONLY is fine in provider mode: the records are credentials.
    found = _by_name(federation.assess([_comp(editMode="READ_ONLY")], {}, STORE_CREDENTIAL, "acme"))
    assert found["edit mode"].ok and "credentials" in found["edit mode"].detail


def test_assess_read_only_in_fallback_mode_needs_the_provider() -> None:
    found = _by_name(federation.assess([_comp(editMode="READ_ONLY")], {}, STORE_ATTRIBUTES, "acme"))
    f = found["edit mode"]
    assert not f.ok and "READ_ONLY" in f.detail and "fallback" in f.detail
    assert "provider JAR" in f.fix and "twostep setup --realm acme" in f.fix


def test_assess_disabled_and_import_off() -> None:
    found = _by_name(federation.assess([_comp(enabled="false", importEnabled="false")], {}, STORE_CREDENTIAL, "r"))
    assert not found["enabled"].ok and "cannot sign in" in found["enabled"].detail
    assert "Enabled" in found["enabled"].fix
    assert not found["import"].ok and "required actions" in found["import"].detail
    assert "Import users" in found["import"].fix


def test_assess_group_mapper_that_keeps_top_level_groups_in_the_directory() -> None:
    mappers = {"c1": [_mapper("LDAP_ONLY", "/")]}
    found = _by_name(federation.assess([_comp(editMode="READ_ONLY")], mappers, STORE_CREDENTIAL, "r"))
    assert not found["group mappers"].ok and "twostep-bypass" in found["group mappers"].detail
    assert "Groups Path" in found["group mappers"].fix
    # Missing groups.path means "/" (Keycloak's default); the index group's own path counts too.
    for path in (None, "", "/twostep-bypass"):
        f = _by_name(federation.assess([_comp()], {"c1": [_mapper("LDAP_ONLY", path)]}, STORE_CREDENTIAL, "r"))
        assert not f["group mappers"].ok, path
    for harmless in (_mapper("LDAP_ONLY", "/ldap"), _mapper("READ_ONLY", "/"), _mapper("IMPORT", "/"),
                     _mapper("LDAP_ONLY", "/", provider="role-ldap-mapper")):
        f = _by_name(federation.assess([_comp()], {"c1": [harmless]}, STORE_CREDENTIAL, "r"))
        assert f["group mappers"].ok, harmless
    # Fallback mode does not use the index group: no mapper check there.
    assert "group mappers" not in _by_name(federation.assess([_comp()], mappers, STORE_ATTRIBUTES, "r"))


def test_assess_skips_other_providers() -> None:
    kerberos = {"id": "k", "name": "krb", "providerId": "kerberos", "config": {"enabled": ["false"]}}
    assert federation.assess([kerberos], {}, STORE_ATTRIBUTES, "r") == []


# -- integration: the report and the failure it warns about --------------------------------------


def _report(twostep: Twostep, command: str) -> tuple[int, dict[str, dict[str, Any]]]:
    r = twostep(command, "--json")
    assert r.code in (0, 1), r.err
    return r.code, {c["name"]: c for c in json.loads(r.out)["checks"]}


def _user_id(admin: Admin, realm: str, username: str) -> str:
    found = admin.get(f"/{realm}/users", username=username, exact="true")
    assert len(found) == 1 and found[0].get("federationLink"), found
    return str(found[0]["id"])


def test_read_only_federation_in_fallback_mode_is_reported_and_grant_fails(
    twostep: Twostep, federate: Federate, admin: Admin, realm: str, directory: Directory
) -> None:
    setup_realm(twostep, "--decide-with", "sync")  # fallback mode: records in user attributes
    federate("READ_ONLY")
    code, checks = _report(twostep, "status")
    edit = checks["federation 'ldap' edit mode"]
    assert code == 1 and not edit["ok"] and "READ_ONLY" in edit["detail"]
    assert "provider JAR" in edit["fix"] and f"twostep setup --realm {realm}" in edit["fix"]
    assert checks["federation 'ldap' import"]["ok"] and checks["federation 'ldap' enabled"]["ok"]
    code, checks = _report(twostep, "doctor")
    assert code == 1 and not checks["federation 'ldap' edit mode"]["ok"]
    assert checks["federation 'ldap' reachable"]["ok"], checks["federation 'ldap' reachable"]

    # What the check warns about: the attribute write is refused, with one clear line.
    uid = _user_id(admin, realm, "alice")
    before = directory.entry_dump("alice")
    r = twostep("bypass", "grant", "alice", "--for", "1h", "--reason", "lost phone")
    assert r.code != 0 and r.err.startswith("twostep: error:") and "read-only" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not {k for k in admin.get(f"/{realm}/users/{uid}").get("attributes") or {} if k.startswith("twostep")}
    assert directory.entry_dump("alice") == before


@pytest.mark.parametrize("mode", ["WRITABLE", "UNSYNCED"])
def test_writable_federation_in_fallback_mode_is_fine(twostep: Twostep, federate: Federate, admin: Admin, realm: str,
                                                      mode: str) -> None:
    setup_realm(twostep, "--decide-with", "sync")
    federate(mode)
    code, checks = _report(twostep, "status")
    fed = {k: v for k, v in checks.items() if k.startswith("federation")}
    assert code == 0 and fed and all(c["ok"] for c in fed.values()), fed
    assert mode in fed["federation 'ldap' edit mode"]["detail"]


def test_import_off_is_reported_and_otp_reset_fails_closed(
    twostep: Twostep, federate: Federate, browser: Browser, admin: Admin, realm: str
) -> None:
    import pyotp

    from tests.conftest import otp_credential

    setup_realm(twostep, "--backup-codes", "offered")  # the sign-in below ends after the code
    federate("READ_ONLY", import_enabled=False)
    code, checks = _report(twostep, "status")
    imp = checks["federation 'ldap' import"]
    assert code == 1 and not imp["ok"] and "import is off" in imp["detail"] and "Import users" in imp["fix"]
    # Credentials are still accepted without import (federated storage): give bob a device.
    found = admin.get(f"/{realm}/users", username="bob", exact="true")
    uid = found[0]["id"]
    secret = pyotp.random_base32()
    rep = admin.get(f"/{realm}/users/{uid}")
    rep["credentials"] = [otp_credential(secret)]
    admin.put(f"/{realm}/users/{uid}", rep)
    assert "otp" in credential_types(admin, realm, uid)

    # What the check warns about: Keycloak refuses the new-device requirement. The reset must
    # then leave the device in place (else bob would sign in with his password alone).
    r = twostep("otp", "reset", "bob", "--no-notify")
    assert r.code != 0 and r.err.startswith("twostep: error:") and "read-only" in r.err, r.err
    assert "otp" in credential_types(admin, realm, uid), "nothing was removed"
    b = browser()
    assert b.login("bob", PASSWORDS["bob"]).kind == "otp", "still asked for the code"
    assert b.submit({"otp": pyotp.TOTP(secret).now()}).kind == "done"


def test_disabled_federation_is_reported_and_its_users_cannot_sign_in(
    twostep: Twostep, federate: Federate, browser: Browser, admin: Admin, realm: str
) -> None:
    setup_realm(twostep)
    cid = federate("READ_ONLY")
    uid = _user_id(admin, realm, "carol")  # imported while enabled
    comp = admin.get(f"/{realm}/components/{cid}")
    comp["config"]["enabled"] = ["false"]
    admin.put(f"/{realm}/components/{cid}", comp)
    code, checks = _report(twostep, "status")
    en = checks["federation 'ldap' enabled"]
    assert code == 1 and not en["ok"] and "cannot sign in" in en["detail"] and "Enabled" in en["fix"]
    assert admin.get(f"/{realm}/users/{uid}")["enabled"] is False
    b = browser()
    page = b.login("carol", PASSWORDS["carol"])
    assert not b.logged_in() and page.kind == "login", page.summary()
    # doctor does not try to reach a disabled federation.
    _, checks = _report(twostep, "doctor")
    assert "federation 'ldap' reachable" not in checks and not checks["federation 'ldap' enabled"]["ok"]


def test_unreachable_directory_is_reported_by_doctor(
    twostep: Twostep, admin: Admin, realm: str, directory: Directory
) -> None:
    setup_realm(twostep)
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    rep = ldap_component(directory, admin.get(f"/{realm}")["id"], "READ_ONLY", name="gone")
    rep["config"]["connectionUrl"] = [f"ldap://127.0.0.1:{dead}"]
    rep["config"]["connectionTimeout"] = ["2000"]
    admin.post(f"/{realm}/components", rep)
    code, checks = _report(twostep, "doctor")
    reach = checks["federation 'gone' reachable"]
    assert code == 1 and not reach["ok"] and f"127.0.0.1:{dead}" in reach["detail"]
    assert "Connection URL" in reach["fix"]


def test_group_mapper_in_ldap_only_mode_is_reported_and_writes_to_the_directory(
    twostep: Twostep, federate: Federate, admin: Admin, realm: str, directory: Directory
) -> None:
    """A group-ldap-mapper in LDAP_ONLY mode with groups path '/' owns every group, the top-level
    bypass index included: joining it is written to the directory, even when the federation is
    READ_ONLY. This is why provider mode needs that check."""
    setup_realm(twostep, "--decide-with", "provider")
    cid = federate("READ_ONLY")
    admin.post(f"/{realm}/components", {
        "name": "groups", "providerId": "group-ldap-mapper", "parentId": cid,
        "providerType": federation.LDAP_MAPPER,
        "config": {k: [v] for k, v in {
            "groups.dn": f"ou=groups,{directory.base_dn}", "group.name.ldap.attribute": "cn",
            "group.object.classes": "groupOfNames", "preserve.group.inheritance": "false",
            "ignore.missing.groups": "false", "membership.ldap.attribute": "member",
            "membership.attribute.type": "DN", "membership.user.ldap.attribute": "uid", "mode": "LDAP_ONLY",
            "user.roles.retrieve.strategy": "LOAD_GROUPS_BY_MEMBER_ATTRIBUTE", "memberof.ldap.attribute": "memberOf",
            "groups.path": "/", "drop.non.existing.groups.during.sync": "false"}.items()}})
    code, checks = _report(twostep, "status")
    gm = checks["federation 'ldap' group mappers"]
    assert code == 1 and not gm["ok"] and "'groups'" in gm["detail"] and "Groups Path" in gm["fix"]

    # bypass grant refuses before it writes anything: the index group would go to the directory.
    uid = _user_id(admin, realm, "dave")
    writes = directory.writes()
    r = twostep("bypass", "grant", "dave", "--for", "1h", "--reason", "lost phone")
    assert r.code != 0 and r.err.startswith("twostep: error:") and "'groups'" in r.err and "Groups Path" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1
    assert directory.writes() == writes
    assert "twostep-bypass" not in credential_types(admin, realm, uid)

    # What the grant avoided: Keycloak itself writes the membership (and the group) to the directory.
    admin.post(f"/{realm}/groups", {"name": "twostep-bypass"})
    gid = next(g["id"] for g in admin.get(f"/{realm}/groups", search="twostep-bypass") if g["name"] == "twostep-bypass")
    admin.put(f"/{realm}/users/{uid}/groups/{gid}")
    new = directory.writes()[len(writes):]
    assert "dn: cn=twostep-bypass,ou=groups," in new and f"member: {directory.user_dn('dave')}" in new, new
    directory.delete(f"cn=twostep-bypass,ou=groups,{directory.base_dn}")  # back to the seed for later tests

    # The fix from the report: a groups path below the top level; the check passes.
    mapper = next(m for m in admin.get(f"/{realm}/components", parent=cid, type=federation.LDAP_MAPPER)
                  if m["providerId"] == "group-ldap-mapper")
    admin.post(f"/{realm}/groups", {"name": "ldap"})
    mapper["config"]["groups.path"] = ["/ldap"]
    admin.put(f"/{realm}/components/{mapper['id']}", mapper)
    _, checks = _report(twostep, "status")
    assert checks["federation 'ldap' group mappers"]["ok"]
    admin.delete(f"/{realm}/groups/{gid}")  # the index group Keycloak tied to the directory
    writes = directory.writes()
    r = twostep("bypass", "grant", "dave", "--for", "1h", "--reason", "lost phone")
    assert r.code == 0, r.err
    assert "twostep-bypass" in credential_types(admin, realm, uid)
    assert directory.writes() == writes, "with the fixed mapper the grant writes nothing to the directory"


def test_checks_work_with_the_service_account(twostep: Twostep, federate: Federate, admin: Admin, realm: str,
                                              tmp_path: Path) -> None:
    """The least-privilege client setup creates can read the federation and ask Keycloak to test it."""
    secret_file = tmp_path / "secret"
    r = twostep("setup", "--decide-with", "sync", "--secret-file", str(secret_file))
    assert r.code == 0, r.err
    federate("READ_ONLY")
    env = {"TWOSTEP_CLIENT_ID": "twostep-cli", "TWOSTEP_CLIENT_SECRET": secret_file.read_text().strip(),
           "TWOSTEP_ADMIN_USERNAME": "", "TWOSTEP_ADMIN_PASSWORD": ""}
    r = twostep("doctor", "--json", env=env)
    assert r.code == 1, r.err
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    assert "service account twostep-cli" in checks["connection and credentials"]["detail"]
    assert not checks["federation 'ldap' edit mode"]["ok"], "READ_ONLY in fallback mode, seen by the service account"
    reach = checks["federation 'ldap' reachable"]
    assert reach["ok"] and reach["detail"].startswith("connected and bound"), reach
