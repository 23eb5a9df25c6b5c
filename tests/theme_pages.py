"""Reach every page of the ``twostep`` login theme through a real Keycloak login.

Used by tests/test_theme_pages.py (HTTP, requests) and tests/test_theme_browser.py (Chromium via
Playwright), and as a command that writes the screenshots in docs/screenshots/:

    python -m tests.theme_pages --screenshots [--url http://127.0.0.1:8080] [--out docs/screenshots]

The command needs a running Keycloak that sees the theme (``deploy/local/keycloak.sh start`` links
themes/twostep in); it creates a throwaway realm, walks the pages and deletes the realm again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html.parser
import http.cookiejar
import io
import json
import os
import struct
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import requests

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parent.parent
THEME_DIR = REPO / "themes" / "twostep" / "login"
LOCALES = ("en", "de", "ru")
CLIENT_ID = "twostep-theme-test"
# Nothing listens there: the tests stop at Keycloak's redirect to it.
REDIRECT_URI = "http://127.0.0.1:59999/theme-test-callback"
PASSWORD = "Theme-test-pass-1"
OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
# Twelve codes in Keycloak's own alphabet and length; the recovery page asks for #1 first.
BACKUP_CODES = [f"TWOSTEP{n:05d}" for n in range(1, 13)]
FLOW_ALIAS = "twostep-theme-browser"
FREEMARKER_ERRORS = ("FreeMarker template error", "Template processing error", "freemarker.core.")

# Pages we render: a name for each (template name, or template plus variant) and the test user that
# reaches it. TEMPLATE_OF gives the template (data-page-id="login-<template>").
PAGES = (
    "login-otp",
    "login-otp-without-backup-codes",
    "login-config-totp",
    "login-config-totp-new-device",
    "select-authenticator",
    "login-recovery-authn-code-input",
    "login-recovery-authn-code-config",
)
TEMPLATE_OF = {
    "login-otp": "login-otp",
    "login-otp-without-backup-codes": "login-otp",
    "login-config-totp": "login-config-totp",
    "login-config-totp-new-device": "login-config-totp",
    "select-authenticator": "select-authenticator",
    "login-recovery-authn-code-input": "login-recovery-authn-code-input",
    "login-recovery-authn-code-config": "login-recovery-authn-code-config",
}
USER_OF = {
    "login-otp": "codes-user",
    "login-otp-without-backup-codes": "otp-user",
    "login-config-totp": "totp-setup-user",
    "login-config-totp-new-device": "new-device-user",
    "select-authenticator": "codes-user",
    "login-recovery-authn-code-input": "codes-user",
    "login-recovery-authn-code-config": "codes-setup-user",
}
# Message keys of ours that each page must show (checked in every locale).
EXPECTED_KEYS = {
    "login-otp": ("twostepOtpTitle", "twostepOtpInstruction", "twostepOtpLostPhoneTitle",
                  "twostepOtpLostPhoneBackup", "twostepOtpUseBackupCode", "twostepOtpLostPhoneAdmin"),
    "login-otp-without-backup-codes": ("twostepOtpInstruction", "twostepOtpLostPhoneTitle",
                                       "twostepOtpLostPhoneNoBackup"),
    "login-config-totp": ("twostepTotpTitleFirstDevice", "twostepTotpIntroFirstDevice",
                          "twostepTotpStepApp", "twostepTotpCannotScan", "twostepTotpDeviceName"),
    "login-config-totp-new-device": ("twostepTotpTitleNewDevice", "twostepTotpIntroNewDevice"),
    "select-authenticator": ("twostepSelectIntro", "twostepSelectNoneTitle",
                             "recovery-authn-codes-display-name"),
    "login-recovery-authn-code-input": ("auth-recovery-code-header", "twostepRecoveryFormat",
                                        "twostepRecoveryNoCodes"),
    "login-recovery-authn-code-config": ("twostepCodesIntro", "twostepCodesDownload",
                                         "twostepCodesConfirm"),
}


class Admin(Protocol):
    """What the helpers need from an admin client (tests/conftest.py's Admin has it): ``path`` is
    relative to /admin/realms, and an HTTP status of 400 or more raises AssertionError."""

    def request(self, method: str, path: str, **kw: Any) -> requests.Response: ...


class SimpleAdmin:
    """A password-grant admin client for the screenshot command (tests use the conftest one)."""

    def __init__(self, url: str, username: str = "admin", password: str = "admin") -> None:
        self.url = url.rstrip("/")
        self.username, self.password = username, password
        self.session = requests.Session()
        self._expires = 0.0

    def _authenticate(self) -> None:
        # Master-realm admin tokens live 60 s by default: a screenshot run takes longer.
        if time.monotonic() < self._expires:
            return
        token = requests.post(
            f"{self.url}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli",
                  "username": self.username, "password": self.password},
            timeout=30,
        )
        token.raise_for_status()
        body = token.json()
        self.session.headers["Authorization"] = f"Bearer {body['access_token']}"
        self._expires = time.monotonic() + float(body.get("expires_in", 60)) * 0.7

    def login_themes(self) -> set[str]:
        """Names of the login themes Keycloak sees (GET /admin/serverinfo)."""
        self._authenticate()
        r = self.session.get(f"{self.url}/admin/serverinfo", timeout=60)
        r.raise_for_status()
        return {t["name"] for t in r.json()["themes"]["login"]}

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 60)
        self._authenticate()
        r = self.session.request(method, f"{self.url}/admin/realms{path}", **kw)
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {r.status_code} {r.text[:300]}")
        return r


def _get(admin: Admin, path: str, **params: Any) -> Any:
    r = admin.request("GET", path, params=params or None)
    return r.json() if r.content else None


def _post(admin: Admin, path: str, body: Any = None) -> requests.Response:
    return admin.request("POST", path, json=body)


def _put(admin: Admin, path: str, body: Any) -> requests.Response:
    return admin.request("PUT", path, json=body)


def realm_exists(admin: Admin, realm: str) -> bool:
    try:
        admin.request("GET", f"/{realm}")
    except AssertionError as exc:
        if " -> 404 " in str(exc):
            return False
        raise
    return True


def load_messages(locale: str) -> dict[str, str]:
    """The theme's messages_<locale>.properties (UTF-8, as Keycloak 26 reads them)."""
    text = (THEME_DIR / "messages" / f"messages_{locale}.properties").read_text(encoding="utf-8")
    return parse_properties(text)


KEYCLOAK_VERSION = os.environ.get("KEYCLOAK_VERSION", "26.7.3")


def keycloak_themes_jar() -> zipfile.ZipFile:
    """Keycloak's own themes JAR (keycloak.v2 and base templates and messages), read from the
    distribution zip that ``deploy/local/keycloak.sh fetch`` provides (fetching it if needed)."""
    out = subprocess.run(["bash", str(REPO / "deploy" / "local" / "keycloak.sh"), "fetch"],
                         capture_output=True, text=True, check=True, timeout=900)
    dist = zipfile.ZipFile(out.stdout.strip().splitlines()[-1])
    inner = (f"keycloak-{KEYCLOAK_VERSION}/lib/lib/main/"
             f"org.keycloak.keycloak-themes-{KEYCLOAK_VERSION}.jar")
    return zipfile.ZipFile(io.BytesIO(dist.read(inner)))


def parse_properties(text: str) -> dict[str, str]:
    """key=value lines of a Keycloak messages file (no line continuations are used in ours)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def rendered_text(message: str, *args: str) -> str:
    """What Keycloak shows for a message (MessageFormat '' -> ', {n} -> argument, HTML-escaped)."""
    text = message.replace("''", "'")
    for i, arg in enumerate(args):
        text = text.replace("{" + str(i) + "}", arg)
    return text


def html_escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


# --------------------------------------------------------------------------------------------
# TOTP and backup codes


def totp_now(secret_b32: str = OTP_SECRET, at: float | None = None, digits: int = 6,
             period: int = 30) -> str:
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // period)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def otp_credential(label: str = "phone") -> dict[str, Any]:
    return {
        "type": "otp",
        "userLabel": label,
        "secretData": json.dumps({"value": OTP_SECRET}),
        "credentialData": json.dumps({"subType": "totp", "digits": 6, "counter": 0, "period": 30,
                                      "algorithm": "HmacSHA1", "secretEncoding": "BASE32"}),
    }


def backup_codes_credential(codes: list[str] = BACKUP_CODES) -> dict[str, Any]:
    hashed = [
        {"number": i, "encodedHashedValue": base64.b64encode(
            hashlib.sha512(code.encode("utf-8")).digest()).decode("ascii")}
        for i, code in enumerate(codes, start=1)
    ]
    return {
        "type": "recovery-authn-codes",
        "userLabel": "Backup codes",
        "secretData": json.dumps({"codes": hashed}),
        "credentialData": json.dumps({"algorithm": "SHA-512", "totalCodes": len(codes),
                                      "remainingCodes": len(codes)}),
    }


# --------------------------------------------------------------------------------------------
# Realm setup


def setup_realm(admin: Admin, realm: str) -> None:
    """Make ``realm`` (created if missing) show every twostep page to one of its test users."""
    settings = {
        "realm": realm,
        "enabled": True,
        "loginTheme": "twostep",
        "internationalizationEnabled": True,
        "supportedLocales": list(LOCALES),
        "defaultLocale": "en",
        "displayName": "Example Company",
        "displayNameHtml": "Example Company",
        # The walks log the same users in several times within one 30 s window. Keycloak applies
        # the OTP policy fields only when otpPolicyType is sent along.
        "otpPolicyType": "totp",
        "otpPolicyAlgorithm": "HmacSHA1",
        "otpPolicyDigits": 6,
        "otpPolicyPeriod": 30,
        "otpPolicyLookAheadWindow": 1,
        "otpPolicyCodeReusable": True,
    }
    if not realm_exists(admin, realm):
        _post(admin, "", {"realm": realm, "enabled": True})
    _put(admin, f"/{realm}", settings)
    stored = _get(admin, f"/{realm}")
    for key, value in settings.items():
        if key != "supportedLocales" and stored.get(key) != value:
            raise AssertionError(f"realm setting {key}={value!r} not applied: {stored.get(key)!r}")

    _post(admin, f"/{realm}/clients", {
        "clientId": CLIENT_ID, "publicClient": True, "standardFlowEnabled": True,
        "redirectUris": [REDIRECT_URI], "webOrigins": ["+"],
    })

    # The stock browser flow has the backup-code form DISABLED: use a copy with it ALTERNATIVE
    # next to the OTP form, in the conditional 2FA subflow.
    _post(admin, f"/{realm}/authentication/flows/browser/copy", {"newName": FLOW_ALIAS})
    executions = _get(admin, f"/{realm}/authentication/flows/{FLOW_ALIAS}/executions")
    found = False
    for ex in executions:
        if ex.get("providerId") == "auth-recovery-authn-code-form":
            ex["requirement"] = "ALTERNATIVE"
            _put(admin, f"/{realm}/authentication/flows/{FLOW_ALIAS}/executions", ex)
            found = True
    if not found:
        raise AssertionError("the browser flow copy has no auth-recovery-authn-code-form")
    _put(admin, f"/{realm}", {"realm": realm, "browserFlow": FLOW_ALIAS})

    users: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
        "otp-user": ([otp_credential()], []),
        "totp-setup-user": ([], ["CONFIGURE_TOTP"]),
        "new-device-user": ([otp_credential("old phone")], ["CONFIGURE_TOTP"]),
        "codes-user": ([otp_credential(), backup_codes_credential()], []),
        "codes-setup-user": ([], ["CONFIGURE_RECOVERY_AUTHN_CODES"]),
    }
    for username, (creds, actions) in users.items():
        password = {"type": "password", "value": PASSWORD, "temporary": False}
        _post(admin, f"/{realm}/users", {
            "username": username, "enabled": True, "email": f"{username}@example.test",
            "firstName": "Theme", "lastName": "Tester", "emailVerified": True,
            "credentials": [password, *creds], "requiredActions": actions,
        })
    # Keycloak asks for the credential that comes first: keep the OTP before the backup codes.
    user_id = _get(admin, f"/{realm}/users", username="codes-user", exact="true")[0]["id"]
    stored_creds = _get(admin, f"/{realm}/users/{user_id}/credentials")
    types = [c["type"] for c in stored_creds]
    if "otp" not in types or "recovery-authn-codes" not in types:
        raise AssertionError(f"codes-user credentials not stored: {types}")
    otp_id = next(c["id"] for c in stored_creds if c["type"] == "otp")
    _post(admin, f"/{realm}/users/{user_id}/credentials/{otp_id}/moveToFirst")


@contextmanager
def theme_realm(admin: Admin, realm: str | None = None) -> Iterator[str]:
    """A throwaway realm set up by setup_realm, deleted afterwards (and before, if a run that
    was interrupted left it behind)."""
    name = realm or f"twostep-theme-{uuid.uuid4().hex[:8]}"
    if realm_exists(admin, name):
        admin.request("DELETE", f"/{name}")
    try:
        setup_realm(admin, name)
        yield name
    finally:
        with suppress(AssertionError):
            admin.request("DELETE", f"/{name}")


def auth_url(base_url: str, realm: str, locale: str) -> str:
    """An OIDC authorization request asking for ``locale``.

    Keycloak 26.7.3 ignores ``kc_locale`` on the authorization endpoint itself (it honours it on the
    login-actions URLs, as the language menu uses it) but honours OIDC's ``ui_locales``: send both.
    """
    query = urlencode({"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code",
                       "scope": "openid", "state": uuid.uuid4().hex, "kc_locale": locale,
                       "ui_locales": locale})
    return f"{base_url.rstrip('/')}/realms/{realm}/protocol/openid-connect/auth?{query}"


# --------------------------------------------------------------------------------------------
# HTTP walker (requests)


@dataclass
class Form:
    id: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(a.get("id", ""), a.get("action", ""))
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            if a.get("type") in ("submit", "checkbox"):
                return
            self._current.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms_of(page: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def page_id(page: str) -> str:
    marker = 'data-page-id="login-'
    start = page.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    return page[start:page.index('"', start)]


@dataclass
class Rendered:
    page: str
    status: int
    html: str


class _HttpCookieJar(requests.cookies.RequestsCookieJar):
    """Stores Keycloak's Secure cookies as plain ones so that they go back over http.

    Browsers treat http://127.0.0.1 as a secure context and send Secure cookies there; Python's
    cookie jar does not. (A cookie policy would not help: requests copies the jar per request.)
    """

    def set_cookie(self, cookie: http.cookiejar.Cookie, *args: Any, **kwargs: Any) -> None:
        cookie.secure = False
        super().set_cookie(cookie, *args, **kwargs)


def insecure_cookie_session() -> requests.Session:
    """A requests session that can follow Keycloak's login over plain http."""
    s = requests.Session()
    s.cookies = _HttpCookieJar()
    return s


class Walker:
    """Drives Keycloak's login forms with requests, one fresh session per walk."""

    def __init__(self, base_url: str, realm: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.realm = realm

    def _submit(self, s: requests.Session, html_text: str, form_id: str,
                **values: str) -> requests.Response:
        for form in forms_of(html_text):
            if form.id == form_id or (form_id.endswith("*") and form.id.startswith(form_id[:-1])):
                if not values.get("_match") or form.fields.get("authenticationExecution") == values["_match"]:
                    data = {**form.fields, **{k: v for k, v in values.items() if k != "_match"}}
                    return s.post(form.action, data=data, timeout=60, allow_redirects=True)
        raise AssertionError(f"no form {form_id!r} on page {page_id(html_text)!r}")

    def login(self, s: requests.Session, username: str, locale: str) -> requests.Response:
        first = s.get(auth_url(self.base_url, self.realm, locale), timeout=60)
        first.raise_for_status()
        return self._submit(s, first.text, "kc-form-login", username=username, password=PASSWORD)

    def reach(self, name: str, locale: str) -> Rendered:
        s = insecure_cookie_session()
        resp = self.login(s, USER_OF[name], locale)
        if name in ("select-authenticator", "login-recovery-authn-code-input"):
            if page_id(resp.text) != "login-otp":
                raise AssertionError(f"expected the OTP page first, got {page_id(resp.text)!r}")
            resp = self._submit(s, resp.text, "twostep-backup-code-form")
        if name == "login-config-totp-new-device":
            # The user already has an authenticator (created through the admin API): this code
            # being accepted proves that credential works.
            if page_id(resp.text) != "login-otp":
                raise AssertionError(f"expected the OTP page first, got {page_id(resp.text)!r}")
            resp = self._submit(s, resp.text, "kc-otp-login-form", otp=totp_now())
        if name == "login-recovery-authn-code-input":
            execution = backup_code_execution(resp.text)
            resp = self._submit(s, resp.text, "kc-select-credential-form-*", _match=execution)
        return Rendered(page_id(resp.text), resp.status_code, resp.text)


class _ChoiceParser(html.parser.HTMLParser):
    """Maps each chooser form's hidden authenticationExecution to the option's visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.choices: list[tuple[str, str]] = []
        self._exec: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._exec, self._text = None, []
        elif tag == "input" and a.get("name") == "authenticationExecution":
            self._exec = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._exec is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._exec is not None:
            self.choices.append((self._exec, " ".join("".join(self._text).split())))
            self._exec = None


def backup_code_execution(chooser_html: str) -> str:
    parser = _ChoiceParser()
    parser.feed(chooser_html)
    names = {rendered_text(load_messages(loc)["recovery-authn-codes-display-name"]) for loc in LOCALES}
    for execution, text in parser.choices:
        if any(n in text for n in names):
            return execution
    raise AssertionError(f"no backup-code option in the chooser: {parser.choices}")


# --------------------------------------------------------------------------------------------
# Browser walker (Playwright) and screenshots

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = {"desktop": (1280, 800), "mobile": (390, 844)}
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"


def browser_reach(page: Any, base_url: str, realm: str, name: str, locale: str = "en") -> None:
    """Bring a Playwright page to ``name`` by clicking through the login like a user."""
    page.goto(auth_url(base_url, realm, locale))
    page.fill("#username", USER_OF[name])
    page.fill("#password", PASSWORD)
    page.click("#kc-login")
    page.wait_for_load_state("load")
    if name in ("select-authenticator", "login-recovery-authn-code-input"):
        page.click("#twostep-use-backup-code")
        page.wait_for_load_state("load")
    if name == "login-config-totp-new-device":
        page.fill("#otp", totp_now())
        page.click("#kc-login")
        page.wait_for_load_state("load")
    if name == "login-recovery-authn-code-input":
        label = rendered_text(load_messages(locale)["recovery-authn-codes-display-name"])
        page.locator("button.twostep-choice", has_text=label).click()
        page.wait_for_load_state("load")
    got = page.get_attribute("body", "data-page-id")
    if got != f"login-{TEMPLATE_OF[name]}":
        raise AssertionError(f"{name}: the browser is on {got!r}")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE_JS))
    result: list[dict[str, Any]] = page.evaluate("async () => (await axe.run()).violations")
    return result


def with_browser(fn: Callable[[Any], None]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            fn(browser)
        finally:
            browser.close()


def visit_pages(browser: Browser, base_url: str, realm: str, locale: str = "en",
                names: Sequence[str] = PAGES) -> Iterator[tuple[str, int, Any]]:
    """Yield (page name, viewport width, Playwright page) for every page at every viewport."""
    for name in names:
        for width, height in VIEWPORTS.values():
            context = browser.new_context(viewport={"width": width, "height": height},
                                          locale=locale, color_scheme="light")
            try:
                page = context.new_page()
                browser_reach(page, base_url, realm, name, locale)
                yield name, width, page
            finally:
                context.close()


def screenshot_name(name: str, width: int) -> str:
    return f"theme-{name}-{width}.png"


def write_screenshots(base_url: str, admin: Admin, out: Path, locale: str = "en") -> list[Path]:
    """Screenshots of every page, desktop and mobile, into ``out`` (docs/screenshots)."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def shoot(browser: Browser) -> None:
        with theme_realm(admin, "twostep-theme-screenshots") as realm:
            for name, width, page in visit_pages(browser, base_url, realm, locale):
                target = out / screenshot_name(name, width)
                page.screenshot(path=str(target), full_page=True)
                written.append(target)

    with_browser(shoot)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.theme_pages", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--screenshots", action="store_true", help="write docs/screenshots/theme-*.png")
    ap.add_argument("--url", default=os.environ.get("TWOSTEP_TEST_KEYCLOAK_URL")
                    or os.environ.get("TWOSTEP_URL") or "http://127.0.0.1:8080")
    ap.add_argument("--admin-user", default=os.environ.get("KC_BOOTSTRAP_ADMIN_USERNAME", "admin"))
    ap.add_argument("--admin-password",
                    default=os.environ.get("KC_BOOTSTRAP_ADMIN_PASSWORD", "admin"))
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--locale", default="en", choices=LOCALES)
    args = ap.parse_args(argv)
    if not args.screenshots:
        ap.print_help()
        return 2
    admin = SimpleAdmin(args.url, args.admin_user, args.admin_password)
    for path in write_screenshots(args.url, admin, args.out, args.locale):
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
