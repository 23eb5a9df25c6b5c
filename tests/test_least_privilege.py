"""Issue 22, part 5: only `twostep setup` (a bootstrap admin) needs manage-realm. The day-to-day
account `twostep-cli` holds exactly its row of docs/operations.md ("Who needs which role"), setup
converges an older deployment to it, status reports an account that holds more, and every command of a
row runs with exactly that row's roles (a 403 fails the test)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from twostep.policy import SERVICE_CLIENT_ID, SERVICE_ROLES

from tests.conftest import ROOT, Admin, MakeUser, Twostep
from tests.support.help_helpers import file_request

FORBIDDEN = "not allowed for these credentials"


def role_rows() -> list[tuple[list[str], list[str]]]:
    """The rows of the roles table for `twostep-cli` in provider mode: (commands, roles)."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## Who needs which role", 1)[1]
    table = section[section.index("| command | account |"):].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[1] == f"`{SERVICE_CLIENT_ID}`":
            rows.append((re.findall(r"`([^`]+)`", cells[0]), re.findall(r"`([^`]+)`", cells[2])))
    return rows


def rm_client(admin: Admin, realm: str) -> str:
    return str(admin.get(f"/{realm}/clients", clientId="realm-management")[0]["id"])


def service_user(admin: Admin, realm: str) -> str:
    client = admin.get(f"/{realm}/clients", clientId=SERVICE_CLIENT_ID)[0]
    return str(admin.get(f"/{realm}/clients/{client['id']}/service-account-user")["id"])


def held(admin: Admin, realm: str) -> set[str]:
    """twostep-cli's direct realm-management roles."""
    path = f"/{realm}/users/{service_user(admin, realm)}/role-mappings/clients/{rm_client(admin, realm)}"
    return {r["name"] for r in admin.get(path)}


def set_roles(admin: Admin, realm: str, names: set[str]) -> None:
    """Give twostep-cli exactly these realm-management roles (as an admin would by hand)."""
    rm = rm_client(admin, realm)
    path = f"/{realm}/users/{service_user(admin, realm)}/role-mappings/clients/{rm}"
    current = admin.get(path)
    if current:
        admin.request("DELETE", path, json=current)
    admin.post(path, [admin.get(f"/{realm}/clients/{rm}/roles/{n}") for n in sorted(names)])
    assert held(admin, realm) == names


def service_env(tmp_path: Path) -> dict[str, str]:
    return {"TWOSTEP_CLIENT_ID": SERVICE_CLIENT_ID, "TWOSTEP_CLIENT_SECRET": (tmp_path / "secret").read_text().strip(),
            "TWOSTEP_ADMIN_USERNAME": "", "TWOSTEP_ADMIN_PASSWORD": "", "TWOSTEP_ACTOR": "helpdesk",
            "TWOSTEP_AUDIT_FILE": str(tmp_path / "audit.jsonl")}


def extension_loaded(admin: Admin) -> bool:
    """Whether Keycloak has twostep's admin REST extension (issue 22 parts 1-4): without it the
    provider-mode changes still take a lock that is a realm role (manage-realm)."""
    admin.get("")  # signs in
    info = admin.s.get(f"{admin.url}/admin/serverinfo", timeout=60).json()
    return "twostep" in ((info.get("providers") or {}).get("admin-realm-restapi-extension") or {}).get("providers", {})


def test_setup_grants_exactly_the_row_and_an_older_deployment_converges(
    twostep: Twostep, admin: Admin, realm: str, tmp_path: Path
) -> None:
    r = twostep("setup", "--secret-file", str(tmp_path / "secret"))
    assert r.code == 0, r.err
    assert held(admin, realm) == set(SERVICE_ROLES)
    assert "manage-realm" not in SERVICE_ROLES and "view-events" not in SERVICE_ROLES
    env = service_env(tmp_path)
    st = twostep("status", "--json", env=env)
    assert st.code == 0, st.out + st.err
    checks = {c["name"]: c for c in json.loads(st.out)["checks"]}
    assert checks["account roles"]["ok"] and "exactly" in checks["account roles"]["detail"]

    # What an older setup granted: status fails, names the extra roles and the fix.
    set_roles(admin, realm, {*SERVICE_ROLES, "manage-realm", "view-events"})
    st = twostep("status", "--json", env=env)
    assert st.code == 1, st.out + st.err
    check = {c["name"]: c for c in json.loads(st.out)["checks"]}["account roles"]
    assert not check["ok"] and "manage-realm, view-events" in check["detail"], check
    assert check["fix"].startswith(f"twostep setup --realm {realm}"), check
    doc = twostep("doctor", "--json", env=env)
    assert doc.code == 1 and not {c["name"]: c for c in json.loads(doc.out)["checks"]}["account roles"]["ok"]

    # Setup (a bootstrap admin) converges it; a second run plans nothing.
    dry = twostep("setup", "--dry-run")
    assert dry.code == 0 and "remove manage-realm, view-events" in dry.out, dry.out
    assert held(admin, realm) == {*SERVICE_ROLES, "manage-realm", "view-events"}, "--dry-run changed nothing"
    assert twostep("setup").code == 0
    assert held(admin, realm) == set(SERVICE_ROLES)
    again = twostep("setup", "--json")
    assert again.code == 0 and json.loads(again.out)["changes"] == [], again.out
    assert twostep("status", "--json", env=env).code == 0


