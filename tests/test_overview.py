"""Issue 25, the admin's view, against the real Keycloak: the demo alive (a sync pass before the
pages, the overview shows numbers), coverage on the overview equal to a direct count through
Keycloak (in scope, enrolled, in grace, overdue, bypassed, by group, the trend), the CSV exports
and `twostep report` agreeing with it, and the pages in the reader's language."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pyotp
import pytest
from twostep import pass_summary
from twostep.audit import sink_for
from twostep.clock import fixed_clock
from twostep.enforcement import grace_deadline
from twostep.lock import lease_seconds
from twostep.policy import utc_iso
from twostep.realm_policy import policy_of
from twostep.settings import Settings
from twostep.sync.reconcile import Options, run_once
from twostep.web.app import create_app
from twostep.web.auth import WebConfig
from werkzeug.serving import make_server

from tests.conftest import Admin, Keycloak, MakeUser, Twostep, User
from tests.support.bypass_helpers import client
from tests.support.locale import enable_locales, set_user_locale
from tests.test_web_app import (  # noqa: F401 - fixtures
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORTS,
    WebApp,
    _pw_sign_in,
    free_port,
    make_admin,
    people,
    shoot,
    web,
)
from tests.theme_pages import axe_violations

ROOT = Path(__file__).resolve().parent.parent


def stat(page: str, name: str) -> str:
    m = re.search(rf'<div class="stat[^"]*" id="n-{name}">(?:<a [^>]*>)?([^<]*)<', page)
    assert m, f"no {name} number on the page"
    return m.group(1).strip()


@pytest.fixture
def demo_realm(keycloak: Keycloak, admin: Admin) -> Iterator[str]:
    name = "demo-" + uuid.uuid4().hex[:8]
    yield name
    try:
        admin.delete(f"/{name}")
    except AssertionError:
        pass


def cli(keycloak: Keycloak, realm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twostep", *args], env=keycloak.env(realm), capture_output=True,
                          text=True, timeout=300)


def test_demo_script_runs_a_pass_and_keeps_sync_watching() -> None:
    """deploy/local/demo.sh: a first pass before the pages, `sync --watch` beside them, stopped with them."""
    text = (ROOT / "deploy" / "local" / "demo.sh").read_text()
    first, watch, pages = (text.index("twostep sync --realm demo >"), text.index("twostep sync --realm demo --watch &"),
                           text.index("twostep web "))
    assert text.index("twostep demo ") < first < watch < pages
    assert "trap stop_sync EXIT" in text and 'kill "$sync_pid"' in text
    assert "exec " not in text.split("twostep demo ", 1)[1], "exec would drop the trap that stops the sync"
    assert "Ctrl-C stops the pages and the sync" in " ".join((ROOT / "README.md").read_text().split())


@pytest.mark.browser
def test_demo_overview_shows_numbers(keycloak: Keycloak, demo_realm: str, tmp_path: Path) -> None:
    """What demo.sh does before the pages come up (the demo, one sync pass), then the overview signed
    in as the demo's admin (manage-users, not realm-admin): numbers, not "not known"."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret_file = tmp_path / "web.secret"
    made = cli(keycloak, demo_realm, "demo", "--realm", demo_realm, "--web-url", url, "--web-secret-file",
               str(secret_file))
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  admin "))
    otp_uri = lines[at + 1].split("(shown once): ", 1)[1]
    sync = cli(keycloak, demo_realm, "sync", "--realm", demo_realm)
    assert sync.returncode == 0, sync.stderr
    app = create_app(Settings(url=keycloak.url, realm=demo_realm),
                     WebConfig(public_url=url, client_secret=secret_file.read_text().strip(),
                               token_dir=str(tmp_path / "tokens")))
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:  # a real browser, as a newcomer would look
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = chromium.new_context(viewport=VIEWPORTS["desktop"]).new_page()
                page.goto(f"{url}/auth/login?next=/admin")
                page.fill("#username", "admin")
                page.fill("#password", "admin-demo-pass")
                page.click("#kc-login")
                page.wait_for_selector("#otp")
                totp = pyotp.parse_uri(otp_uri)
                assert isinstance(totp, pyotp.TOTP), otp_uri
                page.fill("#otp", totp.now())
                page.click("#kc-login")
                # The demo's policy asks for backup codes after the device: saved, as a newcomer would.
                page.wait_for_selector("#kcRecoveryCodesConfirmationCheck, #coverage")
                if page.locator("#kcRecoveryCodesConfirmationCheck").count():
                    page.check("#kcRecoveryCodesConfirmationCheck")
                    page.click("#saveRecoveryAuthnCodesBtn")
                page.wait_for_url(f"{url}/admin*")
                text = page.content()
                main = page.inner_text("main")
            finally:
                chromium.close()
        assert "No sync pass yet" not in main and "not known" not in main.lower(), main
        # alice, bob, carol, admin: everyone is in scope (no grace period); three have a device, bob is
        # asked for one at his next sign-in.
        assert (stat(text, "in-scope"), stat(text, "enrolled"), stat(text, "overdue")) == ("4", "3", "1"), main
        assert stat(text, "in-grace") == "0" and stat(text, "bypassed") == "0"
        assert "Policy: in place" in main
    finally:
        server.shutdown()
        server.server_close()


