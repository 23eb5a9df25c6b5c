"""Issue 22, the persona matrix from the admin PAGES (real sign-in through Keycloak's login pages, real
HTTP to the app), each persona signed in as themselves: a help desk (realm-management manage-users +
view-users + query-users), a delegated admin under fine-grained admin permissions v2 (query-users, and a
permission: may view and manage the members of group `staff`; no other role) and a realm admin. Each
grants, extends and revokes a bypass, makes backup codes, resets a device and answers help requests
(grant, dismiss) for a member of staff; the delegated admin is refused (403 / a refusal) for a user
outside staff, the help desk for a realm admin, everybody for themselves, and then nothing changes.
One realm and one app for the module; each persona signs in once. docs/operations.md, "Persona
matrix", names these tests cell by cell."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from twostep.settings import Settings
from twostep.web.app import create_app
from twostep.web.auth import WebConfig
from werkzeug.serving import make_server

from tests.conftest import Admin, Keycloak, User, create_realm, create_user, lock_roles
from tests.support.bypass_helpers import record_fields
from tests.support.help_helpers import file_request, stored_request
from tests.support.login import LoginDriver, Page
from tests.support.personas import (
    HELPDESK_ROLES,
    delegate_to_group,
    give_roles,
    helpdesk_service_account,
    personal_token,
)
from tests.test_web_app import flashes, free_port, post, user_rows

PERSONAS = ("helpdesk", "delegated", "realm_admin")
USER_ACTIONS = ("grant", "extend", "revoke", "generate_codes", "reset_device")
HELP_ANSWERS = ("grant", "dismiss")


@dataclass
class World:
    kc: Keycloak
    admin: Admin
    realm: str
    url: str
    people: dict[str, User]
    targets: dict[str, User]
    drivers: dict[str, LoginDriver] = field(default_factory=dict)

    def sign_in(self, who: str) -> LoginDriver:
        if who not in self.drivers:
            user = self.people[who]
            d = LoginDriver(self.kc.url, self.realm, client_id="twostep-web")
            page = d.open_url(f"{self.url}/auth/login?next=/admin")
            assert page.kind == "login", page.summary()
            page = d.submit({"username": user.username, "password": user.password})
            if page.kind == "otp":
                page = d.submit({"otp": user.code()})
            assert page.url.startswith(self.url), page.summary()
            assert page.status == 200, (who, page.summary())
            self.drivers[who] = d
        return self.drivers[who]


def _run(kc: Keycloak, realm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twostep", *args], env=kc.env(realm), capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def world(keycloak: Keycloak, admin: Admin, tmp_path_factory: pytest.TempPathFactory,
          lock_roles_left: list[str]) -> Iterator[World]:
    realm = create_realm(admin)
    tmp = tmp_path_factory.mktemp("personas")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret = tmp / "web.secret"
    r = _run(keycloak, realm, "setup", "--no-service-client", "--web-url", url, "--web-secret-file", str(secret),
             "--backup-codes", "offered")
    assert r.returncode == 0, r.stderr
    groups = {}
    for name in ("staff", "helpdesk-staff"):
        admin.post(f"/{realm}/groups", {"name": name})
        groups[name] = str(admin.get(f"/{realm}/groups", search=name, exact="true")[0]["id"])
    people = {"helpdesk": create_user(admin, realm, "hilde", otp=True),
              "delegated": create_user(admin, realm, "dana", otp=True, groups=["/helpdesk-staff"]),
              "realm_admin": create_user(admin, realm, "boss", otp=True)}
    give_roles(admin, realm, people["helpdesk"].id, HELPDESK_ROLES)
    give_roles(admin, realm, people["delegated"].id, ("query-users",))
    give_roles(admin, realm, people["realm_admin"].id, ("realm-admin",))
    # "Members of group staff may be managed by group helpdesk-staff": one permission (Keycloak decides
    # unanimously between permissions on one group, so every delegated account joins this group).
    delegate_to_group(admin, realm, groups["helpdesk-staff"], groups["staff"])
    targets: dict[str, User] = {"olga": create_user(admin, realm, "olga", otp=True)}  # outside staff
    for p in PERSONAS:
        for kind in ("user", "help-grant", "help-dismiss"):
            name = f"{p.replace('_', '')}-{kind}"
            targets[name] = create_user(admin, realm, name, otp=True, groups=["/staff"])
    app = create_app(Settings(url=keycloak.url, realm=realm, audit_file=str(tmp / "audit.jsonl")),
                     WebConfig(public_url=url, client_secret=secret.read_text().strip(), token_dir=str(tmp / "tokens")))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    world = World(keycloak, admin, realm, url, people, targets)
    for p in PERSONAS:  # signed in before any help request is filed on them
        world.sign_in(p)
    for name in ("olga", *(t for t in targets if "-help-" in t)):
        file_request(admin, realm, targets[name].id, "lost my phone")
    for user in people.values():
        file_request(admin, realm, user.id, "my own request")
    try:
        yield world
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        lock_roles_left.extend(f"{realm}: {role}" for role in lock_roles(admin, realm))
        admin.delete(f"/{realm}")


def snapshot(w: World, user: User) -> dict[str, Any]:
    """Everything a journey could change on a user: credentials (id, type, data), required actions,
    groups (the help and bypass indexes) and the bypass record."""
    creds = sorted((c["id"], c["type"], c.get("credentialData") or "")
                   for c in w.admin.get(f"/{w.realm}/users/{user.id}/credentials"))
    rep = w.admin.get(f"/{w.realm}/users/{user.id}")
    groups = sorted(g["path"] for g in w.admin.get(f"/{w.realm}/users/{user.id}/groups"))
    return {"creds": creds, "actions": sorted(rep.get("requiredActions") or []), "groups": groups,
            "record": record_fields(w.admin, w.realm, user.id)}


def csrf(d: LoginDriver, w: World) -> str:
    page = d.open_url(f"{w.url}/security")
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert m, page.summary()
    return m.group(1)


def user_action(w: World, who: str, target: User, action: str) -> Page:
    """Open the target's page (as a person would) and post the action's form; the form's fields are
    posted even when the page was refused (a forged or stale form): Keycloak must still refuse. A grant
    asks for the password alone (its answer is a flash; the pass page: tests/test_access_pass_pages.py)."""
    d = w.sign_in(who)
    d.open_url(f"{w.url}/admin/users/{target.id}")
    return post(d, f"{w.url}/admin/users/{target.id}/action", {
        "csrf_token": csrf(d, w), "action": action, "user_id": target.id, "preset": "1h",
        "kind": "password", "reason": f"{who} {action}", "confirm": "yes"})


def help_answer(w: World, who: str, target: User, answer: str) -> Page:
    d = w.sign_in(who)
    d.open_url(f"{w.url}/admin/help")
    return post(d, f"{w.url}/admin/help/{target.id}/answer", {
        "csrf_token": csrf(d, w), "action": answer, "user_id": target.id, "preset": "1h",
        "kind": "password", "reason": f"{who} {answer}", "confirm": "yes"})


def errors(page: Page) -> list[str]:
    return list(re.findall(r'<div class="flash error" role="status">(.*?)</div>', page.text))


def refused(page: Page) -> bool:
    """A clear refusal: a 403 page, or the page back with an error line and no "Done"."""
    return page.status == 403 or (bool(errors(page)) and not any("Done for" in m for m in flashes(page)))


# -- who gets in ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", PERSONAS)
def test_every_persona_gets_in_and_sees_whom_keycloak_lets_them_see(world: World, who: str) -> None:
    d = world.sign_in(who)
    page = d.open_url(f"{world.url}/admin/users")  # the realm's ~15 users fit on the first page
    assert page.status == 200, page.summary()
    shown = set(re.findall(r"/admin/users/([0-9a-f-]{36})", page.text))
    staff = {world.targets[f"{p.replace('_', '')}-user"].id for p in PERSONAS}
    assert staff <= shown, (who, page.summary())
    page = d.open_url(f"{world.url}/admin/users?q=olga")
    olga = world.targets["olga"].id in page.text
    assert olga is (who != "delegated"), "the delegated admin's list holds only whom Keycloak lets them view"
    assert d.open_url(f"{world.url}/admin/help").status == 200


def test_a_person_keycloak_lets_manage_nobody_is_refused(world: World) -> None:
    nobody = create_user(world.admin, world.realm, "nobody", otp=True)
    give_roles(world.admin, world.realm, nobody.id, ("query-users", "view-users"))  # may look, not change
    d = LoginDriver(world.kc.url, world.realm, client_id="twostep-web")
    d.open_url(f"{world.url}/auth/login?next=/admin/users")
    page = d.submit({"username": nobody.username, "password": nobody.password})
    if page.kind == "otp":
        page = d.submit({"otp": nobody.code()})
    assert page.status == 403 and "fine-grained admin permission" in page.text, page.summary()


def test_the_delegated_admins_users_list_shows_the_bypass_of_whom_they_may_view(world: World) -> None:
    """Issue 22 (the users list): the delegated admin may read neither the expiry index's groups nor list
    groups; the bypass column comes from the provider's extension (GET twostep/users/bypass-records) with
    their own token: the real state for a member of staff with a bypass, none for one without, and the
    Keycloak calls of any page of the list."""
    w = world
    bypassed = create_user(w.admin, w.realm, "lst-bypassed", otp=True, groups=["/staff"])
    plain = create_user(w.admin, w.realm, "lst-plain", otp=True, groups=["/staff"])
    granted = user_action(w, "realm_admin", bypassed, "grant")  # a persona: the audit names only them
    assert any(m.startswith("Done for") for m in flashes(granted)), flashes(granted)
    until = record_fields(w.admin, w.realm, bypassed.id)["until"]
    d = w.sign_in("delegated")
    resp = d.s.get(f"{w.url}/admin/users?q=lst-", timeout=60)
    assert resp.status_code == 200, resp.text[:2000]
    rows = user_rows(resp.text)
    assert set(rows) == {bypassed.id, plain.id}, rows
    cell = rows[bypassed.id].split('<td class="bypass">', 1)[1]
    assert cell.startswith(f'<span class="warn"><time datetime="{until}"'), cell
    assert rows[plain.id].split('<td class="bypass">', 1)[1].startswith("—</td>"), rows[plain.id]
    assert "?" not in "".join(r.split('<td class="bypass">', 1)[1].split("</td>", 1)[0] for r in rows.values())
    # The list, the realm, its policy (a delegated admin may not view the realm: the extension hands it over)
    # and one extension call for the page's records, whatever the page size.
    assert int(resp.headers["X-Keycloak-Calls"]) <= 4, resp.headers["X-Keycloak-Calls"]


def test_bypass_records_disclose_no_user_the_caller_may_not_view(world: World) -> None:
    """The extension's answer for a page of ids, asked with a delegated admin's own token (a real sign-in):
    the member of staff's record (credentialData, never secretData); a user outside staff with a bypass,
    and an id of no user, are left out. A realm admin asking the same gets both records."""
    w = world
    inside = create_user(w.admin, w.realm, "rec-inside", otp=True, groups=["/staff"])
    outside = create_user(w.admin, w.realm, "rec-outside", otp=True)
    for u in (inside, outside):
        granted = user_action(w, "realm_admin", u, "grant")
        assert any(m.startswith("Done for") for m in flashes(granted)), flashes(granted)
    desk = create_user(w.admin, w.realm, "desk-rec", otp=True, groups=["/helpdesk-staff"])
    give_roles(w.admin, w.realm, desk.id, ("query-users",))
    token = personal_token(w.kc.url, w.realm, desk)
    ids = [inside.id, outside.id, "00000000-0000-0000-0000-000000000000"]
    resp = requests.get(f"{w.kc.url}/admin/realms/{w.realm}/twostep/users/bypass-records", params={"id": ids},
                        headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert resp.status_code == 200, resp.text
    answer: dict[str, list[dict[str, Any]]] = resp.json()
    assert list(answer) == [inside.id], "nothing about a user the caller may not view"
    [rec] = answer[inside.id]
    assert rec["type"] == "twostep-bypass" and "secretData" not in rec
    assert json.loads(rec["credentialData"])["until"] == record_fields(w.admin, w.realm, inside.id)["until"]
    full = w.admin.get(f"/{w.realm}/twostep/users/bypass-records", id=ids)
    assert sorted(full) == sorted([inside.id, outside.id]), full
    too_many = requests.get(f"{w.kc.url}/admin/realms/{w.realm}/twostep/users/bypass-records",
                            params={"id": [f"id-{i}" for i in range(101)]},
                            headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert too_many.status_code == 400, too_many.text


def test_a_delegated_admin_who_may_not_list_users_gets_one_clear_line(world: World) -> None:
    """A delegated admin with the group permission and no realm-management role at all (no query-users):
    Keycloak refuses them the user search. The users list and the help queue say so in one line, with
    whom to ask, HTTP 403, no Keycloak error text and no traceback; the overview, where the sign-in lands,
    says in one line that they may not read the realm's settings and whom to ask."""
    w = world
    dina = create_user(w.admin, w.realm, "dina", otp=True, groups=["/helpdesk-staff"])
    d = LoginDriver(w.kc.url, w.realm, client_id="twostep-web")
    d.open_url(f"{w.url}/auth/login?next=/admin/users")
    page = d.submit({"username": dina.username, "password": dina.password})
    if page.kind == "otp":
        page = d.submit({"otp": dina.code()})
    line = (f"Your account may not list users in realm {w.realm}: ask a realm administrator for the role "
            "realm-management/query-users (or a fine-grained admin permission to view users).")
    for path in ("/admin/users", "/admin/users?q=lst-", "/admin/help"):
        if path != "/admin/users":
            page = d.open_url(f"{w.url}{path}")
        assert page.status == 403, (path, page.summary())
        assert f'<p class="bad">{line}</p>' in page.text, (path, page.text[:3000])
        for raw in ("Keycloak refused", "HTTP 403 Forbidden", "not allowed for these credentials", "Traceback"):
            assert raw not in page.text, (path, raw)
    page = d.open_url(f"{w.url}/admin")  # where the sign-in lands: Keycloak shows them not even the realm
    assert page.status == 200 and (f'<div class="flash error">Your account may not read the settings of realm '
                                   f"{w.realm}: ask a realm administrator") in page.text, page.text[:3000]
    assert "HTTP 403 Forbidden" not in page.text and "not allowed for these credentials" not in page.text


