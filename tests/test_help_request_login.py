""""I lost my phone: ask an administrator" (issue 16, the user's side), proven by real logins on a
real Keycloak with the provider JAR: the twostep-help-request authenticator that `twostep setup`
puts last into the second-factor subflow. The stored format is docs/formats.md, "Help requests".
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlparse, urlunparse

import pytest

from tests.conftest import Admin, Browser, Keycloak, MakeUser, Twostep, User
from tests.support.login import LoginDriver, Page
from tests.theme_pages import AXE_JS, CHROMIUM, CHROMIUM_ARGS, axe_violations

HELP = "twostep-help-request"
GROUP = "twostep-help-requests"
FLOW = "twostep browser"
TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
OPTION = "ask an administrator"


def setup(twostep: Twostep, *args: str, theme: bool = True) -> None:
    r = twostep("setup", "--no-service-client", *(("--theme", "twostep") if theme else ()), *args)
    assert r.code == 0, r.err + r.out


def mode(page: Page) -> str:
    """Which state of twostep-help-request.ftl the page is, "" when it is another page."""
    m = re.search(r'data-twostep-help="([a-z]+)"', page.text)
    return m.group(1) if m else ""


def requests_of(admin: Admin, realm: str, user_id: str) -> list[dict[str, Any]]:
    return [c for c in admin.get(f"/{realm}/users/{user_id}/credentials") if c["type"] == HELP]


def in_group(admin: Admin, realm: str, user_id: str) -> bool:
    return any(g["name"] == GROUP for g in admin.get(f"/{realm}/users/{user_id}/groups"))


def group_members(admin: Admin, realm: str) -> list[str]:
    groups = [g for g in admin.get(f"/{realm}/groups", search=GROUP) if g["name"] == GROUP]
    if not groups:
        return []
    return sorted(u["username"] for u in admin.get(f"/{realm}/groups/{groups[0]['id']}/members"))


def sessions(admin: Admin, realm: str, user_id: str) -> list[Any]:
    result: list[Any] = admin.get(f"/{realm}/users/{user_id}/sessions")
    return result


def help_execution(admin: Admin, realm: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [e for e in admin.get(f"/{realm}/authentication/flows/{quote(FLOW)}/executions")
            if e.get("providerId") == HELP]
    assert len(rows) == 1, rows
    return rows[0]


def to_help_form(b: LoginDriver, user: User, option: str = OPTION, theme: bool = True) -> Page:
    """Password, then "Try another way", then the option: the walk a user makes."""
    page = b.login(user.username, user.password)
    assert page.kind == "otp", page.summary()
    if theme:
        assert "twostep-ask-admin" in page.text, "the OTP page points to the new option"
    page = b.try_another_way()
    assert page.kind == "select-authenticator", page.summary()
    # Keycloak lists the user's own credentials first (and starts with the first): the help option
    # comes last, so it is never the default choice for a user with a device.
    if theme:
        options = re.findall(r'class="twostep-choice-title">([^<]*)<', page.text)
        assert len(options) >= 2 and option.lower() in options[-1].lower(), options
    return b.choose(option)


def ask(b: LoginDriver, user: User, message: str, theme: bool = True) -> Page:
    page = to_help_form(b, user, theme=theme)
    assert mode(page) == "form", page.summary()
    return b.submit({"message": message}, form_field="message")


def not_signed_in(b: LoginDriver, admin: Admin, realm: str, user: User) -> None:
    assert not b.logged_in() and b.code is None, "no redirect to the client with a code"
    assert sessions(admin, realm, user.id) == [], "no user session"


def test_user_asks_for_help_and_is_not_signed_in(twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin,
                                                 realm: str) -> None:
    setup(twostep)
    alice = make_user("alice", otp=True)
    b = browser()
    page = to_help_form(b, alice)
    assert mode(page) == "form", page.summary()
    assert 'maxlength="500"' in page.text and "tryAnotherWay" in page.text, "bounded, with a way back"

    # Too long (after trimming): the form again with an error, nothing stored.
    page = b.submit({"message": "x" * 501}, form_field="message")
    assert mode(page) == "form" and "at most 500 characters" in page.text, page.summary()
    assert requests_of(admin, realm, alice.id) == [] and not in_group(admin, realm, alice.id)

    # The way back lists the other options again; the option is still there.
    page = b.try_another_way()
    assert page.kind == "select-authenticator", page.summary()
    page = b.choose(OPTION)
    assert mode(page) == "form"

    t0 = int(time.time())
    page = b.submit({"message": "  Please call me:\r\n+49 30 1234\x07 " + " " * 40}, form_field="message")
    t1 = int(time.time())
    assert mode(page) == "sent", page.summary()
    assert "cannot sign in" in page.text and "What happens next" in page.text

    (cred,) = requests_of(admin, realm, alice.id)
    data = json.loads(cred["credentialData"])
    assert set(data) == {"asked_at", "message", "notified_at"}
    assert all(isinstance(v, str) for v in data.values())
    assert TIME.match(data["asked_at"]), data
    asked = time.mktime(time.strptime(data["asked_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert t0 - 5 <= asked <= t1 + 5, (data["asked_at"], t0, t1)
    assert data["message"] == "Please call me:  +49 30 1234", "trimmed, line break a space, BEL gone"
    assert data["notified_at"] == ""
    assert cred["userLabel"] == "twostep help request"
    assert in_group(admin, realm, alice.id) and group_members(admin, realm) == ["alice"]
    not_signed_in(b, admin, realm, alice)

    # Reloading the page after sending neither signs in nor stores a second request.
    page = b.open_url(page.url)
    assert not b.logged_in()
    assert len(requests_of(admin, realm, alice.id)) == 1

    # The OTP still works for a user who found the phone: asking never locks the device out.
    b2 = browser()
    assert b2.login(alice.username, alice.password).kind == "otp"
    b2.submit({"otp": alice.code()})
    assert b2.page is not None and b2.page.kind in ("done", "configure-recovery-codes"), b2.summary()


def test_second_request_while_one_is_open_is_refused(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                     admin: Admin,
                                                     realm: str) -> None:
    setup(twostep)
    admin.put(f"/{realm}", {"realm": realm, "internationalizationEnabled": True,
                            "supportedLocales": ["en", "de", "ru"], "defaultLocale": "en"})
    bob = make_user("bob", otp=True)
    rep = admin.get(f"/{realm}/users/{bob.id}")
    rep["attributes"] = {**(rep.get("attributes") or {}), "locale": ["de"]}
    admin.put(f"/{realm}/users/{bob.id}", rep)

    b = browser()
    page = to_help_form(b, bob, "einen Administrator fragen")
    page = b.submit({"message": "erste Anfrage"}, form_field="message")
    assert mode(page) == "sent", page.summary()
    (first,) = requests_of(admin, realm, bob.id)

    # Asking again: the page says so, in the user's language, with when and how long ago.
    b2 = browser()
    page = to_help_form(b2, bob, "einen Administrator fragen")
    assert mode(page) == "open", page.summary()
    asked = json.loads(first["credentialData"])["asked_at"]
    german_date = f"{asked[8:10]}.{asked[5:7]}.{asked[0:4]}"
    assert german_date in page.text and "UTC" in page.text, page.text[:3000]
    assert "gerade eben" in page.text or "vor " in page.text
    assert "Sie haben bereits um Hilfe gebeten" in page.text

    # Posting a message to that page anyway (a stale tab, a script): refused the same way.
    back = next(f for f in page.forms if "tryAnotherWay" in f.fields)
    page = b2._fetch("POST", back.action.replace("&amp;", "&"), {"message": "zweite Anfrage"})
    assert mode(page) == "open", page.summary()

    (still,) = requests_of(admin, realm, bob.id)
    assert still["id"] == first["id"] and still["credentialData"] == first["credentialData"], "asked_at unchanged"
    assert group_members(admin, realm) == ["bob"]
    not_signed_in(b2, admin, realm, bob)


def test_rate_limit_holds(twostep: Twostep, make_user: MakeUser, browser: Browser, admin: Admin, realm: str) -> None:
    # Keycloak's own keycloak.v2 theme here: the provider JAR ships the page and its texts for every
    # login theme (theme-resources/), so the option reads as words, not message keys.
    setup(twostep, "--help-rate", "2", theme=False)
    assert admin.get(f"/{realm}").get("loginTheme") in (None, "", "keycloak.v2")
    ex = help_execution(admin, realm)
    config = admin.get(f"/{realm}/authentication/config/{ex['authenticationConfig']}")["config"]
    assert config == {"twostep.help.max_per_hour": "2"}

    users = [make_user(f"user{i}", otp=True) for i in range(4)]
    outcome: dict[str, str] = {}
    for u in users:
        b = browser()
        page = ask(b, u, f"help {u.username}", theme=False)
        assert "twostepHelp" not in page.text and "twostep-help-request-display-name" not in page.text
        outcome[u.username] = mode(page)
        not_signed_in(b, admin, realm, u)
    sent = sorted(n for n, m in outcome.items() if m == "sent")
    limited = sorted(n for n, m in outcome.items() if m == "limited")
    assert len(sent) == 2 and len(limited) == 2, outcome
    stored = sorted(u.username for u in users if requests_of(admin, realm, u.id))
    assert stored == sent and group_members(admin, realm) == sent
    assert sum(len(requests_of(admin, realm, u.id)) for u in users) == 2

    # A second run of setup keeps the limit and plans nothing.
    r = twostep("setup", "--no-service-client", "--help-rate", "2", "--dry-run")
    assert r.code == 0 and "no changes" in r.out, r.out + r.err


def _with_execution(action: str, execution: str) -> str:
    u = urlparse(action.replace("&amp;", "&"))
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    q["execution"] = execution
    return urlunparse(u._replace(query=urlencode(q)))


def test_direct_post_without_the_password_step_is_refused(twostep: Twostep, make_user: MakeUser, browser: Browser,
                                                          admin: Admin,
                                                          realm: str) -> None:
    setup(twostep)
    carol = make_user("carol", otp=True)
    help_id = help_execution(admin, realm)["id"]

    attempts: list[Page] = []
    # 1. Fresh login page: POST the message straight to the help execution.
    b = browser()
    page = b.open()
    assert page.kind == "login"
    action = page.form_with("username").action
    attempts.append(b._fetch("POST", _with_execution(action, help_id), {"message": "let me in"}))
    # 2. The login form itself, switching to the help execution ("try another way" by hand).
    b = browser()
    page = b.open()
    action = page.form_with("username").action.replace("&amp;", "&")
    attempts.append(b._fetch("POST", action, {"authenticationExecution": help_id, "message": "let me in"}))
    # 3. The right username with a wrong password, then the help execution.
    b = browser()
    page = b.login(carol.username, "wrong-" + carol.password)
    assert page.kind == "login", page.summary()
    action = page.form_with("username").action
    attempts.append(b._fetch("POST", _with_execution(action, help_id), {"message": "let me in"}))
    attempts.append(b._fetch("POST", action.replace("&amp;", "&"),
                             {"authenticationExecution": help_id, "message": "let me in"}))

    for i, p in enumerate(attempts, 1):
        assert mode(p) not in ("sent", "form", "open", "limited"), f"attempt {i}: {p.summary()}"
        assert not b.logged_in()
    assert requests_of(admin, realm, carol.id) == []
    assert not in_group(admin, realm, carol.id) and group_members(admin, realm) == []
    assert sessions(admin, realm, carol.id) == []


def test_setup_plans_shows_and_removes_the_help_step(twostep: Twostep, admin: Admin, realm: str) -> None:
    dry = twostep("setup", "--no-service-client", "--dry-run")
    assert dry.code == 0 and f"{HELP}  ALTERNATIVE  <- added" in dry.out, dry.out
    setup(twostep)
    assert help_execution(admin, realm)["requirement"] == "ALTERNATIVE"
    policy = json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])
    assert policy["help_requests"] == "on" and policy["help_max_per_hour"] == 20
    again = twostep("setup", "--no-service-client", "--theme", "twostep", "--dry-run")
    assert "no changes" in again.out, again.out
    st = twostep("status")
    assert st.code == 0 and "flow 'twostep browser': the realm's flow 'browser' adapted" in st.out, st.out
    doc = twostep("doctor")
    assert f"[ok] authenticator {HELP}: present (help requests on)" in doc.out, doc.out

    # Someone deletes the step: status says so, setup puts it back.
    ex = help_execution(admin, realm)
    admin.delete(f"/{realm}/authentication/executions/{ex['id']}")
    st = twostep("status")
    assert st.code == 1 and "missing step 'twostep-help-request'" in st.out, st.out
    setup(twostep)
    assert twostep("status").code == 0

    # Off: the step goes, the policy says so, status is content.
    setup(twostep, "--help-requests", "off")
    assert not [e for e in admin.get(f"/{realm}/authentication/flows/{quote(FLOW)}/executions")
                if e.get("providerId") == HELP]
    assert json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])["help_requests"] == "off"
    assert twostep("status").code == 0
    assert twostep("teardown").code == 0
    assert FLOW not in {f["alias"] for f in admin.get(f"/{realm}/authentication/flows")}


def test_help_requests_on_needs_the_provider_mode(twostep: Twostep) -> None:
    r = twostep("setup", "--no-service-client", "--decide-with", "sync", "--help-requests", "on", "--dry-run")
    assert r.code != 0 and "needs the twostep provider" in r.err and "Traceback" not in r.err, r.err


@pytest.mark.browser
def test_new_pages_pass_axe_core(twostep: Twostep, make_user: MakeUser, keycloak: Keycloak, admin: Admin, realm: str,
                                 tmp_path: Path) -> None:
    """Screenshots go to the test's folder; with TWOSTEP_WRITE_SCREENSHOTS=1 to docs/screenshots/
    (the committed help-request-*.png), so an ordinary run leaves the checkout clean."""
    from playwright.sync_api import sync_playwright

    out = SCREENSHOTS if os.environ.get("TWOSTEP_WRITE_SCREENSHOTS") == "1" else tmp_path

    assert AXE_JS.is_file(), f"{AXE_JS} missing: run `npm ci` in the repository root"
    setup(twostep)
    dora = make_user("dora", otp=True)
    url = LoginDriver(keycloak.url, realm).auth_url()
    problems: list[str] = []
    shots: list[str] = []

    def check(page: Any, name: str) -> None:
        page.wait_for_load_state("load")
        target = out / f"help-request-{name}.png"
        page.screenshot(path=str(target), full_page=True)
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        shots.append(name)
        for v in axe_violations(page):
            targets = [n.get("target") for n in v.get("nodes", [])][:3]
            problems.append(f"{name}: {v['id']} ({v.get('impact')}): {v['help']} {targets}")

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.fill("#username", dora.username)
            page.fill("#password", dora.password)
            page.click("#kc-login")
            page.wait_for_load_state("load")
            check(page, "otp")
            page.click("#twostep-ask-admin")
            page.wait_for_load_state("load")
            check(page, "select")
            page.get_by_role("button", name=re.compile("ask an administrator", re.I)).click()
            page.wait_for_load_state("load")
            assert page.locator("[data-twostep-help=form]").count() == 1
            check(page, "form")
            page.fill("#twostep-help-message", "x" * 480 + " too long? no")
            page.evaluate("document.getElementById('twostep-help-message').removeAttribute('maxlength')")
            page.fill("#twostep-help-message", "x" * 501)
            page.click("#twostep-help-send")
            page.wait_for_load_state("load")
            assert page.locator("#input-error-message").count() == 1
            check(page, "form-error")
            page.fill("#twostep-help-message", "Please call me on my office phone.")
            page.click("#twostep-help-send")
            page.wait_for_load_state("load")
            assert page.locator("[data-twostep-help=sent]").count() == 1
            check(page, "sent")

            second = chromium.new_page(viewport={"width": 390, "height": 844})
            second.goto(url)
            second.fill("#username", dora.username)
            second.fill("#password", dora.password)
            second.click("#kc-login")
            second.wait_for_load_state("load")
            second.click("#twostep-ask-admin")
            second.wait_for_load_state("load")
            second.get_by_role("button", name=re.compile("ask an administrator", re.I)).click()
            second.wait_for_load_state("load")
            assert second.locator("[data-twostep-help=open]").count() == 1
            check(second, "open-mobile")
        finally:
            chromium.close()
    assert not problems, "\n".join(problems)
    assert shots == ["otp", "select", "form", "form-error", "sent", "open-mobile"]
    assert len(requests_of(admin, realm, dora.id)) == 1
    assert sessions(admin, realm, dora.id) == []
