"""A security key keeps working after setup: Debian's Chromium with its virtual authenticator (CDP),
real WebAuthn registration and sign-ins through Keycloak's own pages.

WebAuthn refuses IP-address origins, so the browser talks to http://localhost:PORT (a secure
context by definition) instead of the harness's 127.0.0.1 URL."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from twostep import bypass
from twostep.actor import Actor
from twostep.audit import MemorySink
from twostep.clock import system_clock

from tests.conftest import Admin, Keycloak, MakeUser, Twostep
from tests.support.bypass_helpers import client, grant_ending_at, utcnow
from tests.theme_pages import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

# Chromium refuses the harness client's port 9 (an "unsafe port"), and a route cannot answer a
# redirect's target: a client of our own redirects to a small local server that says "signed in".
CLIENT = "webauthn-test"


class _App(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"signed in")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def redirect_uri() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cb"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def key_page(keycloak: Any) -> Iterator[Any]:
    """One page with a CTAP2 USB security key attached (resident keys, user verification)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.on("dialog", lambda d: d.accept("test key"))  # Keycloak asks for the key's label
            cdp = context.new_cdp_session(page)
            cdp.send("WebAuthn.enable", {"enableUI": False})
            found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "usb", "hasResidentKey": True, "hasUserVerification": True,
                "isUserVerified": True, "automaticPresenceSimulation": True}})
            page.cdp = cdp  # type: ignore[attr-defined]
            page.authenticator_id = found["authenticatorId"]  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()


def _auth_url(keycloak: Any, realm: str, redirect: str) -> str:
    base = keycloak.url.replace("127.0.0.1", "localhost")
    return f"{base}/realms/{quote(realm)}/protocol/openid-connect/auth?" + urlencode(
        {"client_id": CLIENT, "redirect_uri": redirect, "response_type": "code", "scope": "openid"})


def _password(page: Any, keycloak: Any, realm: str, user: Any) -> None:
    page.context.clear_cookies()
    page.goto(_auth_url(keycloak, realm, page.redirect))
    page.fill("#username", user.username)
    page.fill("#password", user.password)
    page.click("#kc-login")
    page.wait_for_load_state()


def _signed_in(page: Any) -> bool:
    return bool(page.url.startswith(page.redirect) and "code=" in page.url)


def _sign_in_with_key(page: Any, keycloak: Any, realm: str, user: Any) -> None:
    _password(page, keycloak, realm, user)
    assert not _signed_in(page), "the password alone must not be enough"
    assert page.locator("#totpSecret").count() == 0, "a user with a key is not sent to OTP setup"
    assert page.locator("#otp").count() == 0, "a user with a key is not asked for an app's code"
    with page.expect_navigation(url=page.redirect + "**"):
        page.click("#authenticateWebAuthnButton")
    assert _signed_in(page), page.url


def test_security_key_user_keeps_the_key_through_setup_and_bypass(twostep: Twostep, admin: Admin, realm: str,
                                                                  make_user: MakeUser, keycloak: Keycloak,
                                                                  key_page: Any, redirect_uri: str) -> None:
    # The realm's admins switched security keys on as a second factor in Keycloak's own flow.
    for ex in admin.get(f"/{realm}/authentication/flows/browser/executions"):
        if ex.get("providerId") == "webauthn-authenticator":
            admin.put(f"/{realm}/authentication/flows/browser/executions", {**ex, "requirement": "ALTERNATIVE"})
    key_page.redirect = redirect_uri
    admin.post(f"/{realm}/clients", {"clientId": CLIENT, "publicClient": True, "standardFlowEnabled": True,
                                     "redirectUris": [redirect_uri]})
    user = make_user("keyholder", required_actions=["webauthn-register"])
    page = key_page

    # Register the key at the first sign-in (Keycloak's own required action).
    _password(page, keycloak, realm, user)
    with page.expect_navigation(url=page.redirect + "**"):
        page.click("#registerWebAuthn")
    assert _signed_in(page), page.url
    creds = page.cdp.send("WebAuthn.getCredentials", {"authenticatorId": page.authenticator_id})["credentials"]
    assert len(creds) == 1
    assert [c["type"] for c in admin.get(f"/{realm}/users/{user.id}/credentials")].count("webauthn") == 1

    _sign_in_with_key(page, keycloak, realm, user)  # before setup: password + key

    # Backup codes "offered": this test is about the key (with "required" the provider would add
    # the backup-code setup after the key; that walk is the provider's own test).
    r = twostep("setup", "--no-service-client", "--enforce", "all", "--backup-codes", "offered")
    assert r.code == 0, r.err
    assert "CONFIGURE_TOTP" not in admin.get(f"/{realm}/users/{user.id}")["requiredActions"]
    _sign_in_with_key(page, keycloak, realm, user)  # after setup: still password + key

    kc = client(keycloak.url, realm)
    grant_ending_at(kc, user.username, utcnow() + timedelta(minutes=4), reason="key left at home")
    _password(page, keycloak, realm, user)
    assert _signed_in(page), "during a bypass the password alone"

    actor = Actor("tester@master", True, (("master", "tester"),))
    bypass.revoke(kc, system_clock, MemorySink([]), actor, user.username, reason="key found")
    _sign_in_with_key(page, keycloak, realm, user)  # after the bypass: the key again

    assert twostep("teardown").code == 0
    assert admin.get(f"/{realm}")["browserFlow"] == "browser"
    _sign_in_with_key(page, keycloak, realm, user)
