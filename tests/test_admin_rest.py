"""The provider's admin REST extension (/admin/realms/{realm}/twostep/...) as the people who use it:
a help desk with only manage-users, a delegated admin under fine-grained admin permissions v2, and
the rules Keycloak's permissions do not say (nobody acts on themselves, the help desk not on a realm
admin). Every change is one Keycloak transaction with one admin event; no lock role is ever made."""

from __future__ import annotations

import json
import threading
from typing import Any

import requests

from tests.conftest import Admin, Browser, Keycloak, MakeUser, Twostep, User, lock_roles
from tests.support.access_pass import GROUPED
from tests.support.bypass_helpers import record_fields
from tests.support.personas import (
    HELPDESK_ROLES,
    call,
    delegate_group_members,
    give_roles,
    helpdesk_service_account,
    personal_token,
)
from tests.support.twofactor import setup_realm


def _index_entries(admin: Admin, realm: str, user_id: str) -> list[str]:
    """Names of the user's entries in the bypass index (docs/formats.md), any bucket."""
    found: list[str] = []

    def walk(groups: list[dict[str, Any]], depth: int) -> None:
        for g in groups:
            if depth == 2 and str(g["name"]).startswith(user_id + "."):
                found.append(str(g["name"]))
            elif depth < 2:
                subs = g.get("subGroups") or admin.get(f"/{realm}/groups/{g['id']}/children", max=1000)
                walk(subs, depth + 1)

    roots = [g for g in admin.get(f"/{realm}/groups", search="twostep-bypass", exact="true")
             if g["name"] == "twostep-bypass"]
    walk(roots, 0)
    return found


def _events(admin: Admin, realm: str, user_id: str, what: str) -> list[dict[str, Any]]:
    events = admin.get(f"/{realm}/admin-events", resourcePath=f"twostep/users/{user_id}/*", max=100)
    return [e for e in events if e.get("resourcePath") == f"twostep/users/{user_id}/{what}"]


def test_helpdesk_cli_grants_carol_and_she_signs_in_with_the_password(
        twostep: Twostep, keycloak: Keycloak, admin: Admin, realm: str, make_user: MakeUser, browser: Browser) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    carol: User = make_user("carol", otp=True)
    client_id, secret = helpdesk_service_account(admin, realm)
    env = {"TWOSTEP_CLIENT_ID": client_id, "TWOSTEP_CLIENT_SECRET": secret, "TWOSTEP_ACTOR": "hilde"}
    before = browser().login(carol.username, carol.password)
    assert before.kind == "otp", before.summary()

    r = twostep("bypass", "grant", "carol", "--for", "8h", "--reason", "phone at home", "--password", "--json", env=env)
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["action"] == "bypass.grant"
    rec = record_fields(admin, realm, carol.id)
    assert rec["marker"] == "true" and rec["reason"] == "phone at home" and rec["until"] == out["until"]
    assert rec["by"] == f"hilde@{realm} via service account {client_id}", rec
    assert len(_index_entries(admin, realm, carol.id)) == 1
    b = browser()
    b.login(carol.username, carol.password)
    assert b.logged_in(), "the help desk's bypass lets carol in with the password alone"

    # One admin event, in Keycloak's own list: actor (the help desk's account), target, no secret.
    sa = admin.get(f"/{realm}/clients/{admin.get(f'/{realm}/clients', clientId=client_id)[0]['id']}"
                   "/service-account-user")
    events = _events(admin, realm, carol.id, "bypass.grant")
    assert len(events) == 1, events
    ev = events[0]
    assert ev["authDetails"]["userId"] == sa["id"] and ev["operationType"] == "ACTION"
    rep = json.loads(ev["representation"])
    assert (rep["what"], rep["whom"], rep["user_id"], rep["until"], rep["reason"]) == (
        "bypass.grant", "carol", carol.id, out["until"], "phone at home")
    assert rep["who"] == f"service-account-{client_id}@{realm}"
    assert not {"secretData", "credentialData", "value", "password"} & set(rep), rep

    # A second grant while one is in force: Keycloak refuses (409), nothing changes.
    again = twostep("bypass", "grant", "carol", "--for", "1h", "--reason", "again", env=env)
    assert again.code == 5 and "already bypassed" in again.err, (again.code, again.err)
    ext = twostep("bypass", "grant", "carol", "--for", "9h", "--extend", "--reason", "longer", env=env)
    assert ext.code == 0, ext.err
    assert record_fields(admin, realm, carol.id)["extended"] == "1"
    assert len(_index_entries(admin, realm, carol.id)) == 1, "the extension replaced the entry"
    rv = twostep("bypass", "revoke", "carol", "--reason", "back", env=env)
    assert rv.code == 0, rv.err
    assert record_fields(admin, realm, carol.id) == {}
    assert _index_entries(admin, realm, carol.id) == []
    assert len(_events(admin, realm, carol.id, "bypass.revoke")) == 1
    assert browser().login(carol.username, carol.password).kind == "otp"
    assert lock_roles(admin, realm) == []


