"""Kinds of bypass (docs/bypass.md, "Kinds"): the realm policy's `bypass_kinds` and `bypass_default`,
read as the provider reads them (`BypassKinds.parse`), and what a grant asks for."""

from __future__ import annotations

from typing import Any

from .errors import InvalidInput

# In the order the pages offer them: the access pass (still two-step) first.
BYPASS_KINDS = ("pass", "password")
PASS_USES = ("once", "multi")


def parse_bypass_kinds(text: str) -> tuple[str, ...]:
    """`--bypass-kinds pass,password`: the kinds, pass first; InvalidInput for anything else."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if not kinds or any(k not in BYPASS_KINDS for k in kinds):
        raise InvalidInput(f"--bypass-kinds {text!r}: give pass, password or pass,password")
    return tuple(k for k in BYPASS_KINDS if k in kinds)


def bypass_kinds_of(data: dict[str, Any]) -> tuple[tuple[str, ...], str]:
    """The kinds admins may grant and the default, as the provider reads them (BypassKinds.parse) from
    an intact record: `bypass_kinds` absent, both; `bypass_default` absent or not allowed, the pass if
    allowed, else the first (so both keys absent: both, the pass); a `bypass_kinds` that is not a
    non-empty list of `pass` / `password`, the access pass only (fail closed: the sign-in stays two-step)."""
    kinds, default = data.get("bypass_kinds"), data.get("bypass_default")
    if kinds is None:
        kinds = list(BYPASS_KINDS)
    if not isinstance(kinds, list) or not kinds or any(k not in BYPASS_KINDS for k in kinds):
        return ("pass",), "pass"
    ordered = tuple(k for k in BYPASS_KINDS if k in kinds)
    return ordered, default if isinstance(default, str) and default in ordered else ordered[0]


def grant_default(default: str, provider_mode: bool) -> str:
    """The kind a grant gets when it names none: the realm's default in provider mode; in fallback mode
    (no provider) the password, since the pass needs the provider's authenticator."""
    return default if provider_mode else "password"


def choose_kind(kinds: tuple[str, ...], default: str, pass_use: str | None, password_only: bool) -> str:
    """The kind of a new grant (`pass` / `password`): asked for, or the realm's default; InvalidInput
    with the one line the provider also gives when the realm does not allow it."""
    if pass_use is not None and password_only:
        raise InvalidInput("give either --pass once|multi or --password, not both")
    kind = "pass" if pass_use is not None else "password" if password_only else default
    if kind not in kinds:
        raise InvalidInput("the realm policy forbids password-only bypasses: grant an access pass instead "
                           "(--pass once|multi)" if kind == "password" else
                           f"the realm policy does not allow access-pass bypasses (bypass kinds: {','.join(kinds)})")
    return kind
