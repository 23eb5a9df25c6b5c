"""`twostep doctor` and the tested Keycloak range (26.4.0 to 26.7.3, what CI runs): inside it the
check passes and names the range; outside it (older, newer, unreadable) the check fails, says
"untested" or "older", and doctor exits non-zero."""

from __future__ import annotations

import json
from typing import Any

import pytest
from twostep import doctor
from twostep.keycloak_adapter import KeycloakClient

from tests.conftest import Keycloak, Twostep
from tests.support.bypass_helpers import client


@pytest.mark.parametrize(("version", "ok", "needle"), [
    ("26.4.0", True, "26.4.0 (tested: 26.4.0 to 26.7.3)"),
    ("26.5.6", True, "(tested: 26.4.0 to 26.7.3)"),
    ("26.7.3", True, "(tested: 26.4.0 to 26.7.3)"),
    ("26.7.4", False, "newer than the tested range: untested"),
    ("26.8.0", False, "newer than the tested range: untested"),
    ("27.0.0", False, "newer than the tested range: untested"),
    ("26.3.5", False, "older than the tested range"),
    ("25.0.6", False, "older than the tested range"),
    ("26.10.0-SNAPSHOT", False, "newer than the tested range"),
    ("nightly", False, "not a release number; untested"),
    ("26.7", False, "not a release number"),
])
def test_version_check_against_tested_range(version: str, ok: bool, needle: str) -> None:
    c = doctor.version_check(version)
    assert c.ok is ok and needle in c.detail, c
    assert "26.4.0 to 26.7.3" in c.detail
    assert ok or "KEYCLOAK_VERSION" in c.fix


def test_doctor_on_the_real_keycloak_names_the_tested_range(twostep: Twostep, keycloak: Keycloak) -> None:
    r = twostep("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(r.out)["checks"]}
    real = client(keycloak.url, "master").server_info()["systemInfo"]["version"]
    assert checks["Keycloak version"]["ok"] is True, checks["Keycloak version"]
    assert checks["Keycloak version"]["detail"] == f"{real} (tested: 26.4.0 to 26.7.3)"


class _Reports(KeycloakClient):
    """The real Keycloak, except that its server info names another release."""

    version = ""

    def server_info(self) -> Any:
        info = super().server_info()
        info["systemInfo"]["version"] = self.version
        return info


@pytest.mark.parametrize("version", ["26.8.1", "26.3.0"])
def test_doctor_flags_a_keycloak_outside_the_range(keycloak: Keycloak, realm: str, version: str) -> None:
    kc = _Reports(client(keycloak.url, realm).settings)
    kc.version = version
    report = doctor.doctor(kc)
    (check,) = [c for c in report.checks if c.name == "Keycloak version"]
    assert not check.ok and not report.ok
    assert check.detail.startswith(version) and "(tested: 26.4.0 to 26.7.3)" in check.detail
