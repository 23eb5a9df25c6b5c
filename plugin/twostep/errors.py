"""Errors named by what they mean to an operator, not by the HTTP status that carried them."""

from __future__ import annotations


class TwostepError(Exception):
    """Base of every error the CLI turns into one clear line and a non-zero exit."""

    exit_code = 1


class InvalidInput(TwostepError):
    exit_code = 2


class ConfigError(TwostepError):
    exit_code = 3


class NotFound(TwostepError):
    exit_code = 4


class Conflict(TwostepError):
    exit_code = 5


class Unauthorized(TwostepError):
    """Keycloak rejected the credentials we presented."""

    exit_code = 6


class Forbidden(TwostepError):
    """The credentials are valid but lack a permission."""

    exit_code = 6


class KeycloakUnavailable(TwostepError):
    """Keycloak could not be reached, timed out, or answered with a server error."""

    exit_code = 7


class BadRequest(TwostepError):
    """Keycloak refused a request as malformed (usually a validation message)."""

    exit_code = 8
