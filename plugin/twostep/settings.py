"""One settings object: built-in defaults < TOML file < TWOSTEP_* environment < command-line flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

ENV_PREFIX = "TWOSTEP_"


@dataclass(frozen=True)
class Settings:
    url: str = "http://127.0.0.1:8080"
    realm: str | None = None
    # Service account of the realm (the normal case) ...
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    # ... or a bootstrap admin of admin_realm (first setup only).
    admin_username: str | None = None
    admin_password: str | None = field(default=None, repr=False)
    admin_realm: str = "master"
    timeout: float = 10.0
    verify_tls: bool = True
    # Who is acting, for the audit record when the credential is a shared service account.
    actor: str | None = None
    audit_file: str | None = None
    smtp_password: str | None = field(default=None, repr=False)

    @property
    def uses_service_account(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def require_realm(self) -> str:
        if not self.realm:
            raise ConfigError("no realm given: pass --realm or set TWOSTEP_REALM")
        return self.realm

    def check_credentials(self) -> None:
        if self.uses_service_account:
            return
        if self.admin_username and self.admin_password:
            return
        raise ConfigError(
            "no Keycloak credentials: set TWOSTEP_CLIENT_ID and TWOSTEP_CLIENT_SECRET "
            "(service account) or TWOSTEP_ADMIN_USERNAME and TWOSTEP_ADMIN_PASSWORD (bootstrap admin)"
        )


_FIELDS = {f.name: f for f in fields(Settings)}


def _coerce(name: str, raw: Any, source: str) -> Any:
    kind = _FIELDS[name].type
    if kind == "float":
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: {name} must be a number, got {raw!r}") from None
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{source}: {name} must be true or false, got {raw!r}")
    if not isinstance(raw, str):
        raise ConfigError(f"{source}: {name} must be a string")
    return raw


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"config file {path}: unknown key(s) {', '.join(unknown)}")
    return {k: _coerce(k, v, str(path)) for k, v in data.items()}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        key = ENV_PREFIX + name.upper()
        if env.get(key, "") != "":
            out[name] = _coerce(name, env[key], key)
    return out


def load_settings(
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings; `overrides` are command-line values (None means 'not given')."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        values.update(_from_file(Path(path)))
    values.update(_from_env(env))
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["url"] = str(values.get("url", Settings.url)).rstrip("/")
    return replace(Settings(), **values)
