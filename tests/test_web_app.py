"""The web app through the real OIDC sign-in against the real Keycloak: admin vs non-admin, CSRF,
admin actions changing Keycloak as the CLI would, and bad form input changing nothing."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import pyotp
import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from twostep import pass_summary, recovery_codes
from twostep.clock import fixed_clock
from twostep.enforcement import grace_deadline
from twostep.policy import utc_iso
from twostep.realm_policy import policy_of
from twostep.settings import Settings
from twostep.web.app import create_app
from twostep.web.auth import WebConfig
from werkzeug.serving import make_server

from tests.conftest import Admin, Keycloak, MakeUser, Twostep, User, otp_credential
from tests.support.bypass_helpers import client, grant_ending_at, record_fields, utcnow
from tests.support.locale import enable_locales, set_user_locale
from tests.support.login import LoginDriver, Page

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WebApp:
    url: str
    realm: str
    kc_url: str
    audit: Path
    app: Flask
    tokens: Path

    def browser(self) -> LoginDriver:
        return LoginDriver(self.kc_url, self.realm, client_id="twostep-web")

    def sign_in(self, user: User, path: str = "/security") -> LoginDriver:
        d = self.browser()
        page = d.open_url(f"{self.url}/auth/login?next={path}")
        assert page.kind == "login", page.summary()
        page = d.submit({"username": user.username, "password": user.password})
        if page.kind == "otp":
            page = d.submit({"otp": user.code()})
        assert page.url.startswith(self.url), page.summary()
        return d


@pytest.fixture
def web(keycloak: Keycloak, realm: str, twostep: Twostep, tmp_path: Path) -> Iterator[WebApp]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret_file = tmp_path / "web.secret"
    # Backup codes offered at enrollment (not required): the signed-in admins here have OTP and no codes.
    r = twostep("setup", "--no-service-client", "--web-url", url, "--web-secret-file", str(secret_file),
                "--backup-codes", "offered")
    assert r.code == 0, r.err
    assert "twostep-web" in r.out and secret_file.stat().st_mode & 0o077 == 0
    again = twostep("setup", "--no-service-client", "--web-url", url, "--backup-codes", "offered", "--dry-run")
    assert "twostep-web" not in again.out, "the web client step must be idempotent"
    audit = tmp_path / "audit.jsonl"
    # No CLI credentials at all: the security page can only act through twostep-web's own service account.
    settings = Settings(url=keycloak.url, realm=realm, audit_file=str(audit))
    app = create_app(settings, WebConfig(public_url=url, client_secret=secret_file.read_text().strip(),
                                         token_dir=str(tmp_path / "tokens")))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebApp(url, realm, keycloak.url, audit, app, tmp_path / "tokens")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def make_admin(admin: Admin, realm: str, user: User) -> None:
    rm = admin.get(f"/{realm}/clients", clientId="realm-management")[0]
    role = admin.get(f"/{realm}/clients/{rm['id']}/roles/realm-admin")
    admin.post(f"/{realm}/users/{user.id}/role-mappings/clients/{rm['id']}", [role])


def action_form(page: Page, action: str) -> dict[str, str]:
    for f in page.forms:
        if f.fields.get("action") == action:
            return dict(f.fields)
    raise AssertionError(f"no {action!r} form on {page.summary()}")


def post(d: LoginDriver, url: str, data: dict[str, str]) -> Page:
    return d._fetch("POST", url, data)


def flashes(page: Page) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<div class="flash [a-z]+" role="status">(.*?)</div>', page.text)]


def attrs(admin: Admin, realm: str, user: User) -> dict[str, list[str]]:
    return dict(admin.get(f"/{realm}/users/{user.id}").get("attributes") or {})


@pytest.fixture
def people(admin: Admin, realm: str, make_user: MakeUser, web: WebApp) -> tuple[User, User]:
    boss = make_user("boss", otp=True)
    make_admin(admin, realm, boss)
    eve = make_user("eve", otp=True)
    return boss, eve


def serve(app: Any) -> tuple[str, Any]:
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


def test_health_and_metrics(web: WebApp) -> None:
    d = web.browser()
    assert d.open_url(web.url + "/healthz").text == "ok\n"
    # Issue 14 item 3: the pages' port never answers /metrics; the metrics app (its own listener).
    assert d.open_url(web.url + "/metrics").status == 404
    from twostep.web.app import metrics_app

    url, server = serve(metrics_app(web.app))
    try:
        r = requests.get(url + "/metrics", timeout=10)
        assert r.status_code == 200 and "twostep_web_requests" in r.text and 'endpoint="healthz"' in r.text
        assert requests.get(url + "/security", timeout=10).status_code == 404, "only /metrics on that port"
    finally:
        server.shutdown()
        server.server_close()


def test_admin_vs_non_admin(web: WebApp, people: tuple[User, User]) -> None:
    boss, eve = people
    d = web.sign_in(eve, "/admin/users")
    assert d.page is not None and d.page.status == 403, d.summary()
    page = d.open_url(web.url + "/security")
    assert page.status == 200 and "My two-step sign-in" in page.text and "phone" in page.text
    assert "totpSecret" not in page.text

    d = web.sign_in(boss, "/admin/users?q=eve")
    assert d.page is not None and d.page.status == 200, d.summary()
    assert f"/admin/users/{eve.id}" in d.page.text and f"/admin/users/{boss.id}" not in d.page.text
    assert d.open_url(web.url + "/admin").status == 200
    # Issue 17: the users page costs at most 3 Keycloak calls whatever the page size: one list call
    # (full representations), one realm read (the policy names the record store), and in provider
    # mode one read of the bypass index group's members; the index group's id is looked up on the
    # first list view of the app's life only.
    first = d.s.get(web.url + "/admin/users?page=1", timeout=30)
    r = d.s.get(web.url + "/admin/users?page=1", timeout=30)
    shown = len(user_rows(r.text))
    assert r.status_code == 200 and shown >= 2 and r.headers["X-Keycloak-Calls"] == "3", r.headers
    assert int(first.headers["X-Keycloak-Calls"]) <= 4
    r = d.s.get(web.url + "/admin/users?q=eve", timeout=30)
    assert len(user_rows(r.text)) == 1 and r.headers["X-Keycloak-Calls"] == "3"
    r = d.s.get(f"{web.url}/admin/users/{eve.id}", timeout=30)
    assert r.status_code == 200 and r.headers["X-Keycloak-Calls"] == "3"
    r = d.s.get(f"{web.url}/admin/users/{eve.id}/sessions", timeout=30)
    assert r.status_code == 200 and '<p id="session-count">1 active</p>' in r.text, r.text
    assert r.headers["X-Keycloak-Calls"] == "2"


def user_rows(text: str) -> dict[str, str]:
    """The users table's rows (or the overview's listed users): user id -> the row's HTML."""
    return {m.group(1): m.group(0) for m in re.finditer(
        r'<tr[^>]*>\s*<td><a href="/admin/users/([0-9a-f-]{36})">.*?</tr>', text, re.S)}