def webauthn_credential() -> dict[str, Any]:
    """A security key as Keycloak stores one (the credential data of a registration), for counting."""
    return {"type": "webauthn", "userLabel": "key", "secretData": "{}", "credentialData": json.dumps({
        "aaguid": "00000000-0000-0000-0000-000000000000", "credentialId": "dGVzdC1rZXk",
        "credentialPublicKey": "pQECAyYgASFYIA", "counter": 0, "attestationStatementFormat": "none",
        "transports": []})}


def add_credential(admin: Admin, realm: str, user: User, cred: dict[str, Any]) -> None:
    rep = admin.get(f"/{realm}/users/{user.id}")
    rep["credentials"] = [cred]
    admin.put(f"/{realm}/users/{user.id}", rep)


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_coverage_by_group_matches_keycloak_and_exports(
        web: WebApp, people: tuple[User, User], admin: Admin, make_user: MakeUser, twostep: Twostep,  # noqa: F811
        keycloak: Keycloak) -> None:
    boss, _eve = people
    realm = web.realm
    for grp in ("staff", "ops"):
        admin.post(f"/{realm}/groups", {"name": grp})
    staff = admin.get(f"/{realm}/group-by-path/staff")
    admin.post(f"/{realm}/groups/{staff['id']}/children", {"name": "berlin"})
    applied = twostep("setup", "--no-service-client", "--web-url", web.url, "--enforce", "group:staff", "--enforce",
                      "group:ops", "--grace-days", "1", "--backup-codes", "offered")
    assert applied.code == 0, applied.err
    ann = make_user("ann", otp=True, groups=["/staff", "/ops"])
    ben = make_user("ben", groups=["/staff/berlin"])
    cat = make_user("cat", groups=["/staff"])
    dan = make_user("dan", groups=["/ops"])
    eva = make_user("eva", otp=True, groups=["/ops"])
    kim = make_user("kim", groups=["/staff"])
    add_credential(admin, realm, kim, webauthn_credential())
    make_user("out")  # in no group: out of scope
    # A comma in cat's name and a comma and quotes in dan's bypass reason (Keycloak refuses a quote in a
    # name): the export quotes them.
    rep = admin.get(f"/{realm}/users/{cat.id}")
    rep["lastName"] = "Neil, Jr"
    admin.put(f"/{realm}/users/{cat.id}", rep)
    assert twostep("bypass", "grant", "dan", "--for", "7d", "--reason", 'new phone, "ticket 7"').code == 0
    assert twostep("bypass", "grant", "eva", "--for", "25h", "--reason", "trip").code == 0

    # The pass's clock one day on, between ben's deadline and cat's (ben was made first): ben is
    # overdue, cat still in grace; eva's bypass (25 h) ends within 24 h, dan's (7 d) does not.
    policy = policy_of(admin.get(f"/{realm}")).policy
    ben_due = grace_deadline(admin.get(f"/{realm}/users/{ben.id}"), policy)
    cat_due = grace_deadline(admin.get(f"/{realm}/users/{cat.id}"), policy)
    assert ben_due < cat_due
    now = ben_due + (cat_due - ben_due) / 2
    kc = client(keycloak.url, realm)
    summary, _ = run_once(kc, now, sink_for(None), "sync: test", lease_seconds(kc.settings), Options(enforce=False))
    assert summary.ok, summary.as_dict()
    (group,) = admin.get(f"/{realm}/groups", search="twostep-state", exact="true", briefRepresentation="false")
    stored = json.loads(pass_summary.joined(group["attributes"][pass_summary.ATTR]) or "")

    # The direct count through Keycloak: members of staff (with staff/berlin) and ops, their credentials.
    members: dict[str, set[str]] = {}
    for path in ("staff", "ops"):
        top = admin.get(f"/{realm}/group-by-path/{path}")
        ids = {u["id"] for u in admin.get(f"/{realm}/groups/{top['id']}/members")}
        for child in admin.get(f"/{realm}/groups/{top['id']}/children"):
            ids |= {u["id"] for u in admin.get(f"/{realm}/groups/{child['id']}/members")}
        members[path] = ids
    in_scope = members["staff"] | members["ops"]
    device = {uid for uid in in_scope
              if any(c["type"] in ("otp", "webauthn") for c in admin.get(f"/{realm}/users/{uid}/credentials"))}
    assert device == {ann.id, eva.id, kim.id} and in_scope == device | {ben.id, cat.id, dan.id}
    counts = stored["counts"]
    assert (counts["users_in_scope"], counts["enrolled"], counts["enrolled_otp"], counts["enrolled_key"]) == \
        (len(in_scope), len(device), 2, 1), counts
    assert (counts["in_grace"], counts["overdue"], counts["bypassed_not_enrolled"], counts["not_enrolled"]) == \
        (1, 1, 1, 3), counts
    assert counts["next_deadline"] == utc_iso(cat_due)
    assert stored["bypassed_active"] == 2 and stored["ending_24h"] == 1, stored
    groups = {g["name"]: g for g in stored["groups"]}
    assert groups["/staff"] == {"name": "/staff", "in_scope": len(members["staff"]), "enrolled": 2, "in_grace": 1,
                                "overdue": 1, "bypassed": 0, "complete": True}, groups
    assert groups["/ops"] == {"name": "/ops", "in_scope": len(members["ops"]), "enrolled": 2, "in_grace": 0,
                              "overdue": 0, "bypassed": 1, "complete": True}, groups
    assert stored["history"] == [[now.astimezone(UTC).date().isoformat(), 6, 3]]

    # The overview (its clock the pass's): the numbers, the groups, the charts with their numbers in words.
    web.app.extensions["twostep"].clock = fixed_clock(now)
    d = web.sign_in(boss, "/admin")
    r = d.s.get(web.url + "/admin", timeout=30)
    page = r.text
    assert [stat(page, n) for n in ("in-scope", "enrolled", "in-grace", "overdue", "bypassed")] == \
        ["6", "3", "1", "1", "2"], page
    assert "Ending in the next 24 hours: 1" in page and "OTP app: 2, security key: 1, backup codes: 0" in page
    assert int(r.headers["X-Keycloak-Calls"]) <= 5, "no scan per page view"
    rows = re.findall(r'<tr class="group-row">\s*<td>([^<]*)</td>((?:<td class="n"[^>]*>\d+</td>)+)', page)
    assert [(name, re.findall(r">(\d+)<", cells)) for name, cells in rows] == [
        ("/ops", ["3", "2", "0", "0", "1"]), ("/staff", ["4", "2", "1", "1", "0"])], rows
    assert re.search(r'<svg class="chart bar" role="img" aria-labelledby="(bar\d+)"[^>]*><title id="\1">Users in '
                     r"scope: Enrolled 3; In grace period 1; Overdue 1; Bypassed, no device 1</title>", page), page
    day = now.astimezone(UTC).date().isoformat()
    assert "<title id=" in page and f"{day}: enrolled 3, in scope 6</title>" in page
    assert "<script" not in page

    # The exports: one header row, one row per user, the same numbers as the overview.
    res = d.s.get(web.url + "/admin/export/not-enrolled.csv", timeout=30)
    assert res.status_code == 200 and res.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in res.headers["Content-Disposition"]
    text = res.content.decode("utf-8")
    assert text.splitlines()[0] == "username,email,first_name,last_name,state,deadline,asked_at_next_sign_in"
    assert '"Neil, Jr"' in text, text
    got = parse_csv(text)
    assert sorted(x["username"] for x in got) == ["ben", "cat", "dan"] and len(got) == counts["not_enrolled"]
    by = {x["username"]: x for x in got}
    assert by["cat"]["last_name"] == "Neil, Jr" and by["cat"]["state"] == "in grace"
    assert by["ben"]["state"] == "overdue" and by["ben"]["deadline"] == utc_iso(ben_due)
    assert by["dan"]["state"] == "bypassed"
    overdue = parse_csv(d.s.get(web.url + "/admin/export/overdue.csv", timeout=30).content.decode())
    assert [x["username"] for x in overdue] == ["ben"] and len(overdue) == int(stat(page, "overdue"))
    raw = d.s.get(web.url + "/admin/export/bypassed.csv", timeout=30).content.decode()
    assert '"new phone, ""ticket 7"""' in raw, raw
    bypassed = parse_csv(raw)
    assert {x["username"]: x["reason"] for x in bypassed}["dan"] == 'new phone, "ticket 7"'
    assert sorted(x["username"] for x in bypassed) == ["dan", "eva"] and len(bypassed) == int(stat(page, "bypassed"))
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", x["until"]) for x in bypassed), bypassed
    assert d.s.get(web.url + "/admin/export/everyone.csv", timeout=30).status_code == 404

    # The CLI: the same lists (its clock is the real one: not-enrolled does not depend on it).
    out = twostep("report", "not-enrolled", "--csv")
    assert out.code == 0, out.err
    assert sorted(x["username"] for x in parse_csv(out.out)) == ["ben", "cat", "dan"]
    js = twostep("report", "bypassed", "--json")
    assert js.code == 0 and sorted(x["username"] for x in json.loads(js.out)) == ["dan", "eva"], js.err
    text_out = twostep("report", "not-enrolled")
    assert text_out.code == 0 and "3 user(s)" in text_out.err and "ben" in text_out.out
    bad = twostep("report", "everyone")
    assert bad.code != 0 and "Traceback" not in bad.err