# -- the journeys, allowed --------------------------------------------------------------------------

@pytest.mark.parametrize("who", PERSONAS)
def test_bypass_codes_and_reset_on_a_member_of_staff(world: World, who: str) -> None:
    w = world
    target = w.targets[f"{who.replace('_', '')}-user"]
    me = w.people[who]
    page = user_action(w, who, target, "grant")
    assert any(m.startswith("Done for") for m in flashes(page)), (who, flashes(page))
    rec = record_fields(w.admin, w.realm, target.id)
    assert rec["marker"] == "true" and rec["by"] == f"{me.username}@{w.realm} via web", rec
    page = user_action(w, who, target, "extend")
    assert any(m.startswith("Done for") for m in flashes(page)), (who, flashes(page))
    assert record_fields(w.admin, w.realm, target.id)["extended"] == "1"
    page = user_action(w, who, target, "revoke")
    assert any(m.startswith("Done for") for m in flashes(page)), (who, flashes(page))
    assert record_fields(w.admin, w.realm, target.id) == {}
    page = user_action(w, who, target, "generate_codes")
    shown = re.findall(r"<li>([^<]+)</li>", page.text.split('class="codes"', 1)[-1])
    assert page.status == 200 and len(shown) >= 5, (who, page.summary())
    types = [c[1] for c in snapshot(w, target)["creds"]]
    assert "recovery-authn-codes" in types and "twostep-codes-provenance" in types
    page = user_action(w, who, target, "reset_device")
    assert any("Reset the device" in m for m in flashes(page)), (who, flashes(page))
    snap = snapshot(w, target)
    assert "otp" not in [c[1] for c in snap["creds"]] and "CONFIGURE_TOTP" in snap["actions"]
    events = w.admin.get(f"/{w.realm}/admin-events", resourcePath=f"twostep/users/{target.id}/*", max=50)
    assert {e["authDetails"]["userId"] for e in events} == {me.id}, "Keycloak's events name the admin"
    assert len(events) == 5, [e["resourcePath"] for e in events]


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("answer", HELP_ANSWERS)
def test_help_answer_for_a_member_of_staff(world: World, who: str, answer: str) -> None:
    w = world
    target = w.targets[f"{who.replace('_', '')}-help-{answer}"]
    queue = w.sign_in(who).open_url(f"{w.url}/admin/help")
    assert queue.status == 200 and target.username in queue.text, (who, queue.summary())
    page = help_answer(w, who, target, answer)
    assert any(m.startswith("Done for") for m in flashes(page)), (who, answer, flashes(page), errors(page))
    assert stored_request(w.admin, w.realm, target.id) is None
    types = [c[1] for c in snapshot(w, target)["creds"]]
    assert ("otp" in types) is (answer == "dismiss"), types
    assert (record_fields(w.admin, w.realm, target.id) != {}) is (answer == "grant")