def store_codes(admin: Admin, realm: str, user: User, total: int, remaining: int) -> None:
    """Store a backup code set of `total` codes of which only the last `remaining` are left, as
    Keycloak keeps it after `total - remaining` codes were used (numbers 1..total, lowest asked first)."""
    codes = [f"CODE-{i:04d}-TEST" for i in range(1, total + 1)]
    rep = recovery_codes.credential_representation(codes, int(time.time() * 1000), None)
    rep["credentialData"] = recovery_codes.credential_data_json(total, remaining)
    rep["secretData"] = json.dumps({"codes": [
        {"number": i, "encodedHashedValue": recovery_codes.hash_code(c)}
        for i, c in enumerate(codes, 1) if i > total - remaining]}, separators=(",", ":"))
    current = admin.get(f"/{realm}/users/{user.id}")
    current["credentials"] = [rep]
    admin.put(f"/{realm}/users/{user.id}", current)
    stored = [c for c in admin.get(f"/{realm}/users/{user.id}/credentials") if c["type"] == "recovery-authn-codes"]
    assert len(stored) == 1 and recovery_codes.parse_credential(stored[0]).remaining == remaining, stored


def test_overview_lists_not_enrolled_and_low_on_codes(web: WebApp, people: tuple[User, User], admin: Admin,
                                                      make_user: MakeUser, twostep: Twostep) -> None:
    boss, eve = people
    res = twostep("setup", "--no-service-client", "--web-url", web.url, "--grace-days", "14",
                  "--backup-codes", "offered")
    assert res.code == 0, res.err
    newbie = make_user("newbie")  # in scope (everyone), no OTP device
    carol = make_user("carol", otp=True)
    store_codes(admin, web.realm, carol, total=5, remaining=2)
    store_codes(admin, web.realm, eve, total=5, remaining=4)
    policy = policy_of(admin.get(f"/{web.realm}")).policy
    deadline = grace_deadline(admin.get(f"/{web.realm}/users/{newbie.id}"), policy)
    assert deadline > datetime.now(UTC) + timedelta(days=13)
    # Issue 17: the overview never scans the users; before any sync pass it says so and fails closed.
    d = web.sign_in(boss, "/admin")
    page = d.page
    assert page is not None and page.status == 200, d.summary()
    assert "No sync pass yet" in page.text and "Policy: needs attention" in page.text, page.text
    assert not user_rows(page.text) and "Not known (no counts from sync)" in page.text
    r = d.s.get(web.url + "/admin", timeout=30)
    # The realm, the summary's group, then the help card's two (the index group, one page of its
    # members): issue 17 allows 5.
    assert r.headers["X-Keycloak-Calls"] == "4"
    sync = twostep("sync")
    assert sync.code == 0, sync.err
    (group,) = admin.get(f"/{web.realm}/groups", search="twostep-state", exact="true", briefRepresentation="false")
    summary = json.loads(pass_summary.joined(group["attributes"]["twostep.last_pass"]) or "")
    assert summary["kind"] == "full" and summary["counts"]["users_in_scope"] == 4, summary
    page = d.open_url(web.url + "/admin")
    assert page.status == 200 and re.search(r'<p class="mute" id="counted">Counted by sync: <time [^>]*>', page.text)
    assert "No sync pass yet" not in page.text and "Full pass: <time" in page.text, page.text
    r = d.s.get(web.url + "/admin", timeout=30)
    assert r.status_code == 200 and int(r.headers["X-Keycloak-Calls"]) <= 5
    # The page's clock a quarter of an hour after the account was made: the time left is known exactly
    # (the summary, written since to the second, is then well under the half hour after which it is old).
    web.app.extensions["twostep"].clock = fixed_clock(deadline - timedelta(days=13, hours=23, minutes=45))
    page = d.open_url(web.url + "/admin")
    assert "is <code>twostep sync</code> running?" not in page.text, page.text
    not_enrolled = page.text.split('id="not-enrolled"', 1)[1].split('id="low-codes"', 1)[0]
    low_codes = page.text.split('id="low-codes"', 1)[1]
    pending = user_rows(not_enrolled)
    assert list(pending) == [newbie.id], not_enrolled
    due = deadline.astimezone(UTC)
    assert (f'<td><time datetime="{utc_iso(deadline)}" lang="en">by {due:%H:%M} UTC on {due:%b} {due.day}, '
            f"{due.year}, 13 days, 23 hours left</time></td>") in pending[newbie.id], pending[newbie.id]
    assert "in grace period" in pending[newbie.id]
    low = user_rows(low_codes)
    assert list(low) == [carol.id], low_codes  # eve has 4 left: not low
    assert "2/5" in low[carol.id]

    # `twostep status --json`: the old keys stay, the new ones are added.
    st = json.loads(twostep("status", "--json").out)
    assert {"users_in_scope", "enrolled_otp", "with_backup_codes", "complete", "bypassed_now"} <= set(st["counts"])
    assert st["counts"]["not_enrolled"] == 1 and st["counts"]["low_backup_codes"] == 1
    assert st["counts"]["users_in_scope"] == 4 and st["counts"]["with_backup_codes"] == 2
    assert [u["username"] for u in st["lists"]["not_enrolled"]] == ["newbie"]
    assert st["lists"]["not_enrolled"][0]["deadline"] == utc_iso(deadline)  # JSON: ISO-8601
    text = twostep("status").out.splitlines()  # text: in words (real clock: 14 days less a few seconds)
    assert (f"  not enrolled: newbie, by {due:%H:%M} UTC on {due:%b} {due.day}, {due.year}, "
            "13 days, 23 hours left") in text, text
    assert st["lists"]["low_backup_codes"] == [{"id": carol.id, "username": "carol", "remaining": 2, "total": 5}]

    r = d.s.get(web.url + "/admin/users", timeout=30)
    rows = user_rows(r.text)
    assert set(rows) == {boss.id, eve.id, newbie.id, carol.id}
    assert int(r.headers["X-Keycloak-Calls"]) <= 3  # the list, the realm, the page's bypass records
    assert "no device" in rows[newbie.id] and "2/5" not in r.text, "backup codes left moved to the user's page"
    page = d.open_url(f"{web.url}/admin/users/{carol.id}")
    assert '<p class="warn">2 of 5 left</p>' in page.text, page.text
    page = d.open_url(f"{web.url}/admin/users/{eve.id}")
    assert '<p class="">4 of 5 left</p>' in page.text, page.text


