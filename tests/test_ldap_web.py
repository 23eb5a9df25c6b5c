"""A directory user (READ_ONLY federation) through the web pages: an admin grants and revokes a
bypass on the user's page, the user changes device on the security page; nothing reaches the
directory."""

from __future__ import annotations

import base64

import pyotp

from tests.conftest import Admin, Federate, User, otp_credential
from tests.support.bypass_helpers import record_fields
from tests.support.ldap import PASSWORDS, Directory
from tests.test_web_app import WebApp, action_form, csrf_of, flashes, people, post, web  # noqa: F401


def test_read_only_directory_user_through_the_pages(
    web: WebApp, people: tuple[User, User], admin: Admin, federate: Federate, directory: Directory  # noqa: F811
) -> None:
    boss, _ = people
    federate("READ_ONLY", realm_name=web.realm)
    entry_before, writes_before = directory.entry_dump("erin"), directory.writes()
    found = admin.get(f"/{web.realm}/users", username="erin", exact="true")
    assert len(found) == 1 and found[0].get("federationLink"), found
    secret = pyotp.random_base32()
    rep = admin.get(f"/{web.realm}/users/{found[0]['id']}")
    rep["credentials"] = [otp_credential(secret)]
    admin.put(f"/{web.realm}/users/{found[0]['id']}", rep)
    erin = User(found[0]["id"], "erin", PASSWORDS["erin"], secret)

    # The admin grants a bypass on erin's page: the record is written (a credential, provider mode).
    d = web.sign_in(boss, f"/admin/users/{erin.id}")
    assert d.page is not None and d.page.status == 200, d.page.summary() if d.page else ""
    apage = post(d, f"{web.url}/admin/users/{erin.id}/action",
                 {**action_form(d.page, "grant"), "kind": "password", "reason": "lost phone", "confirm": "yes"})
    assert any("set the bypass marker" in m for m in flashes(apage)), flashes(apage)
    assert record_fields(admin, web.realm, erin.id)["marker"] == "true"
    e = web.browser()
    assert e.open_url(f"{web.url}/auth/login?next=/security").kind == "login"
    page = e.submit({"username": "erin", "password": erin.password})
    assert page.url.startswith(web.url), "the directory password alone during the bypass: " + page.summary()
    page = post(d, f"{web.url}/admin/users/{erin.id}/action", {**action_form(apage, "revoke"), "confirm": "yes"})
    assert any("remove the bypass" in m for m in flashes(page)), flashes(page)
    assert record_fields(admin, web.realm, erin.id).get("marker") is None

    # erin changes device on the security page: the new one is enrolled first, then the old goes.
    s = web.sign_in(erin)
    assert s.page is not None
    page = post(s, web.url + "/security/change-device", {"csrf_token": csrf_of(s.page)})
    assert page.kind == "configure-totp", page.summary()
    new = base64.b32encode(page.form_with("totpSecret").fields["totpSecret"].encode()).decode()
    page = s.submit({"totp": pyotp.TOTP(new).now(), "userLabel": "new phone"}, form_field="totpSecret")
    assert any("removed 1 old device" in m for m in flashes(page)), flashes(page)
    otps = [c for c in admin.get(f"/{web.realm}/users/{erin.id}/credentials") if c["type"] == "otp"]
    assert [c["userLabel"] for c in otps] == ["new phone"]

    assert directory.entry_dump("erin") == entry_before and directory.writes() == writes_before