# -- the journeys, refused --------------------------------------------------------------------------

REFUSED = [(who, "self") for who in PERSONAS] + [("delegated", "olga"), ("helpdesk", "boss")]


@pytest.mark.parametrize(("who", "whom"), REFUSED, ids=[f"{a}-on-{b}" for a, b in REFUSED])
def test_refused_and_nothing_changes(world: World, who: str, whom: str) -> None:
    w = world
    target = w.people[who] if whom == "self" else w.people["realm_admin"] if whom == "boss" else w.targets[whom]
    if whom == "olga" or whom == "boss":
        # Keycloak's refusal first: the user's page itself (the delegated admin may not even view olga).
        page = w.sign_in(who).open_url(f"{w.url}/admin/users/{target.id}")
        assert (page.status == 403) is (whom == "olga"), (who, whom, page.summary())
    before = snapshot(w, target)
    assert stored_request(w.admin, w.realm, target.id) is not None
    outcomes = {}
    for action in USER_ACTIONS:
        outcomes[action] = user_action(w, who, target, action)
    for answer in HELP_ANSWERS:
        outcomes[f"help {answer}"] = help_answer(w, who, target, answer)
    bad = {k: (p.status, flashes(p)) for k, p in outcomes.items() if not refused(p)}
    assert not bad, bad
    assert snapshot(w, target) == before, "nothing changed"
    events = w.admin.get(f"/{w.realm}/admin-events", resourcePath=f"twostep/users/{target.id}/*", max=50)
    assert events == [], [e["resourcePath"] for e in events]