ENGLISH = re.compile(r"\b(the|and|your|you|yet|not|with|users?|scope|enrolled|bypass\w*|device|left|"
                     r"requests?|overview|policy|sign|grace|overdue|pass|known|open|first|ago|until|by|of)\b", re.I)


def visible_text(page: str) -> str:
    """The words a reader sees: no tags, no <code> (commands), no <title> of the document head."""
    body = page.split("<body>", 1)[1]
    body = re.sub(r"<code>.*?</code>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_overview_and_security_page_in_de_and_ru(web: WebApp, people: tuple[User, User],  # noqa: F811
                                                admin: Admin, twostep: Twostep, make_user: MakeUser) -> None:
    """The language from the signed-in user's `locale` (boss: de, ivan: ru), else Accept-Language (eve: ru)."""
    boss, eve = people
    ivan = make_user("ivan", otp=True)
    make_admin(admin, web.realm, ivan)
    enable_locales(admin, web.realm)
    set_user_locale(admin, web.realm, boss.id, "de")
    set_user_locale(admin, web.realm, ivan.id, "ru")
    assert twostep("sync").code == 0
    names = (boss.username, eve.username, ivan.username, web.realm)

    d = web.sign_in(boss, "/admin")
    d.s.headers["Accept-Language"] = "ru-RU,ru;q=0.9"  # his own locale goes first
    for path, title in (("/admin", "Abdeckung"), ("/security", "Meine zweistufige Anmeldung"),
                        ("/admin/users", "Benutzername, E-Mail oder Name")):
        text = d.s.get(web.url + path, timeout=30).text
        assert '<html lang="de">' in text and title in text, text
        assert not english_words(text, names), (english_words(text, names), path)

    d = web.sign_in(ivan, "/admin")
    for path, title in (("/admin", "Охват"), ("/security", "Мой двухэтапный вход")):
        text = d.s.get(web.url + path, timeout=30).text
        assert '<html lang="ru">' in text and title in text, text
        assert not english_words(text, names), (english_words(text, names), path)

    d = web.sign_in(eve, "/security")  # no locale of her own: the browser's
    d.s.headers["Accept-Language"] = "ru-RU,ru;q=0.9,en;q=0.5"
    text = d.s.get(web.url + "/security", timeout=30).text
    assert '<html lang="ru">' in text and "Мой двухэтапный вход" in text
    assert not english_words(text, names), english_words(text, names)
    d.s.headers["Accept-Language"] = "de-CH"
    assert "Meine zweistufige Anmeldung" in d.s.get(web.url + "/security", timeout=30).text


