"""One real Keycloak for the whole run; a throwaway realm for every test that changes state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyotp
import pytest
import requests

from tests.support.ldap import Directory, start_directory
from tests.support.ldap import component as ldap_component
from tests.support.login import REDIRECT_URI, TEST_CLIENT, LoginDriver

ROOT = Path(__file__).resolve().parent.parent
KC_SCRIPT = ROOT / "deploy" / "local" / "keycloak.sh"
PROVIDER_SCRIPT = ROOT / "deploy" / "local" / "provider.sh"
# Separate instance names let several checkouts run their suites side by side.
INSTANCE = os.environ.get("TWOSTEP_TEST_INSTANCE", "test")


# The provider and core login tests: run again on the lowest supported Keycloak minor by
# deploy/local/run-tests.sh (`-m core`). Named here by file so the files themselves stay unmarked.
CORE_FILES = {"test_setup_login.py", "test_provider_login.py", "test_fail_closed.py", "test_doctor_version.py",
              "test_doors_direct_grant.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in CORE_FILES:
            item.add_marker(pytest.mark.core)


class Admin:
    """The master-realm bootstrap admin, for arranging and inspecting test state."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url, self.username, self.password = url, username, password
        self.s = requests.Session()
        self._exp = 0.0

    def _auth(self) -> None:
        if time.time() < self._exp:
            return
        r = requests.post(f"{self.url}/realms/master/protocol/openid-connect/token", timeout=30, data={
            "grant_type": "password", "client_id": "admin-cli", "username": self.username, "password": self.password})
        r.raise_for_status()
        tok = r.json()
        self.s.headers["Authorization"] = "Bearer " + tok["access_token"]
        self._exp = time.time() + tok["expires_in"] * 0.7

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        self._auth()
        r = self.s.request(method, f"{self.url}/admin/realms{path}", timeout=60, **kw)
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {r.status_code} {r.text[:300]}")
        return r

    def get(self, path: str, **params: Any) -> Any:
        r = self.request("GET", path, params=params)
        return r.json() if r.content else None

    def post(self, path: str, json: Any = None) -> requests.Response:
        return self.request("POST", path, json=json)

    def put(self, path: str, json: Any = None) -> requests.Response:
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> requests.Response:
        return self.request("DELETE", path)


@dataclass
class Keycloak:
    url: str
    admin_username: str
    admin_password: str

    def admin(self) -> Admin:
        return Admin(self.url, self.admin_username, self.admin_password)

    def env(self, realm: str | None = None, **extra: str) -> dict[str, str]:
        """Environment for running the `twostep` command as the bootstrap admin."""
        # The language of times in text output follows LC_ALL/LANG: fixed to English here so output
        # checks do not depend on the machine's locale (tests that want another pass --locale or LANG).
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TWOSTEP_") and k not in ("LC_ALL", "LC_MESSAGES", "LANG")}
        env["LANG"] = "C.UTF-8"
        env.update({"TWOSTEP_URL": self.url, "TWOSTEP_ADMIN_USERNAME": self.admin_username,
                    "TWOSTEP_ADMIN_PASSWORD": self.admin_password})
        if realm:
            env["TWOSTEP_REALM"] = realm
        env.update(extra)
        return env


