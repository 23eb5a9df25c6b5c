"""Bad input and outages: one clear line, a non-zero exit, no traceback, nothing changed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import Admin, Result, Twostep


def _one_clear_line(r: Result) -> None:
    assert r.code != 0
    assert "Traceback" not in r.err + r.out
    lines = [x for x in r.err.splitlines() if x.strip()]
    assert len(lines) == 1, r.err
    assert lines[0].startswith("twostep: error:"), lines[0]


def test_unknown_realm(twostep: Twostep) -> None:
    r = twostep("setup", "--realm", "no-such-realm")
    _one_clear_line(r)
    assert "no-such-realm" in r.err and "does not exist" in r.err


def test_wrong_credentials(twostep: Twostep, admin: Admin, realm: str) -> None:
    r = twostep("setup", env={"TWOSTEP_ADMIN_PASSWORD": "wrong"})
    _one_clear_line(r)
    assert "rejected the credentials" in r.err
    assert "wrong" not in r.err, "the password is never echoed"
    assert admin.get(f"/{realm}")["browserFlow"] == "browser"


def test_wrong_client_secret(twostep: Twostep, realm: str) -> None:
    r = twostep("status", env={"TWOSTEP_CLIENT_ID": "twostep-cli", "TWOSTEP_CLIENT_SECRET": "s3cr3t-value"})
    _one_clear_line(r)
    assert "s3cr3t-value" not in r.err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_keycloak_not_running(twostep: Twostep) -> None:
    r = twostep("status", env={"TWOSTEP_URL": f"http://127.0.0.1:{_closed_port()}"})
    _one_clear_line(r)
    assert "cannot reach Keycloak" in r.err


def test_unreachable_url(twostep: Twostep) -> None:
    env = {"TWOSTEP_URL": "http://keycloak.invalid:8080", "TWOSTEP_TIMEOUT": "3"}
    r = twostep("status", env=env)
    _one_clear_line(r)
    assert "cannot reach Keycloak" in r.err
    # doctor reports it as a failed check with its fix, and exits non-zero
    d = twostep("doctor", env=env)
    assert d.code == 1 and "Traceback" not in d.err + d.out
    assert "[!!] connection and credentials: cannot reach Keycloak" in d.out and "fix:" in d.out


def test_no_credentials(twostep: Twostep) -> None:
    r = twostep("status", env={"TWOSTEP_ADMIN_USERNAME": "", "TWOSTEP_ADMIN_PASSWORD": ""})
    _one_clear_line(r)
    assert "no Keycloak credentials" in r.err


@pytest.mark.parametrize(("args", "needle"), [
    (("setup", "--enforce", "everyone"), "--enforce"),
    (("setup", "--otp-digits", "7"), "--otp-digits"),
    (("setup", "--bypass-max", "90d"), "--bypass-max"),
    (("setup", "--bypass-max", "soon"), "cannot read duration"),
])
def test_bad_setup_arguments_change_nothing(twostep: Twostep, admin: Admin, realm: str, args: tuple[str, ...],
                                           needle: str) -> None:
    r = twostep(*args)
    _one_clear_line(r)
    assert needle in r.err
    assert admin.get(f"/{realm}")["browserFlow"] == "browser"


def test_click_usage_errors_are_one_line(twostep: Twostep) -> None:
    r = twostep("setup", "--grace-days", "-1")
    assert r.code == 2 and "Traceback" not in r.err
    assert "--grace-days" in r.err


def test_bad_config_file(twostep: Twostep, tmp_path: Path) -> None:
    cfg = tmp_path / "twostep.toml"
    cfg.write_text('url = "http://127.0.0.1:1"\nrealm_name = "x"\n')
    r = twostep("status", "--config", str(cfg))
    _one_clear_line(r)
    assert "unknown key(s) realm_name" in r.err