def test_no_lock_role_and_the_audit_names_each_admin(world: World) -> None:
    assert lock_roles(world.admin, world.realm) == []
    events = world.admin.get(f"/{world.realm}/admin-events", resourcePath="twostep/*", max=500)
    who = {json.loads(e["representation"])["who"] for e in events}
    assert who <= {f"{u.username}@{world.realm}" for u in world.people.values()}, who


def test_the_cli_of_a_delegated_account_acts_only_on_staff(world: World, tmp_path: Path) -> None:
    """The CLI with a service account that holds query-users and, as a member of helpdesk-staff, the same
    permission as the delegated admin: members of staff yes, olga no."""
    w = world
    client_id, secret = helpdesk_service_account(w.admin, w.realm, "delegated-cli")
    cid = w.admin.get(f"/{w.realm}/clients", clientId=client_id)[0]["id"]
    sa = w.admin.get(f"/{w.realm}/clients/{cid}/service-account-user")
    rm = w.admin.get(f"/{w.realm}/clients", clientId="realm-management")[0]["id"]
    path = f"/{w.realm}/users/{sa['id']}/role-mappings/clients/{rm}"
    w.admin.request("DELETE", path, json=w.admin.get(path))
    give_roles(w.admin, w.realm, str(sa["id"]), ("query-users",))
    helpdesk_staff = w.admin.get(f"/{w.realm}/groups", search="helpdesk-staff", exact="true")[0]
    w.admin.put(f"/{w.realm}/users/{sa['id']}/groups/{helpdesk_staff['id']}")
    env = {**w.kc.env(w.realm), "TWOSTEP_CLIENT_ID": client_id, "TWOSTEP_CLIENT_SECRET": secret,
           "TWOSTEP_ADMIN_USERNAME": "", "TWOSTEP_ADMIN_PASSWORD": "", "TWOSTEP_ACTOR": "dana",
           "TWOSTEP_AUDIT_FILE": str(tmp_path / "audit.jsonl")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "twostep", *args], env=env, capture_output=True, text=True,
                              timeout=300)

    sam = create_user(w.admin, w.realm, "sam", otp=True, groups=["/staff"])
    helped = create_user(w.admin, w.realm, "helped", otp=True, groups=["/staff"])
    dismissed = create_user(w.admin, w.realm, "dismissed", otp=True, groups=["/staff"])
    for u in (helped, dismissed):
        file_request(w.admin, w.realm, u.id, "lost my phone")
    olga = w.targets["olga"]
    journeys = [("bypass", "grant", "{u}", "--for", "1h", "--reason", "r"),
                ("bypass", "grant", "{u}", "--for", "2h", "--extend", "--reason", "r"),
                ("bypass", "revoke", "{u}", "--reason", "r"),
                ("codes", "generate", "{u}", "--out", str(tmp_path / "codes-{u}.txt"), "--no-notify"),
                ("otp", "reset", "{u}", "--reason", "r", "--no-notify")]
    before = snapshot(w, olga)
    for j in journeys:
        ok = cli(*(a.format(u="sam") for a in j))
        assert ok.returncode == 0, (j, ok.stderr)
        no = cli(*(a.format(u="olga") for a in j))
        assert no.returncode != 0 and "Traceback" not in no.stderr and no.stderr.startswith("twostep: error:"), \
            (j, no.returncode, no.stderr)
    assert cli("help", "grant", "helped", "--for", "1h").returncode == 0
    assert cli("help", "dismiss", "dismissed", "--reason", "call the desk").returncode == 0
    assert [stored_request(w.admin, w.realm, u.id) for u in (helped, dismissed)] == [None, None]
    for args in (("help", "grant", "olga", "--for", "1h"), ("help", "dismiss", "olga", "--reason", "r")):
        no = cli(*args)
        assert no.returncode != 0 and no.stderr.startswith("twostep: error:"), (args, no.stderr)
    assert snapshot(w, olga) == before, "nothing changed for olga"
    assert "otp" not in [c[1] for c in snapshot(w, sam)["creds"]]