def provider_jar() -> str:
    """The twostep provider JAR: TWOSTEP_PROVIDER_JAR (run-tests.sh builds it), else built here."""
    jar = os.environ.get("TWOSTEP_PROVIDER_JAR")
    if jar:
        if not Path(jar).is_file():
            pytest.exit(f"TWOSTEP_PROVIDER_JAR: no such file {jar}", returncode=3)
        return jar
    out = subprocess.run(["bash", str(PROVIDER_SCRIPT), "build"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.exit(f"could not build the provider: {out.stderr.strip()[-2000:]}", returncode=3)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def keycloak() -> Iterator[Keycloak]:
    url = os.environ.get("TWOSTEP_TEST_KEYCLOAK_URL")
    user = os.environ.get("TWOSTEP_TEST_ADMIN_USERNAME", "admin")
    password = os.environ.get("TWOSTEP_TEST_ADMIN_PASSWORD", "admin")
    if url:
        yield Keycloak(url.rstrip("/"), user, password)
        return
    # The test Keycloak runs with the provider, as production does (docs/provider.md).
    env = {**EXPIRY_TASK_OPTIONS, **os.environ, "KEYCLOAK_FRESH": "1", "KC_BOOTSTRAP_ADMIN_USERNAME": user,
           "KC_BOOTSTRAP_ADMIN_PASSWORD": password, "KC_PROVIDERS": provider_jar()}
    t0 = time.monotonic()
    out = subprocess.run(["bash", str(KC_SCRIPT), "start", INSTANCE], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.exit(f"could not start Keycloak: {out.stderr.strip()[-2000:]}", returncode=3)
    sys.stderr.write(f"\n[harness] Keycloak started in {time.monotonic() - t0:.1f}s at {out.stdout.strip()}\n")
    try:
        yield Keycloak(out.stdout.strip().splitlines()[-1], user, password)
    finally:
        subprocess.run(["bash", str(KC_SCRIPT), "stop", INSTANCE], capture_output=True)


@pytest.fixture(scope="session")
def admin(keycloak: Keycloak) -> Admin:
    return keycloak.admin()


# The provider's expiry task (docs/provider.md, "The expiry task") in every test Keycloak: every 5 s,
# and only for realms named `exp-*` (tests/test_expiry_task.py makes them). The other tests' realms
# (`t-*`) keep sync as the one that ends provider-mode bypasses, which is what they test.
EXPIRY_TASK_OPTIONS = {"KC_SPI_TWOSTEP__EXPIRY__INTERVAL": "5", "KC_SPI_TWOSTEP__EXPIRY__REALMS": "exp-.*"}


def create_realm(admin: Admin, prefix: str = "t-") -> str:
    """A throwaway realm with the test client."""
    name = prefix + uuid.uuid4().hex[:10]
    admin.post("", {"realm": name, "enabled": True})
    admin.post(f"/{name}/clients", {
        "clientId": TEST_CLIENT, "publicClient": True, "standardFlowEnabled": True,
        "directAccessGrantsEnabled": False, "redirectUris": [REDIRECT_URI], "webOrigins": ["+"],
    })
    return name


@pytest.fixture
def realm(request: pytest.FixtureRequest, keycloak: Keycloak, admin: Admin,
          lock_roles_left: list[str]) -> Iterator[str]:
    """A throwaway realm, deleted after the test. A module's `REALM_PREFIX` names it otherwise: the
    harness's expiry task serves only realms named exp-* (EXPIRY_TASK_OPTIONS)."""
    name = create_realm(admin, prefix=getattr(request.module, "REALM_PREFIX", "t-"))
    yield name
    try:
        lock_roles_left.extend(f"{name}: {role}" for role in lock_roles(admin, name))
        admin.delete(f"/{name}")
    except AssertionError:
        pass


def lock_roles(admin: Admin, realm: str) -> list[str]:
    """Realm roles named twostep-lock-* (fallback mode's lease lock; provider mode never makes one)."""
    return [str(r["name"]) for r in admin.get(f"/{realm}/roles", search="twostep-lock", max=1000)
            if str(r["name"]).startswith("twostep-lock-")]


@pytest.fixture(scope="session")
def lock_roles_left() -> Iterator[list[str]]:
    """Every lock role a test realm still held when its test ended: none may be left after the suite
    (a lock is taken only in fallback mode and always released or swept)."""
    left: list[str] = []
    yield left
    assert not left, f"lock roles left in test realms: {left}"


def otp_credential(secret: str, label: str = "phone") -> dict[str, Any]:
    return {
        "type": "otp", "userLabel": label,
        "secretData": json.dumps({"value": secret}),
        "credentialData": json.dumps({"subType": "totp", "digits": 6, "counter": 0, "period": 30,
                                      "algorithm": "HmacSHA1", "secretEncoding": "BASE32"}),
    }


@dataclass
class User:
    id: str
    username: str
    password: str
    totp_secret: str | None

    def code(self, at: float | None = None) -> str:
        assert self.totp_secret
        return pyotp.TOTP(self.totp_secret).at(at if at is not None else time.time())


class MakeUser(Protocol):
    """The `make_user` fixture: a user with a password (and a TOTP device with otp=True) in the test realm."""

    def __call__(self, username: str, *, otp: bool = False, email: str | None = None,
                 groups: list[str] | None = None, required_actions: list[str] | None = None,
                 realm_name: str | None = None) -> User: ...


def create_user(admin: Admin, realm: str, username: str, *, otp: bool = False, email: str | None = None,
                groups: list[str] | None = None, required_actions: list[str] | None = None) -> User:
    """A user with a random password (and an OTP device when `otp`), made through the admin API."""
    password = "Pw-" + uuid.uuid4().hex[:12]
    secret = pyotp.random_base32() if otp else None
    creds: list[dict[str, Any]] = [{"type": "password", "value": password, "temporary": False}]
    if secret:
        creds.append(otp_credential(secret))
    rep: dict[str, Any] = {"username": username, "enabled": True, "credentials": creds,
                           "email": email or f"{username}@example.test", "emailVerified": True,
                           "firstName": username.title(), "lastName": "Test",
                           "requiredActions": required_actions or []}
    if groups:
        rep["groups"] = groups
    resp = admin.post(f"/{realm}/users", rep)
    uid = resp.headers["Location"].rsplit("/", 1)[-1]
    return User(uid, username, password, secret)


@pytest.fixture
def make_user(admin: Admin, realm: str) -> MakeUser:
    def make(username: str, *, otp: bool = False, email: str | None = None, groups: list[str] | None = None,
             required_actions: list[str] | None = None, realm_name: str | None = None) -> User:
        return create_user(admin, realm_name or realm, username, otp=otp, email=email, groups=groups,
                           required_actions=required_actions)

    return make


class Browser(Protocol):
    """The `browser` fixture: a new LoginDriver on the test realm (or another one)."""

    def __call__(self, realm_name: str | None = None) -> LoginDriver: ...


@pytest.fixture
def browser(keycloak: Keycloak, realm: str) -> Browser:
    def new(realm_name: str | None = None) -> LoginDriver:
        return LoginDriver(keycloak.url, realm_name or realm)

    return new


@dataclass
class Result:
    code: int
    out: str
    err: str


class Twostep(Protocol):
    """The `twostep` fixture: the real command run as a subprocess."""

    def __call__(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result: ...


@pytest.fixture
def twostep(keycloak: Keycloak, realm: str) -> Twostep:
    """Run the real `twostep` command as a subprocess (as an operator or cron would)."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        e = keycloak.env(realm)
        if env:
            e.update(env)
        p = subprocess.run([sys.executable, "-m", "twostep", *args], env=e, capture_output=True, text=True,
                           input=input, timeout=300)
        return Result(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture(scope="session")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    """A real OpenLDAP server (Debian's slapd) on a free loopback port, seeded from
    tests/data/ldap-seed.ldif, stopped at the end of the session."""
    t0 = time.monotonic()
    d = start_directory(tmp_path_factory.mktemp("ldap"))
    sys.stderr.write(f"\n[harness] slapd up in {time.monotonic() - t0:.1f}s at {d.url} ({d.root})\n")
    try:
        yield d
    finally:
        d.stop()


class Federate(Protocol):
    """The `federate` fixture: the directory federated into the test realm; returns the component id."""

    def __call__(self, edit_mode: str, *, import_enabled: bool = True, enabled: bool = True,
                 realm_name: str | None = None) -> str: ...


@pytest.fixture
def federate(admin: Admin, realm: str, directory: Directory) -> Federate:
    """Federate the directory into the test realm (admin REST, as an operator would); returns the
    component id."""

    def make(edit_mode: str, *, import_enabled: bool = True, enabled: bool = True,
             realm_name: str | None = None) -> str:
        r = realm_name or realm
        rep = ldap_component(directory, admin.get(f"/{r}")["id"], edit_mode, import_enabled=import_enabled,
                             enabled=enabled)
        return admin.post(f"/{r}/components", rep).headers["Location"].rsplit("/", 1)[-1]

    return make


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """The production cluster (tests/support/cluster.py): started once per session for every module
    that asks, since a fixture defined per module would start one cluster per module."""
    from tests.support.cluster import running_cluster

    yield from running_cluster()
