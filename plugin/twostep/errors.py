"""Errors named by what they mean to an operator, not by the HTTP status that carried them.

Every kind is a `TwostepError` with its own exit code, given where the kind is declared
(`class NotFound(TwostepError, exit_code=4)`); the CLI prints the message as one line and exits with it.
"""

from __future__ import annotations

from typing import Any


class TwostepError(Exception):
    """Base of every error the CLI turns into one clear line and a non-zero exit."""

    exit_code = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code


class InvalidInput(TwostepError, exit_code=2):
    """The operator's input cannot be used: a value, a flag or a file out of what is accepted."""


class ConfigError(TwostepError, exit_code=3):
    """twostep's own settings are missing or contradict each other."""


class NotFound(TwostepError, exit_code=4):
    """What the command names (a user, a realm, a record) does not exist."""


class Conflict(TwostepError, exit_code=5):
    """The state does not allow it now (already there, changed meanwhile): re-read and decide again."""


class Unauthorized(TwostepError, exit_code=6):
    """Keycloak rejected the credentials we presented."""


class Forbidden(TwostepError, exit_code=6):
    """The credentials are valid but lack a permission."""


class KeycloakUnavailable(TwostepError, exit_code=7):
    """Keycloak could not be reached, timed out, or answered with a server error."""


class BadRequest(TwostepError, exit_code=8):
    """Keycloak refused a request as malformed (usually a validation message)."""
