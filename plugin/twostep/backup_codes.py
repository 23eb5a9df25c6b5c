"""Backup codes as Keycloak's own `recovery-authn-codes` credential: generate, status, revoke.

Only hashes go to Keycloak (`recovery_codes.credential_representation`); the plain codes are
returned once to the caller and never logged or audited. Writing codes keeps the user's OTP
device first in credential order, so a user with OTP still sees the OTP page first (since 26.4
Keycloak follows credential order; upstream issues 44115, 46915).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from . import audit, recovery_codes
from .audit import AuditSink
from .enforcement import user_in_scope
from .errors import InvalidInput, KeycloakUnavailable, NotFound
from .keycloak_adapter import JSON, KeycloakClient
from .notify import EMAIL, Notifier
from .policy import CODES_ATTRS, CODES_PROVENANCE_CREDENTIAL, RealmPolicy, utc_iso
from .realm_policy import read_policy
from .records import STORE_CREDENTIAL_NAME, store_for

CODES_BY, CODES_AT = CODES_ATTRS
DEFAULT_COUNT = 12
LOW_WARNING = 3
OTP_TYPE = "otp"


@dataclass(frozen=True)
class CodesStatus:
    username: str
    present: bool
    total: int | None = None
    remaining: int = 0
    next_number: int | None = None
    made_by: str | None = None  # "admin" or "user"
    admin: str | None = None
    made_at: str | None = None
    low: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def codes_credentials(creds: list[JSON]) -> list[JSON]:
    return [c for c in creds if c.get("type") == recovery_codes.CREDENTIAL_TYPE]


def otp_credentials(creds: list[JSON]) -> list[JSON]:
    return [c for c in creds if c.get("type") == OTP_TYPE]


def provenance(user: JSON, creds: list[JSON]) -> tuple[str | None, str | None]:
    """(admin who made the codes, createdDate of the codes they made) from either store; Nones if unknown."""
    for cred in creds:
        if cred.get("type") == CODES_PROVENANCE_CREDENTIAL:
            try:
                data = json.loads(str(cred.get("credentialData") or ""))
            except ValueError:
                return None, None
            if isinstance(data, dict):
                by, ms = data.get("by"), data.get("codes_created")
                return (by if isinstance(by, str) else None), (ms if isinstance(ms, str) else None)
            return None, None
    attrs = user.get("attributes") or {}
    return _first(attrs, CODES_BY), _first(attrs, CODES_AT)


def _first(attrs: JSON, key: str) -> str | None:
    values = (attrs or {}).get(key) or []
    return str(values[0]) if values else None


def in_scope(kc: KeycloakClient, user: JSON, policy: RealmPolicy) -> bool:
    """Whether the realm's policy requires a second factor of this user."""
    return user_in_scope(kc, user["id"], policy)


def realm_policy(kc: KeycloakClient) -> RealmPolicy:
    """The realm's two-step policy; an error when the realm was never set up."""
    reading = read_policy(kc)
    if not reading.present:
        raise InvalidInput(f"realm {kc.realm!r} is not under the two-step policy; run `twostep setup` first")
    return reading.policy


def check_eligible(kc: KeycloakClient, user: JSON, creds: list[JSON]) -> None:
    """Backup codes are a second step: only for a user who must have one or already has a device."""
    policy = realm_policy(kc)
    if otp_credentials(creds) or in_scope(kc, user, policy):
        return
    raise InvalidInput(
        f"user {user.get('username')!r} has no second factor and the policy of realm {kc.realm!r} "
        "does not require one; backup codes would become their only second step. "
        "Change the policy (twostep setup --enforce ...) or let the user enroll a device first"
    )


def keep_otp_first(kc: KeycloakClient, user_id: str) -> None:
    """Move the OTP devices ahead of every other second factor, keeping their own order."""
    creds = kc.user_credentials(user_id)
    otps = otp_credentials(creds)
    for cred in reversed(otps):
        kc.move_credential_first(user_id, cred["id"])


def validate_count(count: int) -> None:
    if not recovery_codes.MIN_CODES <= count <= recovery_codes.MAX_CODES:
        raise InvalidInput(
            f"--count must be between {recovery_codes.MIN_CODES} and {recovery_codes.MAX_CODES}, got {count}"
        )


