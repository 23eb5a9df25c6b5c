"""Drive Keycloak's own login pages over HTTP, like a browser without JavaScript."""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookiejar import Cookie, DefaultCookiePolicy
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlparse

import requests

REDIRECT_URI = "http://127.0.0.1:9/callback"
TEST_CLIENT = "twostep-test"


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, str] = field(default_factory=dict)
    ident: str = ""


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._cur: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._cur = Form(a.get("action", ""), ident=a.get("id", ""))
            self.forms.append(self._cur)
        elif self._cur is not None and tag in ("input", "button", "textarea", "select"):
            name = a.get("name")
            if not name:
                return
            if tag == "button" or a.get("type") == "submit":
                self._cur.buttons[name] = a.get("value", "")
            elif a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            else:
                self._cur.fields.setdefault(name, a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._cur = None


@dataclass
class Page:
    url: str
    status: int
    text: str

    @property
    def forms(self) -> list[Form]:
        p = _Forms()
        p.feed(self.text)
        return p.forms

    def form_with(self, fieldname: str) -> Form:
        for f in self.forms:
            if fieldname in f.fields or fieldname in f.buttons:
                return f
        raise AssertionError(f"no form with field {fieldname!r} on {self.kind} page:\n{self.summary()}")

    def has_field(self, name: str) -> bool:
        return any(name in f.fields or name in f.buttons for f in self.forms)

    @property
    def kind(self) -> str:
        if self.status in (302, 303) or self.url.startswith(REDIRECT_URI):
            return "done"
        if self.has_field("totpSecret"):
            return "configure-totp"
        if self.has_field("recoveryCodeInput"):
            return "recovery-code"
        if self.has_field("generatedRecoveryAuthnCodes") or "kcRecoveryCodesConfirmation" in self.text:
            return "configure-recovery-codes"
        if self.has_field("pass") and "twostep-pass-form" in self.text:
            return "access-pass"
        if self.has_field("otp"):
            return "otp"
        if self.has_field("authenticationExecution"):
            return "select-authenticator"
        if self.has_field("password-new"):
            return "update-password"
        if self.has_field("password") and self.has_field("username"):
            return "login"
        if self.has_field("username"):
            return "username"
        if self.has_field("password"):
            return "password"
        return "other"

    def error(self) -> str:
        m = re.search(r'(?:kc-feedback-text|pf-v5-c-alert__title|id="input-error[^"]*")[^>]*>\s*([^<]+)', self.text)
        return html.unescape(m.group(1).strip()) if m else ""

    def summary(self) -> str:
        title = re.search(r"<title>(.*?)</title>", self.text, re.S)
        return f"{self.status} {self.url} title={title.group(1).strip() if title else ''} error={self.error()!r}"


class LocalhostCookies(DefaultCookiePolicy):
    """Cookies as a browser keeps them: browsers treat http://127.0.0.1 as a secure context (so
    Keycloak's Secure cookies are sent), and ignore the `Version=1` attribute Keycloak adds, which
    Python's cookiejar would otherwise reject as an RFC 2965 cookie."""

    def set_ok_version(self, cookie: Cookie, request: Any) -> bool:
        return True


def _as_browser_would(jar: requests.cookies.RequestsCookieJar) -> None:
    # requests copies the jar into a default-policy jar for each request, so the stored cookies
    # themselves must read as plain, non-Secure cookies.
    for c in jar:
        c.version = 0
        c.secure = False


class LoginDriver:
    """One browser: a cookie jar and the current page."""

    def __init__(self, base_url: str, realm: str, client_id: str = TEST_CLIENT) -> None:
        self.base = base_url.rstrip("/")
        self.realm = realm
        self.client_id = client_id
        self.s = requests.Session()
        self.s.cookies.set_policy(LocalhostCookies())
        self.page: Page | None = None
        self.code: str | None = None

    def _fetch(self, method: str, url: str, data: dict[str, str] | None = None) -> Page:
        resp = self.s.request(method, url, data=data, allow_redirects=False, timeout=30)
        _as_browser_would(self.s.cookies)
        for _ in range(10):
            if resp.status_code not in (301, 302, 303, 307) or not resp.headers.get("Location"):
                break
            loc = urljoin(resp.url, resp.headers["Location"])
            if loc.startswith(REDIRECT_URI):
                self.code = parse_qs(urlparse(loc).query).get("code", [""])[0]
                self.page = Page(loc, resp.status_code, "")
                return self.page
            resp = self.s.get(loc, allow_redirects=False, timeout=30)
            _as_browser_would(self.s.cookies)
        self.page = Page(resp.url, resp.status_code, resp.text)
        return self.page

    def auth_url(self, **extra: str) -> str:
        params = {"client_id": self.client_id, "redirect_uri": REDIRECT_URI, "response_type": "code",
                  "scope": "openid", "state": secrets.token_hex(8), **extra}
        q = "&".join(f"{k}={quote(v)}" for k, v in params.items())
        return f"{self.base}/realms/{self.realm}/protocol/openid-connect/auth?{q}"

    def open(self, **extra: str) -> Page:
        return self._fetch("GET", self.auth_url(**extra))

    def open_url(self, url: str) -> Page:
        return self._fetch("GET", urljoin(self.page.url if self.page else self.base + "/", url))

    def submit(self, values: dict[str, str], form_field: str | None = None, button: str | None = None) -> Page:
        assert self.page is not None
        form = self.page.form_with(form_field or next(iter(values)))
        data = dict(form.fields)
        data.update(values)
        if button is not None:
            data[button] = form.buttons.get(button, "")
        return self._fetch("POST", html.unescape(urljoin(self.page.url, form.action)), data)

    def login(self, username: str, password: str, **extra: str) -> Page:
        self.open(**extra)
        assert self.page is not None
        return self.submit({"username": username, "password": password})

    def try_another_way(self) -> Page:
        assert self.page is not None
        for f in self.page.forms:
            if "tryAnotherWay" in f.fields or "tryAnotherWay" in f.buttons:
                return self._fetch("POST", html.unescape(urljoin(self.page.url, f.action)), {"tryAnotherWay": "on"})
        raise AssertionError("no 'try another way' on " + self.page.summary())

    def choose(self, label_contains: str) -> Page:
        """On the select-authenticator page, pick the option whose list item (its form plus the
        headline Keycloak puts beside it) mentions `label_contains`."""
        assert self.page is not None
        blocks = re.findall(r"<li\b.*?</li>", self.page.text, re.S | re.I)
        for block in blocks:
            if "authenticationExecution" in block and label_contains.lower() in html.unescape(block).lower():
                form = _Forms()
                form.feed(block)
                f = form.forms[0]
                return self._fetch("POST", html.unescape(urljoin(self.page.url, f.action)), f.fields)
        raise AssertionError(f"no option {label_contains!r} on " + self.page.summary())

    def summary(self) -> str:
        """The current page in one line, for assertion messages (before any page: says so)."""
        return self.page.summary() if self.page is not None else "no page yet"

    def logged_in(self) -> bool:
        return self.page is not None and self.page.kind == "done" and bool(self.code)