def test_nobody_acts_on_themselves_and_the_help_desk_not_on_a_realm_admin(
        twostep: Twostep, keycloak: Keycloak, admin: Admin, realm: str, make_user: MakeUser) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    hilde: User = make_user("hilde", otp=True)
    give_roles(admin, realm, hilde.id, HELPDESK_ROLES)
    boss: User = make_user("boss", otp=True)
    give_roles(admin, realm, boss.id, ("realm-admin",))
    carol: User = make_user("carol", otp=True)
    token = personal_token(keycloak.url, realm, hilde)
    body = {"seconds": 3600, "reason": "test", "by": "hilde"}

    for target in (hilde, boss):
        r = call(keycloak.url, realm, token, f"/users/{target.id}/bypass/grant", body)
        assert r.status_code == 403, (target.username, r.status_code, r.text)
        assert record_fields(admin, realm, target.id) == {}
        assert _events(admin, realm, target.id, "bypass.grant") == []
    assert "realm-admin" in call(keycloak.url, realm, token, f"/users/{boss.id}/bypass/grant", body).text

    # The realm admin may act on the help desk, and the help desk on an ordinary user.
    boss_token = personal_token(keycloak.url, realm, boss)
    assert call(keycloak.url, realm, boss_token, f"/users/{hilde.id}/bypass/grant", body).status_code == 200
    assert call(keycloak.url, realm, token, f"/users/{carol.id}/bypass/grant", body).status_code == 200
    # Over the realm's maximum (setup's default 7 days), by Keycloak's clock: refused.
    long = call(keycloak.url, realm, boss_token, f"/users/{carol.id}/bypass/extend",
                {**body, "seconds": 8 * 86400})
    assert long.status_code == 400, long.text
    assert lock_roles(admin, realm) == []


def test_delegated_admin_manages_only_the_members_of_staff(
        twostep: Twostep, keycloak: Keycloak, admin: Admin, realm: str, make_user: MakeUser) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    admin.post(f"/{realm}/groups", {"name": "staff"})
    staff = admin.get(f"/{realm}/groups", search="staff", exact="true")[0]
    dana: User = make_user("dana", otp=True)  # no realm-management role at all
    sam: User = make_user("sam", otp=True, groups=["/staff"])
    olga: User = make_user("olga", otp=True)  # outside staff
    delegate_group_members(admin, realm, dana.id, str(staff["id"]))
    token = personal_token(keycloak.url, realm, dana)
    body = {"seconds": 3600, "reason": "lost phone", "by": "dana"}

    outside = call(keycloak.url, realm, token, f"/users/{olga.id}/bypass/grant", body)
    assert outside.status_code == 403, outside.text
    assert record_fields(admin, realm, olga.id) == {} and _index_entries(admin, realm, olga.id) == []
    assert _events(admin, realm, olga.id, "bypass.grant") == []

    member = call(keycloak.url, realm, token, f"/users/{sam.id}/bypass/grant", body)
    assert member.status_code == 200, member.text
    # No kind in the body: the realm's default, an access pass (once), in this answer only.
    answer = member.json()
    assert (answer["kind"], answer["pass_use"]) == ("pass", "once") and GROUPED.match(answer["access_pass"]), answer
    rec = record_fields(admin, realm, sam.id)
    assert rec["marker"] == "true" and (rec["kind"], rec["pass_use"]) == ("pass", "once"), rec
    events = _events(admin, realm, sam.id, "bypass.grant")
    assert len(events) == 1 and events[0]["authDetails"]["userId"] == dana.id
    assert lock_roles(admin, realm) == []


def test_two_grants_at_once_one_wins_and_one_entry(
        twostep: Twostep, keycloak: Keycloak, admin: Admin, realm: str, make_user: MakeUser) -> None:
    setup_realm(twostep, "--backup-codes", "offered")
    hilde: User = make_user("hilde", otp=True)
    give_roles(admin, realm, hilde.id, HELPDESK_ROLES)
    carol: User = make_user("carol", otp=True)
    token = personal_token(keycloak.url, realm, hilde)
    results: list[requests.Response] = []
    start = threading.Barrier(4)

    def one(i: int) -> None:
        start.wait()
        results.append(call(keycloak.url, realm, token, f"/users/{carol.id}/bypass/grant",
                            {"seconds": 3600 + i * 60, "reason": f"race {i}", "by": "hilde"}))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409], [(r.status_code, r.text[:200]) for r in results]
    winner = next(r.json() for r in results if r.status_code == 200)
    rec = record_fields(admin, realm, carol.id)
    assert rec["until"] == winner["until"]
    creds = [c for c in admin.get(f"/{realm}/users/{carol.id}/credentials") if c["type"] == "twostep-bypass"]
    assert len(creds) == 1
    assert _index_entries(admin, realm, carol.id) == [f"{carol.id}.{creds[0]['id']}"]
    assert len(_events(admin, realm, carol.id, "bypass.grant")) == 1
    assert lock_roles(admin, realm) == []
