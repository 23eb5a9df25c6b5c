"""The sign-in decision of the Keycloak provider, mirrored in Python (docs/formats.md).

The provider (plugin/keycloak, `TwostepDecision`) is what Keycloak runs at each login: second factor
or not, for this user at this door. This mirror keeps the Python side honest about that rule:
`tests/test_decision_vectors.py` runs the same table of cases through both
(docs/formats/decision-vectors.json). It reads the record as the provider does (`SignInPolicy`), not
as the services do (`realm_policy`), and decides nothing for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .policy import DEFAULT_BYPASS_MAX_S, FAIL_CLOSED_BYPASS_MAX_S, HARD_BYPASS_MAX_S, readable, trusted_idps
from .records import parse_time, record_from_fields

CONFIGURE_TOTP = "CONFIGURE_TOTP"
CONFIGURE_CODES = "CONFIGURE_RECOVERY_AUTHN_CODES"


@dataclass(frozen=True)
class SignInPolicy:
    """The part of the realm policy the provider reads, parsed as strictly as the provider parses it.
    Not intact (missing or damaged): everyone in scope, no grace, 1 h, codes required."""

    intact: bool = False
    grace_days: int = 0
    enforce_since: datetime | None = None
    bypass_max_s: int = FAIL_CLOSED_BYPASS_MAX_S
    backup_codes: str = "required"
    trusted_idps: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> SignInPolicy:
        try:
            data = json.loads(text or "")
        except ValueError:
            return cls()
        if not readable(data):
            return cls()
        since = data.get("enforce_since", "")
        return cls(True, data["enforcement"]["grace_days"], parse_time(since) if since else None,
                   min(int(data.get("bypass_max_s", DEFAULT_BYPASS_MAX_S)), HARD_BYPASS_MAX_S),
                   str(data.get("backup_codes", "required")), trusted_idps(data.get("trusted_idps")))


@dataclass(frozen=True)
class Door:
    """Where the login happens (docs/formats.md, "Doors"): the identity provider a brokered login came
    through, whether it is a password grant, and whether the user has an `otp` credential."""

    identity_provider: str | None = None
    direct_grant: bool = False
    has_otp: bool = False


BROWSER = Door()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def decide(now: datetime, policy: SignInPolicy, created: datetime | None, in_scope: bool,
           record: dict[str, Any] | None, has_device: bool, has_codes: bool,
           door: Door = BROWSER) -> tuple[str, list[str]]:
    """(outcome, required actions to add to this login); outcomes as in docs/formats.md. `created`
    None: Keycloak cannot keep the user's creation time (the grace starts at enforce_since)."""
    rec = record_from_fields({"id": "-"}, record)
    if rec.counts(now, policy.bypass_max_s):
        if rec.kind == "password":
            return "BYPASS", []
        if not door.direct_grant and rec.pass_live:
            return "PASS", []  # the second factor runs; the access pass is accepted in place of the code
        # a pass used up, a password grant or an unknown kind: as if there were no bypass
    if policy.intact and door.identity_provider is not None and door.identity_provider in policy.trusted_idps:
        return "TRUSTED_IDP", []
    outcome, actions = _browser(now, policy, created or EPOCH, in_scope, has_device, has_codes)
    if not door.direct_grant or outcome != "REQUIRED":
        return outcome, actions
    if not door.has_otp:
        return "REFUSED", [CONFIGURE_TOTP]
    return "REQUIRED", [a for a in actions if a != CONFIGURE_CODES]


def _browser(now: datetime, policy: SignInPolicy, created: datetime, in_scope: bool, has_device: bool,
             has_codes: bool) -> tuple[str, list[str]]:
    in_scope = in_scope or not policy.intact
    start = max(created, policy.enforce_since) if policy.enforce_since else created
    grace_over = now >= start + timedelta(days=policy.grace_days)
    if has_device or has_codes:
        actions: list[str] = []
        if has_device and not has_codes and policy.backup_codes == "required":
            actions.append(CONFIGURE_CODES)
        if not has_device and in_scope and grace_over:
            actions.append(CONFIGURE_TOTP)
        return "REQUIRED", actions
    if not in_scope:
        return "NOT_IN_SCOPE", []
    if not grace_over:
        return "GRACE", []
    return "ENROLL", [CONFIGURE_TOTP] + ([CONFIGURE_CODES] if policy.backup_codes != "off" else [])
