"""The one rule for what counts as a secret by its name, for the logs and the audit trail alike.

A field whose name holds one of the words (secret, password, code, seed, token, ...) is a secret,
except the counts in `ALLOWED`. The logs mask such a field (`mask`); the audit drops it (`scrub`).
"""

from __future__ import annotations

from typing import Any

MASK = "[redacted]"
SECRET_WORDS = ("secret", "password", "passwd", "code", "seed", "token", "credential_value", "authorization")
# Counts and kinds, not values: safe whatever their names say.
ALLOWED = frozenset({"codes_count", "codes_remaining", "status"})


def is_secret_name(name: str) -> bool:
    low = name.lower()
    return low not in ALLOWED and any(w in low for w in SECRET_WORDS)


def mask(value: Any) -> Any:
    """Mask nested mappings too (a field `params={"client_secret": ...}` must not slip through)."""
    if isinstance(value, dict):
        return {k: MASK if is_secret_name(str(k)) else mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value


def scrub(event: dict[str, Any]) -> dict[str, Any]:
    """The event without its secret-named fields, nested ones masked."""
    return {k: mask(v) for k, v in event.items() if not is_secret_name(k)}