def test_fallback_mode_keeps_manage_realm_and_says_why(twostep: Twostep, admin: Admin, realm: str,
                                                       tmp_path: Path) -> None:
    r = twostep("setup", "--decide-with", "sync", "--secret-file", str(tmp_path / "secret"))
    assert r.code == 0, r.err
    assert held(admin, realm) == {*SERVICE_ROLES, "manage-realm"}
    st = twostep("status", "--json", env=service_env(tmp_path))
    check = {c["name"]: c for c in json.loads(st.out)["checks"]}["account roles"]
    assert check["ok"] and "fallback mode" in check["detail"] and "manage-realm" in check["detail"], check
    # Back to provider mode: setup takes manage-realm away again.
    assert twostep("setup", "--decide-with", "provider").code == 0
    assert held(admin, realm) == set(SERVICE_ROLES)


def commands(tmp_path: Path) -> dict[str, list[str]]:
    """How the test runs each command named in the table (its arguments here)."""
    return {
        "status": ["status", "--json"], "doctor": ["doctor", "--json"], "bypass list": ["bypass", "list"],
        "bypass show": ["bypass", "show", "uma"], "codes status": ["codes", "status", "uma"],
        "otp list": ["otp", "list", "uma"], "help list": ["help", "list"], "sync --dry-run": ["sync", "--dry-run"],
        "bypass grant": ["bypass", "grant", "uma", "--for", "1h", "--reason", "lost phone"],
        "bypass revoke": ["bypass", "revoke", "uma", "--reason", "found it"],
        "codes generate": ["codes", "generate", "uma", "--out", str(tmp_path / "codes.txt"), "--no-notify"],
        "codes revoke": ["codes", "revoke", "uma", "--no-notify"],
        "otp reset": ["otp", "reset", "vic", "--reason", "new phone", "--no-notify"],
        "help grant": ["help", "grant", "hal", "--for", "1h"],
        "help dismiss": ["help", "dismiss", "ida", "--reason", "not from me"],
        "sync": ["sync", "--json"],
    }


def test_every_command_runs_with_exactly_its_row(twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str,
                                                 tmp_path: Path) -> None:
    rows = role_rows()
    assert len(rows) >= 2, rows
    runs = commands(tmp_path)
    named = [c for cmds, _roles in rows for c in cmds]
    assert sorted(named) == sorted(runs), "the table and this test name the same commands"
    assert twostep("setup", "--backup-codes", "offered", "--secret-file", str(tmp_path / "secret")).code == 0
    make_user("uma", otp=True)
    make_user("vic", otp=True)
    for name in ("hal", "ida"):
        file_request(admin, realm, make_user(name, otp=True).id, "lost my phone")
    env = service_env(tmp_path)
    failed: list[tuple[str, str]] = []
    for cmds, roles in rows:
        assert set(roles) <= set(SERVICE_ROLES), f"a row names more than the account holds: {roles}"
        set_roles(admin, realm, set(roles))
        for name in cmds:
            r = twostep(*runs[name], env=env)
            # status and doctor exit 1 for a finding (a read-only row lacks manage-users), never for a 403.
            ok = FORBIDDEN not in r.out + r.err and (r.code == 0 or (name in ("status", "doctor") and r.code == 1))
            if not ok:
                failed.append((name, (r.err.strip().splitlines() or [f"exit {r.code}"])[-1]))
    # Bypass and help changes go through the provider's admin extension (no lock role): it must be loaded.
    assert extension_loaded(admin), "the test Keycloak lacks the twostep admin REST extension"
    assert not failed, "\n".join(f"{n}: {e}" for n, e in failed)


def test_sync_reports_realm_drift_as_needing_setup_and_changes_nothing(
    twostep: Twostep, admin: Admin, realm: str, tmp_path: Path
) -> None:
    """Repairing the user profile (or the flow) is a realm change: sync's account may not make it, so the
    pass says who can, fails, and leaves the realm as it found it; setup repairs it."""
    assert twostep("setup", "--secret-file", str(tmp_path / "secret")).code == 0
    profile = admin.get(f"/{realm}/users/profile")
    for a in profile["attributes"]:
        if a["name"] == "twostep_bypass_until":
            a["permissions"] = {"view": ["admin", "user"], "edit": ["admin", "user"]}
    admin.put(f"/{realm}/users/profile", profile)
    r = twostep("sync", "--json", env=service_env(tmp_path))
    assert r.code != 0 and FORBIDDEN not in r.out + r.err, r.out + r.err
    assert f"needs `twostep setup --realm {realm}` as a bootstrap admin" in r.out + r.err, r.out + r.err
    assert admin.get(f"/{realm}/users/profile") == profile, "nothing changed"
    summary = json.loads(r.out)
    assert summary["drift_repaired"] == 0 and len(summary["errors"]) == 1, summary
    assert twostep("setup").code == 0
    fixed = {a["name"]: a for a in admin.get(f"/{realm}/users/profile")["attributes"]}
    assert fixed["twostep_bypass_until"]["permissions"] == {"view": ["admin"], "edit": ["admin"]}
    assert twostep("sync", "--json", env=service_env(tmp_path)).code == 0
