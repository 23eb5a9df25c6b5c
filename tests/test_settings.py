"""Settings precedence: defaults < TOML file < TWOSTEP_* environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from twostep.errors import ConfigError
from twostep.settings import load_settings


def test_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('url = "http://file:1/"\nrealm = "from-file"\nclient_id = "cli"\nclient_secret = "f"\ntimeout = 5\n')
    s = load_settings(str(cfg), env={"TWOSTEP_REALM": "from-env"})
    assert (s.url, s.realm, s.timeout, s.uses_service_account) == ("http://file:1", "from-env", 5.0, True)
    s = load_settings(str(cfg), env={"TWOSTEP_REALM": "from-env"}, realm="from-flag")
    assert s.realm == "from-flag"
    s = load_settings(env={"TWOSTEP_CONFIG": str(cfg)})
    assert s.realm == "from-file"


def test_secrets_are_not_in_repr(tmp_path: Path) -> None:
    s = load_settings(env={"TWOSTEP_CLIENT_SECRET": "xyz-secret", "TWOSTEP_ADMIN_PASSWORD": "pw-secret",
                           "TWOSTEP_SMTP_PASSWORD": "smtp-secret"})
    assert "secret" not in repr(s).replace("client_secret", "").replace("smtp_password", "")


@pytest.mark.parametrize(("text", "msg"), [
    ('nope = 1\n', "unknown key(s) nope"),
    ('timeout = "soon"\n', "timeout must be a number"),
    ('verify_tls = "maybe"\n', "verify_tls must be true or false"),
    ('url = [1]\n', "url must be a string"),
    ('url = \n', "not valid TOML"),
])
def test_bad_files(tmp_path: Path, text: str, msg: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        load_settings(str(cfg), env={})


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("/nonexistent/twostep.toml", env={})


def test_realm_and_credentials_required() -> None:
    s = load_settings(env={})
    with pytest.raises(ConfigError, match="no realm"):
        s.require_realm()
    with pytest.raises(ConfigError, match="no Keycloak credentials"):
        s.check_credentials()