def english_words(page: str, names: tuple[str, ...]) -> list[str]:
    words = visible_text(page)
    for n in names:
        words = words.replace(n, " ")
    return list(ENGLISH.findall(words))


@pytest.mark.browser
def test_browser_every_admin_and_security_page_passes_axe_at_both_widths(
        web: WebApp, people: tuple[User, User], admin: Admin, make_user: MakeUser, twostep: Twostep) -> None:  # noqa: F811
    """axe-core: 0 violations on every admin and security page at 1280 and 390 px, in en and de; no
    word broken inside a status cell; the overview's screenshots in en and de."""
    from playwright.sync_api import sync_playwright

    boss, eve = people
    otto = make_user("otto", otp=True)
    make_admin(admin, web.realm, otto)
    enable_locales(admin, web.realm)
    set_user_locale(admin, web.realm, otto.id, "de")
    admin.post(f"/{web.realm}/groups", {"name": "staff"})
    make_user("newbie", groups=["/staff"])
    make_user("nina", otp=True, groups=["/staff"])
    assert twostep("bypass", "grant", "eve", "--for", "1d", "--reason", "trip").code == 0
    assert twostep("sync").code == 0
    paths = ["/admin", "/admin/users", f"/admin/users/{eve.id}", f"/admin/users/{eve.id}/sessions", "/admin/help",
             "/admin/audit", "/security"]
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for who, lang in ((boss, "en"), (otto, "de")):
                # bypass_csp: the pages' CSP (no inline script) would refuse axe-core's injected script.
                page = chromium.new_context(viewport=VIEWPORTS["desktop"], bypass_csp=True).new_page()
                _pw_sign_in(page, web, who, "/admin")
                assert page.locator("html").get_attribute("lang") == lang
                assert page.locator("#groups tr.group-row").count() == 1, "the largest group, with its bar"
                shoot(page, "overview" if lang == "en" else f"overview-{lang}")
                for path in paths:
                    page.goto(web.url + path)
                    for label, size in VIEWPORTS.items():
                        page.set_viewport_size(size)
                        found = axe_violations(page)
                        assert found == [], (path, label, lang, [(v["id"], v["help"], [n["target"] for n in v["nodes"]])
                                                                 for v in found])
                        # "ok" never breaks into "o" / "k": every status cell's words on one line.
                        lines = page.eval_on_selector_all(
                            "td.status > span", "els => els.map(e => e.getClientRects().length)")
                        assert all(n == 1 for n in lines), (path, label, lines)
                        wide = page.evaluate("document.documentElement.scrollWidth")
                        assert wide <= size["width"], (path, label, "wider than the screen", wide)
                    page.set_viewport_size(VIEWPORTS["desktop"])
        finally:
            chromium.close()