def test_the_cli_of_a_help_desk_account_is_refused_on_a_realm_admin(world: World, tmp_path: Path) -> None:
    """The CLI with a service account holding only the help desk's roles: every journey on the realm
    admin is refused in one line (Keycloak's extension: acting on realm-admin needs realm-admin), and
    nothing changes for him."""
    w = world
    client_id, secret = helpdesk_service_account(w.admin, w.realm, "helpdesk-cli")
    env = {**w.kc.env(w.realm), "TWOSTEP_CLIENT_ID": client_id, "TWOSTEP_CLIENT_SECRET": secret,
           "TWOSTEP_ADMIN_USERNAME": "", "TWOSTEP_ADMIN_PASSWORD": "", "TWOSTEP_ACTOR": "hilde",
           "TWOSTEP_AUDIT_FILE": str(tmp_path / "audit.jsonl")}
    boss = w.people["realm_admin"]
    before = snapshot(w, boss)
    assert stored_request(w.admin, w.realm, boss.id) is not None
    for args in (("bypass", "grant", "boss", "--for", "1h", "--reason", "r"),
                 ("bypass", "grant", "boss", "--for", "2h", "--extend", "--reason", "r"),
                 ("bypass", "revoke", "boss", "--reason", "r"),
                 ("codes", "generate", "boss", "--out", str(tmp_path / "codes.txt"), "--no-notify"),
                 ("otp", "reset", "boss", "--reason", "r", "--no-notify"),
                 ("help", "grant", "boss", "--for", "1h"), ("help", "dismiss", "boss", "--reason", "r")):
        r = subprocess.run([sys.executable, "-m", "twostep", *args], env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode != 0 and r.stderr.startswith("twostep: error:") and "Traceback" not in r.stderr, \
            (args, r.returncode, r.stderr)
    assert snapshot(w, boss) == before, "nothing changed for the realm admin"