def test_grant_and_revoke_bypass_through_the_page(web: WebApp, people: tuple[User, User], admin: Admin) -> None:
    boss, eve = people
    d = web.sign_in(boss, f"/admin/users/{eve.id}")
    page = d.page
    assert page is not None and page.status == 200, d.summary()
    form = action_form(page, "grant")
    assert form["preset"] == "1h"
    assert form["kind"] == "pass-once", "the realm's default, the access pass, is preselected"
    page = post(d, f"{web.url}/admin/users/{eve.id}/action",
                {**form, "kind": "password", "reason": "lost phone", "confirm": "yes"})
    assert any("set the bypass marker" in m for m in flashes(page)), flashes(page)
    a = record_fields(admin, web.realm, eve.id)
    assert a["marker"] == "true" and a["reason"] == "lost phone"
    assert a["by"] == f"boss@{web.realm} via web"
    # The admin event names the real person: the change was made with boss's own token (one event,
    # written by the provider's admin extension in the grant's transaction).
    events = admin.get(f"/{web.realm}/admin-events", resourcePath=f"twostep/users/{eve.id}/*", max=20)
    assert [e["authDetails"]["userId"] for e in events] == [boss.id], events
    # The users list shows the record's end from the provider's extension (one call, whatever the page size).
    d.s.get(web.url + "/admin/users?q=eve", timeout=30)
    r = d.s.get(web.url + "/admin/users?q=eve", timeout=30)
    cell = user_rows(r.text)[eve.id].split('<td class="bypass">', 1)[1]
    assert cell.startswith(f'<span class="warn"><time datetime="{a["until"]}"'), cell
    assert r.headers["X-Keycloak-Calls"] == "3"

    form = action_form(page, "revoke")
    page = post(d, f"{web.url}/admin/users/{eve.id}/action", {**form, "confirm": "yes"})
    assert any("remove the bypass" in m for m in flashes(page)), flashes(page)
    assert record_fields(admin, web.realm, eve.id).get("marker") is None
    assert '"event": "bypass.revoke"' in web.audit.read_text()
    audit_page = d.open_url(f"{web.url}/admin/audit?user=eve")
    assert "bypass.grant" in audit_page.text and "lost phone" in audit_page.text


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_times_in_the_viewers_language(web: WebApp, people: tuple[User, User], admin: Admin, twostep: Twostep) -> None:
    """eve's `locale` attribute (de) reaches the page as her token's `locale` claim; boss has none, so
    his browser's Accept-Language (ru) decides; the ISO time stays in the datetime attribute."""
    boss, eve = people
    enable_locales(admin, web.realm)
    set_user_locale(admin, web.realm, eve.id, "de")
    r = twostep("bypass", "grant", "eve", "--for", "8h", "--reason", "Handy verloren", "--password")
    assert r.code == 0, r.err
    rec = record_fields(admin, web.realm, eve.id)
    until = _iso(rec["until"])
    at = until - timedelta(hours=7, minutes=59)  # the pages' clock: one minute into the bypass
    web.app.extensions["twostep"].clock = fixed_clock(at)

    d = web.sign_in(eve)  # the password alone: she is bypassed
    page = d.page
    assert page is not None and page.status == 200, d.summary()
    tag = "heute" if until.date() == at.date() else "morgen"
    assert ('Der zweite Schritt ist für Ihr Konto ausgesetzt (von einem Administrator): '
            f'<time datetime="{rec["until"]}" lang="de">bis {tag} '
            f"{until:%H:%M} UTC, noch 7 Stunden, 59 Minuten</time>.") in page.text, page.text
    [otp] = [c for c in admin.get(f"/{web.realm}/users/{eve.id}/credentials") if c["type"] == "otp"]
    created = datetime.fromtimestamp(otp["createdDate"] // 1000, UTC)
    minutes = int((at.replace(microsecond=0) - created).total_seconds()) // 60
    assert 1 <= minutes < 60, minutes
    ago = "vor 1 Minute" if minutes == 1 else f"vor {minutes} Minuten"
    day = "heute" if created.date() == at.date() else "gestern"
    assert (f'hinzugefügt <time datetime="{utc_iso(created)}" lang="de">{day} {created:%H:%M} UTC, {ago}</time>'
            in page.text), page.text

    a = web.sign_in(boss, f"/admin/users/{eve.id}")
    a.s.headers["Accept-Language"] = "ru-RU,ru;q=0.9,en;q=0.5"
    tag = "сегодня" if until.date() == at.date() else "завтра"
    user_page = a.s.get(f"{web.url}/admin/users/{eve.id}", timeout=30).text
    assert (f'<p class="warn">Действует <time datetime="{rec["until"]}" lang="ru">до {until:%H:%M} UTC {tag}, '
            "осталось: 7 часов 59 минут</time></p>") in user_page, user_page
    # Provider mode: the list shows the end too (the page's records in one call to the provider's admin
    # extension, twostep/users/bypass-records), in the viewer's language.
    listing = a.s.get(f"{web.url}/admin/users?q=eve", timeout=30).text
    assert f'<td class="bypass"><span class="warn"><time datetime="{rec["until"]}" lang="ru">' \
        in user_rows(listing)[eve.id], listing
    a.s.headers["Accept-Language"] = "fr-FR,fr;q=0.9"  # not offered: English
    assert f'lang="en">until {until:%H:%M} UTC' in a.s.get(f"{web.url}/admin/users/{eve.id}", timeout=30).text


def test_no_self_bypass_on_own_page(web: WebApp, people: tuple[User, User], admin: Admin) -> None:
    boss, _ = people
    d = web.sign_in(boss, f"/admin/users/{boss.id}")
    assert d.page is not None and 'value="grant"' not in d.page.text
    form = action_form(d.page, "reset_device")
    page = post(d, f"{web.url}/admin/users/{boss.id}/action",
                {**form, "action": "grant", "preset": "1h", "reason": "me", "confirm": "yes"})
    assert any("yourself" in m for m in flashes(page)), flashes(page)
    assert "marker" not in record_fields(admin, web.realm, boss.id)


def test_csrf_and_bad_input_change_nothing(web: WebApp, people: tuple[User, User], admin: Admin) -> None:
    boss, eve = people
    d = web.sign_in(boss, f"/admin/users/{eve.id}")
    assert d.page is not None
    form = action_form(d.page, "grant")
    url = f"{web.url}/admin/users/{eve.id}/action"
    before = attrs(admin, web.realm, eve)

    no_token = {k: v for k, v in form.items() if k != "csrf_token"}
    page = post(d, url, {**no_token, "reason": "x", "confirm": "yes"})
    assert page.status == 400 and "nothing was changed" in page.text

    cases = [
        ({"reason": "", "confirm": "yes"}, "reason is required"),
        ({"reason": "r", "preset": "forever", "confirm": "yes"}, "choose a duration"),
        ({"reason": "r", "preset": "custom", "custom": "soon", "confirm": "yes"}, "cannot read duration"),
        ({"reason": "r", "preset": "custom", "custom": "90d", "confirm": "yes"}, "at most"),
        ({"reason": "r"}, "I confirm"),
        ({"reason": "r", "confirm": "yes", "user_id": boss.id}, "does not belong"),
        ({"reason": "r", "confirm": "yes", "action": "make_admin"}, "Unknown action"),
    ]
    for values, expected in cases:
        page = post(d, url, {**form, **values})
        msgs = flashes(page)
        assert any(expected in m and "othing was changed" in m for m in msgs), (values, msgs)
        assert attrs(admin, web.realm, eve) == before, values

    for bad in ("00000000-0000-0000-0000-000000000000", "not-a-uuid", "%3Cb%3Ebold"):
        page = d.open_url(urljoin(web.url, f"/admin/users/{bad}"))
        assert page.status == 404 and "No user with id" in page.text, page.summary()
        assert "<b>bold" not in page.text, "user input must be escaped"


def test_generate_codes_shown_once(web: WebApp, people: tuple[User, User], admin: Admin) -> None:
    boss, eve = people
    d = web.sign_in(boss, f"/admin/users/{eve.id}")
    assert d.page is not None
    form = action_form(d.page, "generate_codes")
    page = post(d, f"{web.url}/admin/users/{eve.id}/action", {**form, "confirm": "yes", "reason": "travel"})
    codes = re.findall(r"<li>([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4,5})</li>", page.text)
    assert len(codes) == 12, page.summary()
    types = [c["type"] for c in admin.get(f"/{web.realm}/users/{eve.id}/credentials")]
    assert "recovery-authn-codes" in types
    again = d.open_url(f"{web.url}/admin/users/{eve.id}")
    assert not any(c in again.text for c in codes) and "12 of 12 left" in again.text
    assert not any(c in web.audit.read_text() for c in codes)


def test_sign_out_ends_keycloak_session(web: WebApp, people: tuple[User, User], admin: Admin) -> None:
    _, eve = people
    d = web.sign_in(eve)
    assert len(admin.get(f"/{web.realm}/users/{eve.id}/sessions")) == 1
    page = d.page
    assert page is not None
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    post(d, web.url + "/auth/logout", {"csrf_token": token.group(1)})
    assert admin.get(f"/{web.realm}/users/{eve.id}/sessions") == []
    assert d.open_url(web.url + "/security").kind == "login"


def csrf_of(page: Page) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, page.summary()
    return m.group(1)


def test_user_changes_device_new_one_first(web: WebApp, people: tuple[User, User], admin: Admin) -> None:
    _, eve = people
    d = web.sign_in(eve)
    assert d.page is not None
    old = [c for c in admin.get(f"/{web.realm}/users/{eve.id}/credentials") if c["type"] == "otp"]
    # The only device can't be removed while a second factor is required.
    page = post(d, web.url + "/security/remove-device", {"csrf_token": csrf_of(d.page), "credential_id": old[0]["id"]})
    assert any("only device" in m for m in flashes(page)), flashes(page)

    page = post(d, web.url + "/security/change-device", {"csrf_token": csrf_of(page)})
    assert page.kind == "configure-totp", page.summary()
    secret = base64.b32encode(page.form_with("totpSecret").fields["totpSecret"].encode()).decode()
    page = d.submit({"totp": pyotp.TOTP(secret).now(), "userLabel": "new phone"}, form_field="totpSecret")
    assert page.url.startswith(web.url + "/security"), page.summary()
    assert any("removed 1 old device" in m for m in flashes(page)), flashes(page)
    otps = [c for c in admin.get(f"/{web.realm}/users/{eve.id}/credentials") if c["type"] == "otp"]
    assert [c["userLabel"] for c in otps] == ["new phone"]
    assert '"event": "otp.device_change"' in web.audit.read_text()


def test_cancelled_device_change_keeps_old_device(web: WebApp, people: tuple[User, User], admin: Admin) -> None:
    _, eve = people
    d = web.sign_in(eve)
    assert d.page is not None
    page = post(d, web.url + "/security/change-device", {"csrf_token": csrf_of(d.page)})
    assert page.kind == "configure-totp", page.summary()
    page = d.submit({"cancel-aia": "true"}, form_field="totpSecret")
    assert page.url.startswith(web.url + "/security"), page.summary()
    assert "The action was cancelled or failed in Keycloak: nothing was changed." in flashes(page), flashes(page)
    otps = [c for c in admin.get(f"/{web.realm}/users/{eve.id}/credentials") if c["type"] == "otp"]
    assert [c["userLabel"] for c in otps] == ["phone"]


def add_device(admin: Admin, realm: str, user: User, label: str) -> str:
    """A second OTP device for `user` (as enrolled in Keycloak); returns its credential id."""
    rep = admin.get(f"/{realm}/users/{user.id}")
    rep["credentials"] = [otp_credential(pyotp.random_base32(), label)]
    admin.put(f"/{realm}/users/{user.id}", rep)
    return str(next(c["id"] for c in admin.get(f"/{realm}/users/{user.id}/credentials") if c.get("userLabel") == label))


def otp_labels(admin: Admin, realm: str, user: User) -> list[str]:
    return sorted(c["userLabel"] for c in admin.get(f"/{realm}/users/{user.id}/credentials") if c["type"] == "otp")


def test_web_client_has_only_what_the_security_page_needs(web: WebApp, people: tuple[User, User], admin: Admin,
                                                          twostep: Twostep) -> None:
    """Issue 14 item 1: twostep-web's own service account holds manage-users and view-realm of
    realm-management and nothing else (read back from Keycloak), and the security page works with it."""
    _, eve = people
    rm = admin.get(f"/{web.realm}/clients", clientId="realm-management")[0]
    client = admin.get(f"/{web.realm}/clients", clientId="twostep-web")[0]
    sa = admin.get(f"/{web.realm}/clients/{client['id']}/service-account-user")

    def roles(effective: bool = False) -> set[str]:
        path = f"/{web.realm}/users/{sa['id']}/role-mappings/clients/{rm['id']}" + ("/composite" if effective else "")
        return {r["name"] for r in admin.get(path)}

    assert roles() == {"manage-users", "view-realm"}
    assert not roles(effective=True) & {"manage-realm", "view-events", "manage-events", "manage-clients",
                                        "manage-authorization", "manage-identity-providers", "realm-admin"}
    assert not admin.get(f"/{web.realm}/clients", clientId="twostep-cli"), "the fixture's realm has no CLI client"

    # A self-service change, made with exactly these roles (the app has no other credentials).
    tablet = add_device(admin, web.realm, eve, "tablet")
    d = web.sign_in(eve)
    assert d.page is not None and "tablet" in d.page.text
    page = post(d, web.url + "/security/remove-device", {"csrf_token": csrf_of(d.page), "credential_id": tablet})
    assert any("Removed the device" in m for m in flashes(page)), flashes(page)
    assert otp_labels(admin, web.realm, eve) == ["phone"]

    # Widened by hand: setup plans it back to exactly these two roles.
    manage_realm = admin.get(f"/{web.realm}/clients/{rm['id']}/roles/manage-realm")
    admin.post(f"/{web.realm}/users/{sa['id']}/role-mappings/clients/{rm['id']}", [manage_realm])
    plan = twostep("setup", "--no-service-client", "--web-url", web.url, "--backup-codes", "offered", "--dry-run")
    assert "remove manage-realm" in plan.out, plan.out
    assert twostep("setup", "--no-service-client", "--web-url", web.url, "--backup-codes", "offered").code == 0
    assert roles() == {"manage-users", "view-realm"}


def _session_cookie(d: LoginDriver) -> str:
    value = next(c.value for c in d.s.cookies if c.name == "twostep_session")
    assert value is not None
    return value


def test_session_naming_another_user_than_its_token_is_refused(web: WebApp, people: tuple[User, User],
                                                               admin: Admin) -> None:
    """Issue 14 item 2: a session cookie whose user id is not its stored token's `sub` (forged with a
    leaked key, or mixed up) is refused on every request, and nothing is changed."""
    boss, eve = people
    tablet = add_device(admin, web.realm, boss, "tablet")
    d = web.sign_in(eve)
    assert d.page is not None
    csrf = csrf_of(d.page)
    sessions = web.app.session_interface
    assert isinstance(sessions, SecureCookieSessionInterface)
    serializer = sessions.get_signing_serializer(web.app)
    assert serializer is not None
    data = serializer.loads(_session_cookie(d))
    data["user"] = {**data["user"], "id": boss.id, "username": boss.username}
    forged = serializer.dumps(data)
    for method, path, form in (("GET", "/security", None),
                               ("POST", "/security/remove-device", {"csrf_token": csrf, "credential_id": tablet})):
        d.s.cookies.set("twostep_session", forged, domain="127.0.0.1", path="/")
        r = d.s.request(method, web.url + path, data=form, allow_redirects=False, timeout=30)
        assert r.status_code == 302 and "/auth/login" in r.headers["Location"], (method, r.status_code)
        assert "tablet" not in r.text
    assert otp_labels(admin, web.realm, boss) == ["phone", "tablet"]


def test_change_refused_once_keycloak_ended_the_session(web: WebApp, people: tuple[User, User],
                                                        admin: Admin, make_user: MakeUser) -> None:
    """Issue 14 item 2: before any change the cached token is checked with Keycloak (refreshed);
    signed out elsewhere, or disabled, the person must sign in again and nothing is changed."""
    _, eve = people
    tablet = add_device(admin, web.realm, eve, "tablet")

    d = web.sign_in(eve)
    assert d.page is not None
    csrf = csrf_of(d.page)
    admin.post(f"/{web.realm}/users/{eve.id}/logout", None)  # signed out everywhere (e.g. by an admin)
    page = post(d, web.url + "/security/remove-device", {"csrf_token": csrf, "credential_id": tablet})
    assert page.kind == "login", page.summary()  # Keycloak's own sign-in page: its session is gone
    assert otp_labels(admin, web.realm, eve) == ["phone", "tablet"]

    fay = make_user("fay", otp=True)  # another person: a TOTP code is accepted once per period
    tablet = add_device(admin, web.realm, fay, "tablet")
    d = web.sign_in(fay)
    assert d.page is not None
    csrf = csrf_of(d.page)
    rep = admin.get(f"/{web.realm}/users/{fay.id}")
    admin.put(f"/{web.realm}/users/{fay.id}", {**rep, "enabled": False})
    r = d.s.post(web.url + "/security/remove-device", data={"csrf_token": csrf, "credential_id": tablet},
                 allow_redirects=False, timeout=30)
    assert r.status_code == 302 and "/auth/login" in r.headers["Location"], r.status_code
    assert otp_labels(admin, web.realm, fay) == ["phone", "tablet"]


def test_token_files_are_bounded_and_swept(web: WebApp, people: tuple[User, User], make_user: MakeUser) -> None:
    """Issue 14 item 4: repeated sign-ins (each a new browser that never signs out) keep at most
    MAX_PER_USER token files per person; expired ones are swept."""
    per_user = 5
    boss, _ = people
    gus = make_user("gus")
    # A bypass lets him sign in with the password alone, many times a minute (a TOTP code is single use).
    grant_ending_at(client(web.kc_url, web.realm), "gus", utcnow() + timedelta(minutes=4))
    for _ in range(per_user + 4):
        web.sign_in(gus)
    web.sign_in(boss)
    files = [p for p in web.tokens.iterdir() if not p.name.endswith(".tmp")]
    assert len(files) == per_user + 1, [p.name for p in files]

    from twostep.web.tokens import MAX_PER_USER, FileTokenStore

    assert per_user == MAX_PER_USER
    store: FileTokenStore = web.app.extensions["twostep"].tokens
    ends = max(p.stat().st_mtime for p in files)
    assert time.time() < ends <= time.time() + 8 * 3600 + 60
    real = store.now
    store.now = lambda: ends + 1  # every record's life is over
    try:
        assert store.sweep(force=True) == per_user + 1
        assert list(web.tokens.iterdir()) == []
    finally:
        store.now = real
    assert web.browser().open_url(web.url + "/security").kind == "login"


def test_token_store_total_bound(tmp_path: Path) -> None:
    from twostep.web.tokens import FileTokenStore

    store = FileTokenStore(str(tmp_path / "t"), max_records=3)
    now = time.time()
    for i in range(10):
        key = FileTokenStore.user_key("r", f"user-{i}")
        store.admit(key)
        store.put(FileTokenStore.new_id(key), {"access_token": "x"}, now + 600 + i)
        assert store.count() <= 3
    survivors = sorted(p.stat().st_mtime for p in (tmp_path / "t").iterdir())
    assert survivors == [now + 607, now + 608, now + 609], "the records closest to their end went first"
    assert store.get("../../etc/passwd") is None


def web_env(keycloak: Keycloak, realm: str, **extra: str) -> dict[str, str]:
    """`twostep web`'s environment: Keycloak's URL and the realm, never the CLI's credentials."""
    env = keycloak.env(realm)
    for name in ("TWOSTEP_ADMIN_USERNAME", "TWOSTEP_ADMIN_PASSWORD"):
        env.pop(name)
    return {**env, **extra}


def test_twostep_web_serves_with_gunicorn(keycloak: Keycloak, realm: str, tmp_path: Path) -> None:
    port, mport = free_port(), free_port()
    env = web_env(keycloak, realm, TWOSTEP_WEB_CLIENT_SECRET="not-used-by-healthz")
    proc = subprocess.Popen([sys.executable, "-m", "twostep", "web", "--port", str(port), "--workers", "2",
                             "--token-dir", str(tmp_path / "tokens"), "--metrics-port", str(mport)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        body = ""
        while time.monotonic() < deadline:
            try:
                body = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).text
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        assert body == "ok\n"
        home = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert home.status_code == 200 and "Sign in" in home.text
        assert "nosniff" in home.headers["X-Content-Type-Options"]
        # Metrics only on their own listener (loopback by default), never on the pages' port.
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404
        m = requests.get(f"http://127.0.0.1:{mport}/metrics", timeout=5)
        assert m.status_code == 200 and "twostep_web_requests" in m.text
        assert requests.get(f"http://127.0.0.1:{mport}/", timeout=5).status_code == 404
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert "Booting worker with pid" in err, err[-2000:]
    listening = next(ln for ln in err.splitlines() if "Listening at:" in ln)
    assert f"http://127.0.0.1:{mport}" in re.split(r"[ ,]", listening.split("Listening at:")[1]), listening


def test_twostep_web_needs_the_client_secret(keycloak: Keycloak, realm: str) -> None:
    p = subprocess.run([sys.executable, "-m", "twostep", "web", "--port", "1"], env=web_env(keycloak, realm),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and "client secret" in p.stderr


def _refused_at_start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    port = free_port()
    try:
        return subprocess.run([sys.executable, "-m", "twostep", "web", "--port", str(port)], env=env,
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("twostep web started instead of refusing") from None


def shipped_secret_keys() -> list[str]:
    """Every TWOSTEP_WEB_SECRET_KEY value written in this repository's examples (deploy/, docs)."""
    repo = Path(__file__).resolve().parents[1]
    found = set()
    for path in [*repo.glob("deploy/**/*"), *repo.glob("docs/*.md"), repo / "README.md"]:
        if path.is_file() and path.suffix not in (".png", ".jar", ".lock"):
            text = path.read_text(errors="replace")
            keys = r"(?:TWOSTEP_WEB_SECRET_KEY=|^[ \t]*(?:web-)?secret-key:[ \t]*)([^\s\"'$`{}]+)"
            for m in re.finditer(keys, text, re.M):
                if m.group(1) != "...":
                    found.add(m.group(1))
    return sorted(found)


def test_twostep_web_refuses_placeholder_or_weak_secret_key(keycloak: Keycloak, realm: str) -> None:
    placeholders = shipped_secret_keys()
    assert {"change-me-to-64-random-hex-characters", "REPLACE-ME"} <= set(placeholders), placeholders
    for key in [*placeholders, "0123456789abcdef", "a" * 64, "short but not hex!"]:
        p = _refused_at_start(web_env(keycloak, realm, TWOSTEP_WEB_CLIENT_SECRET="x", TWOSTEP_WEB_SECRET_KEY=key))
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 3 and len(lines) == 1 and "TWOSTEP_WEB_SECRET_KEY" in lines[0], (key, p.stderr)
    # The CLI's credentials (twostep-cli's secret, the bootstrap admin) are refused too.
    for extra in ({"TWOSTEP_CLIENT_ID": "twostep-cli", "TWOSTEP_CLIENT_SECRET": "s"},
                  {"TWOSTEP_ADMIN_USERNAME": "admin", "TWOSTEP_ADMIN_PASSWORD": "p"}):
        p = _refused_at_start(web_env(keycloak, realm, TWOSTEP_WEB_CLIENT_SECRET="x", **extra))
        assert p.returncode == 3 and "own client twostep-web" in p.stderr, p.stderr


def test_strong_secret_keys_are_accepted() -> None:
    import secrets as random_bytes

    from twostep.errors import ConfigError
    from twostep.web.app import check_secret_key

    for key in (random_bytes.token_hex(32), random_bytes.token_urlsafe(32), None):
        check_secret_key(key)
    for weak in (random_bytes.token_hex(31), random_bytes.token_urlsafe(24), "x" * 100):
        with pytest.raises(ConfigError):
            check_secret_key(weak)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORTS: dict[str, ViewportSize] = {"desktop": {"width": 1280, "height": 900},
                                     "mobile": {"width": 390, "height": 844}}


def _pw_sign_in(page: Any, web: WebApp, user: User, path: str) -> None:
    page.goto(f"{web.url}/auth/login?next={path}")
    page.fill("#username", user.username)
    page.fill("#password", user.password)
    page.click("#kc-login")
    page.wait_for_selector("#otp")
    page.fill("#otp", user.code())
    page.click("#kc-login")
    page.wait_for_url(f"{web.url}{path}*")


def shoot(page: Any, name: str, prefix: str = "web-") -> None:
    """With TWOSTEP_WEB_SCREENSHOTS=DIR (e.g. docs/screenshots) each page is captured at desktop and
    mobile widths as DIR/PREFIXNAME-WIDTH.png."""
    target = os.environ.get("TWOSTEP_WEB_SCREENSHOTS")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(Path(target) / f"{prefix}{name}-{label}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS["desktop"])


@pytest.mark.browser
def test_browser_admin_grants_and_revokes_bypass(web: WebApp, people: tuple[User, User]) -> None:
    from playwright.sync_api import sync_playwright

    boss, eve = people
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_context(viewport=VIEWPORTS["desktop"]).new_page()
            _pw_sign_in(page, web, boss, "/admin")  # the overview's screenshots: tests/test_overview.py (after a pass)
            page.click("text=Users")
            page.fill("#q", "eve")
            page.click("button:has-text('Search')")
            shoot(page, "users")
            page.click("a:has-text('eve')")
            page.wait_for_url(f"{web.url}/admin/users/{eve.id}")
            shoot(page, "user")
            grant = page.locator("form#grant")
            grant.locator("input[value='1h']").check()
            grant.locator("input[name='kind'][value='password']").check()
            grant.locator("input[name='reason']").fill("phone at home")
            grant.locator("input[name='confirm']").check()
            grant.locator("button[type=submit]").click()
            page.wait_for_selector(".flash.ok")
            assert "set the bypass marker" in page.inner_text(".flash.ok")
            shoot(page, "user-bypassed")

            # eve signs in to an app with her password alone.
            d = LoginDriver(web.kc_url, web.realm)
            d.login(eve.username, eve.password)
            assert d.logged_in(), d.page.summary() if d.page else None

            revoke = page.locator("form.action", has=page.locator("input[value='revoke']"))
            revoke.locator("input[name='confirm']").check()
            revoke.locator("button[type=submit]").click()
            page.wait_for_selector(".flash.ok")
            assert "remove the bypass" in page.inner_text(".flash.ok")

            d = LoginDriver(web.kc_url, web.realm)
            assert d.login(eve.username, eve.password).kind == "otp"

            page.goto(f"{web.url}/admin/audit")
            shoot(page, "audit")
            mine = chromium.new_context(viewport=VIEWPORTS["desktop"]).new_page()
            _pw_sign_in(mine, web, eve, "/security")
            shoot(mine, "security")
        finally:
            chromium.close()


@pytest.mark.browser
def test_browser_user_changes_device(web: WebApp, people: tuple[User, User], admin: Admin) -> None:
    from playwright.sync_api import sync_playwright

    _, eve = people
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_context(viewport=VIEWPORTS["desktop"]).new_page()
            _pw_sign_in(page, web, eve, "/security")
            page.click("button:has-text('My mobile device has changed')")
            page.wait_for_selector("input[name=totpSecret]", state="attached")
            shoot(page, "keycloak-new-device")
            secret = base64.b32encode(page.input_value("input[name=totpSecret]").encode()).decode()
            page.fill("#totp", pyotp.TOTP(secret).now())
            page.fill("#userLabel", "new phone")
            page.click("#kc-login, input[type=submit]")
            page.wait_for_url(f"{web.url}/security*")
            assert "removed 1 old device" in page.inner_text(".flash.ok")
            assert "new phone" in page.inner_text("main")
            shoot(page, "security-device-changed")
        finally:
            chromium.close()
    otps = [c for c in admin.get(f"/{web.realm}/users/{eve.id}/credentials") if c["type"] == "otp"]
    assert [c["userLabel"] for c in otps] == ["new phone"]
