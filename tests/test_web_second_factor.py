"""Issue 22, part 7: the admin pages need the signed-in admin's own sign-in to have used a second
factor. Keycloak's record of what the session completed reaches the pages in the ID token
(twostep-web's mapper, web_oidc_client.SIGN_IN_STEPS_MAPPER); a bypassed admin, who signed in with the
password alone, is refused every admin page and cannot change anything."""

from __future__ import annotations

import re

from tests.conftest import Admin, MakeUser, Twostep, User
from tests.support.bypass_helpers import record_fields
from tests.test_web_app import WebApp, make_admin, post, web  # noqa: F401  (web: the fixture)

TITLE = "Sign in with your second factor"


def test_admin_who_used_the_code_uses_the_pages(web: WebApp, make_user: MakeUser, admin: Admin) -> None:  # noqa: F811
    boss: User = make_user("boss", otp=True)
    make_admin(admin, web.realm, boss)
    d = web.sign_in(boss, "/admin/users")  # password, then the code
    assert d.page is not None and d.page.status == 200 and TITLE not in d.page.text, d.summary()
    assert boss.id in d.page.text


def test_bypassed_admin_is_refused_and_changes_nothing(web: WebApp, make_user: MakeUser, admin: Admin,  # noqa: F811
                                                       twostep: Twostep) -> None:
    bea: User = make_user("bea", otp=True)
    make_admin(admin, web.realm, bea)
    eve: User = make_user("eve", otp=True)
    r = twostep("bypass", "grant", "bea", "--for", "1h", "--reason", "lost phone", "--password")
    assert r.code == 0, r.err
    d = web.browser()
    page = d.open_url(f"{web.url}/auth/login?next=/admin/users/{eve.id}")
    page = d.submit({"username": bea.username, "password": bea.password})
    assert page.url.startswith(web.url), "the bypass let her in with the password alone: " + page.summary()
    assert page.status == 403 and TITLE in page.text, page.summary()
    for path in ("/admin", "/admin/users", f"/admin/users/{eve.id}", "/admin/audit"):
        page = d.open_url(web.url + path)
        assert page.status == 403 and TITLE in page.text, (path, page.summary())
    # A change, with a valid form token from her own page, is refused the same way.
    own = d.open_url(web.url + "/security")
    assert own.status == 200, own.summary()
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', own.text)
    assert csrf, own.summary()
    page = post(d, f"{web.url}/admin/users/{eve.id}/action", {
        "csrf_token": csrf.group(1), "action": "grant", "user_id": eve.id, "preset": "1h",
        "reason": "let me", "confirm": "yes"})
    assert page.status == 403 and TITLE in page.text, page.summary()
    assert record_fields(admin, web.realm, eve.id) == {}, "nothing changed"
    # Her bypass ended: a sign-in with the code opens the pages again.
    assert twostep("bypass", "revoke", "bea").code == 0
    d = web.sign_in(bea, f"/admin/users/{eve.id}")
    assert d.page is not None and d.page.status == 200 and TITLE not in d.page.text, d.summary()


def test_setup_adds_the_mapper_to_a_client_made_before(web: WebApp, twostep: Twostep, admin: Admin) -> None:  # noqa: F811
    client = admin.get(f"/{web.realm}/clients", clientId="twostep-web")[0]
    (mapper,) = [m for m in client.get("protocolMappers") or [] if m["name"] == "twostep sign-in steps"]
    admin.delete(f"/{web.realm}/clients/{client['id']}/protocol-mappers/models/{mapper['id']}")
    args = ("setup", "--no-service-client", "--web-url", web.url, "--backup-codes", "offered")
    dry = twostep(*args, "--dry-run")
    assert "protocol mapper 'twostep sign-in steps'" in dry.out, dry.out
    assert twostep(*args).code == 0
    client = admin.get(f"/{web.realm}/clients", clientId="twostep-web")[0]
    assert [m["name"] for m in client["protocolMappers"]].count("twostep sign-in steps") == 1
    assert "twostep-web" not in twostep(*args, "--dry-run").out, "a second run changes nothing"
