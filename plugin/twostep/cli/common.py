"""What every command shares: --realm/--config, settings, the Keycloak client, output."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import timefmt
from ..actor import Actor, acting_person, actor_from_settings
from ..audit import AuditSink, sink_for
from ..clock import Clock, system_clock
from ..errors import InvalidInput
from ..keycloak_adapter import KeycloakClient
from ..policy import utc_iso
from ..settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    config_file: str | None = None
    realm: str | None = None
    clock: Clock = system_clock
    locale: str | None = None  # --locale / TWOSTEP_LOCALE; else LC_ALL, LC_MESSAGES, LANG; else en
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def lang(self) -> str:
        """The language of times in text output (en, de, ru); --json is always ISO-8601."""
        if self.locale:
            lang = timefmt.normalize(self.locale)
            if lang is None:
                raise InvalidInput(f"--locale {self.locale!r} is not supported: use one of "
                                   + ", ".join(timefmt.SUPPORTED))
            return lang
        return timefmt.env_locale()

    def when(self, value: object, kind: str = "since") -> str:
        """A time for text output, in self.lang, relative to the clock (timefmt.friendly)."""
        return timefmt.friendly(value, self.clock(), self.lang, kind)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file, realm=self.realm)
        return self._settings

    def client(self) -> KeycloakClient:
        return KeycloakClient(self.settings)


def realm_options(fn: F) -> F:
    """--realm, --config and --locale on every command (they may also be given before the command)."""

    @click.option("--config", "config_file", metavar="FILE", help="TOML settings file (else $TWOSTEP_CONFIG).")
    @click.option("--realm", metavar="R", help="Realm to act on (else $TWOSTEP_REALM or the file).")
    @click.option("--locale", "locale", metavar="LANG", envvar="TWOSTEP_LOCALE",
                  help="Language of times in text output: en, de or ru (else $LC_ALL/$LANG, else en).")
    @functools.wraps(fn)
    def wrapper(*args: Any, config_file: str | None, realm: str | None, locale: str | None, **kwargs: Any) -> Any:
        app = click.get_current_context().ensure_object(App)
        if config_file:
            app.config_file = config_file
        if realm:
            app.realm = realm
        if locale:
            app.locale = locale
            _ = app.lang  # a bad --locale is refused before anything is read or changed
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def app() -> App:
    return click.get_current_context().ensure_object(App)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def emit_list(rows: list[dict[str, Any]], as_json: bool, key: str, now: datetime, empty: str) -> bool:
    """A list command's two short answers: --json prints `{key: rows, "now": ...}`; no rows prints
    `empty`. True when one of them was the answer (the caller prints the rows otherwise)."""
    if as_json:
        emit_json({key: rows, "now": utc_iso(now)})
        return True
    if not rows:
        click.echo(empty)
        return True
    return False


def write_secret_file(path: str, content: str) -> None:
    """A new file, mode 0600 from the first byte; never overwrite (a secret may already live there)."""
    target = Path(path)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"{path} already exists; choose a new file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)


def check_writable_new_file(path: str) -> None:
    """Before changing anything, make sure the output file can be created (nothing half-applied)."""
    target = Path(path)
    if target.exists():
        raise InvalidInput(f"{path} already exists; choose a new file")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInput(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InvalidInput(f"cannot write {path}: directory {parent} is not writable")


def actor_of(settings: Settings) -> str:
    """Who acts, for the audit record and the user's e-mail (one format: actor.actor_name)."""
    return actor_from_settings(settings, settings.realm or "?").name


def audit_sink(settings: Settings) -> AuditSink:
    """The one audit sink of every command: the audit file, else stderr (stdout stays the command's
    own output, text or --json)."""
    return sink_for(settings.audit_file)


def person(a: App, kc: KeycloakClient, actor: str | None) -> Actor:
    """The person acting: --actor if given (blank: none), else the settings' (TWOSTEP_ACTOR)."""
    settings = a.settings if actor is None else replace(a.settings, actor=actor.strip() or None)
    return acting_person(kc, settings)


def done(result: dict[str, Any], as_json: bool) -> None:
    """A change's result: the JSON, or one line per change ("would ..." on a dry run)."""
    if as_json:
        emit_json(result)
        return
    verb = "would" if result.get("dry_run") else "done:"
    a = app()
    for change in result.get("changes", []):
        click.echo(f"{verb} {timefmt.replace_iso(change, a.clock(), a.lang)}")


def show_pass(result: dict[str, Any]) -> None:
    """A new access pass, printed this once (the grant's own output; never audited or logged)."""
    if result.get("access_pass"):
        click.echo(f"access pass ({result.get('kind', 'pass')}), shown only now: {result['access_pass']}")
        click.echo("  tell it to the user by a channel you trust (read it aloud); Keycloak keeps only a hash")
