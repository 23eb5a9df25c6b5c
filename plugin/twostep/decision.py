"""The sign-in decision of the Keycloak provider, mirrored in Python (docs/formats.md).

The provider (plugin/keycloak, `TwostepDecision`) is what Keycloak runs at each login; this mirror
lets status, the pages and the tests say the same thing, and `tests/test_decision_vectors.py` runs
the same table of cases through both (docs/formats/decision-vectors.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .policy import FAIL_CLOSED_BYPASS_MAX_S, HARD_BYPASS_MAX_S
from .records import parse_time, record_from_fields

CONFIGURE_TOTP = "CONFIGURE_TOTP"
CONFIGURE_CODES = "CONFIGURE_RECOVERY_AUTHN_CODES"


@dataclass(frozen=True)
class SignInPolicy:
    """The part of the realm policy the provider reads, parsed as strictly as the provider parses it."""

    grace_days: int = 0
    enforce_since: datetime | None = None
    bypass_max_s: int = FAIL_CLOSED_BYPASS_MAX_S
    backup_codes: str = "required"

    @classmethod
    def parse(cls, text: str | None) -> SignInPolicy:
        """The fail-closed default (everyone, no grace, 1 h, codes required) when missing or damaged."""
        try:
            data = json.loads(text or "")
            enf = data["enforcement"]
            mode, grace = enf["mode"], enf["grace_days"]
            max_s = data.get("bypass_max_s", FAIL_CLOSED_BYPASS_MAX_S)
            codes = data.get("backup_codes", "required")
            since_raw = data.get("enforce_since", "")
            if (mode not in ("all", "groups", "none") or not _is_int(grace) or not 0 <= grace <= 365
                    or not _is_int(max_s) or codes not in ("required", "offered", "off")
                    or not isinstance(since_raw, str)):
                return cls()
            since = parse_time(since_raw) if since_raw else None
            if since_raw and since is None:
                return cls()
            return cls(grace, since, min(int(max_s), HARD_BYPASS_MAX_S), codes)
        except (ValueError, KeyError, TypeError):
            return cls()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def decide(now: datetime, policy: SignInPolicy, created: datetime, in_scope: bool,
           record: dict[str, Any] | None, has_device: bool, has_codes: bool) -> tuple[str, list[str]]:
    """(outcome, required actions to add to this login); outcomes as in docs/formats.md."""
    rec = record_from_fields({"id": "-"}, record)
    if rec.counts(now, policy.bypass_max_s):
        return "BYPASS", []
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
