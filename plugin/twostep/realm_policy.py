"""The one reader of the realm's two-step policy (realm attribute `twostep.policy`; its format and
codec: `policy`).

Every service asks here, so they agree on what a missing or damaged record means: act on the
fail-closed policy (everyone in scope, no grace, the shortest bypass) and say it was not intact.
Nothing else parses the record (`recorded_value` hands status one raw key to report).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import Forbidden, NotFound
from .keycloak_adapter import JSON, KeycloakClient
from .policy import FAIL_CLOSED_BYPASS_MAX_S, POLICY_ATTR, Enforcement, RealmPolicy

# What a missing or damaged record means: everyone in scope, no grace, the shortest bypass, and only
# the bypass that stays two-step (an access pass).
FAIL_CLOSED = RealmPolicy(Enforcement("all", (), 0), "", FAIL_CLOSED_BYPASS_MAX_S, bypass_kinds=("pass",),
                          bypass_default="pass")


@dataclass(frozen=True)
class PolicyReading:
    policy: RealmPolicy  # what to act on: the record, or the fail-closed policy when not intact
    intact: bool  # the record is there and readable
    present: bool  # the realm has a record at all (was set up), readable or not

    @property
    def recorded(self) -> RealmPolicy | None:
        """The record itself; None when missing or damaged."""
        return self.policy if self.intact else None


def policy_of(realm: JSON) -> PolicyReading:
    """From a realm representation already read."""
    attrs = realm.get("attributes") or {}
    parsed = RealmPolicy.from_json(attrs.get(POLICY_ATTR))  # None when missing or damaged
    if parsed is None:
        return PolicyReading(FAIL_CLOSED, False, POLICY_ATTR in attrs)
    return PolicyReading(parsed, True, True)


def recorded_value(realm: JSON, key: str) -> Any:
    """One key of the record as written, for saying what was not readable in it (status); None when
    the record or the key is missing or the record is not JSON. Never a value to act on."""
    try:
        data = json.loads((realm.get("attributes") or {}).get(POLICY_ATTR) or "{}")
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None


def read_policy(kc: KeycloakClient) -> PolicyReading:
    realm = kc.get_realm()
    if "attributes" not in realm:
        # An admin without view-realm (a help desk with manage-users) gets the realm without its
        # attributes; the provider's admin extension hands them the policy record itself.
        try:
            raw = kc.extension_policy()
        except (NotFound, Forbidden):
            return policy_of(realm)  # no extension (fallback mode) or not allowed: fail closed
        return policy_of({"attributes": {} if raw is None else {POLICY_ATTR: raw}})
    return policy_of(realm)