def generate(kc: KeycloakClient, user: JSON, *, count: int, actor: str, now: datetime, sink: AuditSink,
             notify: bool = True, reason: str | None = None,
             rng: recovery_codes.RandomSource | None = None, notifier: Notifier = EMAIL) -> tuple[list[str], str]:
    """Replace the user's backup codes with `count` fresh ones; returns (codes, notification outcome).

    The codes are numbered 1..N in the returned order; Keycloak asks for them in that order.
    """
    validate_count(count)
    uid = user["id"]
    creds = kc.user_credentials(uid)
    check_eligible(kc, user, creds)
    codes = recovery_codes.generate_codes(count) if rng is None else recovery_codes.generate_codes(count, rng)
    created_ms = int(now.timestamp() * 1000)
    rep = recovery_codes.credential_representation(codes, created_ms, None)
    in_credential = store_for(kc).name == STORE_CREDENTIAL_NAME
    if in_credential:
        # Provider mode: one transaction in Keycloak (the provider's admin extension), after its own
        # permission check for this user: the codes (hashes only), their provenance (a credential, as
        # LDAP users in READ_ONLY mode can't take attributes) and the OTP devices kept first.
        kc.store_codes(uid, {"credential": {k: rep[k] for k in ("secretData", "credentialData", "userLabel")
                                            if isinstance(rep.get(k), str)},
                             "count": count, "by": actor, "reason": reason})
        return _generated(kc, user, codes, count, creds, actor, now, sink, notify, reason, notifier)
    kc.store_user_credential(uid, rep, {CODES_BY: [actor], CODES_AT: [str(created_ms)]})
    after = kc.user_credentials(uid)
    stored = codes_credentials(after)
    if len(stored) != 1 or recovery_codes.parse_credential(stored[0]).remaining != count:
        raise KeycloakUnavailable(
            f"Keycloak did not store the backup codes of {user.get('username')!r} as expected "
            "(is the recovery-authn-codes credential provider enabled?)"
        )
    if stored[0].get("createdDate") != created_ms:
        # Keycloak chose its own creation time: record that one, so `status` can tell admin from user.
        real_ms = int(stored[0].get("createdDate") or 0)
        kc.set_user_attributes(uid, {CODES_AT: [str(real_ms)]})
    keep_otp_first(kc, uid)
    return _generated(kc, user, codes, count, creds, actor, now, sink, notify, reason, notifier)


def _generated(kc: KeycloakClient, user: JSON, codes: list[str], count: int, creds: list[JSON], actor: str,
               now: datetime, sink: AuditSink, notify: bool, reason: str | None,
               notifier: Notifier) -> tuple[list[str], str]:
    """Audit (never the codes) and tell the user."""
    uid = user["id"]
    sink.write(audit.event("codes.generate", realm=kc.realm, actor=actor, now=now, user_id=uid,
                           username=user.get("username"), codes_count=count,
                           replaced=bool(codes_credentials(creds)), reason=reason))
    outcome = "not requested"
    if notify:
        details = {"count": count, "reason": reason}
        outcome = notifier.notify(kc, user, "codes.generate", details, sink, actor, now)
    return codes, outcome


def status(kc: KeycloakClient, user: JSON, credentials: list[JSON] | None = None) -> CodesStatus:
    username = str(user.get("username", ""))
    creds = kc.user_credentials(user["id"]) if credentials is None else credentials
    stored = codes_credentials(creds)
    if not stored:
        return CodesStatus(username, False)
    info = recovery_codes.parse_credential(stored[0])
    admin, admin_ms = provenance(user, creds)
    by_admin = info.created_ms is not None and admin_ms == str(info.created_ms)
    made_at = None
    if info.created_ms is not None:
        made_at = utc_iso(datetime.fromtimestamp(info.created_ms / 1000).astimezone())
    return CodesStatus(
        username=username, present=True, total=info.total, remaining=info.remaining,
        next_number=info.next_number, made_by="admin" if by_admin else "user",
        admin=admin if by_admin else None, made_at=made_at,
        low=info.remaining <= LOW_WARNING,
    )


def revoke(kc: KeycloakClient, user: JSON, *, actor: str, now: datetime, sink: AuditSink,
           reason: str | None = None, notify: bool = True, notifier: Notifier = EMAIL) -> tuple[int, str]:
    """Delete the user's backup codes; returns (how many sets were removed, notification outcome)."""
    uid = user["id"]
    stored = codes_credentials(kc.user_credentials(uid))
    if not stored:
        raise NotFound(f"user {user.get('username')!r} has no backup codes")
    for cred in stored + [c for c in kc.user_credentials(uid) if c.get("type") == CODES_PROVENANCE_CREDENTIAL]:
        kc.delete_credential(uid, cred["id"])
    attrs = user.get("attributes") or {}
    if any(k in attrs for k in CODES_ATTRS):
        kc.set_user_attributes(uid, dict.fromkeys(CODES_ATTRS))
    sink.write(audit.event("codes.revoke", realm=kc.realm, actor=actor, now=now, user_id=uid,
                           username=user.get("username"), reason=reason))
    outcome = "not requested"
    if notify:
        outcome = notifier.notify(kc, user, "codes.revoke", {"reason": reason}, sink, actor, now)
    return len(stored), outcome
