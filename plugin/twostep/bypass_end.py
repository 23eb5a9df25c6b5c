"""The one way a bypass ends: revoke (`bypass.revoke`), and expiry, early end and drift repair (the
sync job). Fallback mode: `end_bypass` (lease lock, marker "ending", then `finish`); provider mode's
sync: `end_indexed` through the record's expiry index entry (revoke there is one request to the
admin extension, in `bypass.revoke`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import bypass_index
from .audit import AuditSink, EndKind, event
from .enforcement import CONFIGURE_TOTP
from .errors import NotFound
from .keycloak_adapter import JSON, KeycloakClient
from .lock import acquire_lock, release_lock, user_lock_key
from .policy import BYPASS_CREDENTIAL, utc_iso
from .records import ENDING_VALUE, Record, RecordStore, realm_context

# Sessions whose start lies this far around the bypass window are counted as opened during it
# (our clock and Keycloak's may differ a little; ending one session too many is the safe side).
SESSION_SKEW_MS = 5_000


@dataclass(frozen=True)
class EndPlan:
    kind: EndKind
    user_id: str
    username: str
    marker: str | None
    lock_key: str
    why: str
    end_sessions: bool = True
    # In scope of the enforcement policy and (reset device or grace over): no device -> CONFIGURE_TOTP.
    require_device: bool = False


def still_applies(plan: EndPlan, rec: Record) -> bool:
    """The user is still in the state the plan was made for (else another run or an admin acted)."""
    return rec.marker not in (None, ENDING_VALUE) and rec.lock_key() == plan.lock_key


def end_bypass(kc: KeycloakClient, plan: EndPlan, now: datetime, audit: AuditSink, actor: str,
               lease_s: float, *, store: RecordStore | None = None, **audit_details: Any) -> str:
    """End one bypass exactly once across concurrent runs. Returns done | skipped | busy.

    1. claim the lock (unique role);  2. re-read: does the plan still apply?  3. decisive write: marker
    "ending" (the second factor is back), CONFIGURE_TOTP if needed, audit event;  4. release;
    5. finish: end the sessions opened during the bypass, then clear the record."""
    lock = acquire_lock(kc, user_lock_key(plan.user_id), lease_s)
    if lock is None:
        return "busy"
    store = store or realm_context(kc)[1]
    try:
        user = kc.get_user(plan.user_id)
        rec = store.read(kc, user)
        if not still_applies(plan, rec):
            return "skipped"
        if lock.time_left() < kc.settings.timeout * 4 + 1:
            return "busy"  # too late to write safely inside the lease; the next run does it
        fields = rec.fields()
        fields["marker"] = ENDING_VALUE
        # The window of "sessions opened during the bypass" closes now, when it is really ended: a
        # record whose times can't be read keeps its raw values and finish() ends every session.
        if rec.until is not None:
            fields["until"] = utc_iso(max(now, rec.until) if plan.kind == EndKind.EXPIRE else now)
        actions = list(user.get("requiredActions") or [])
        required = plan.require_device and not user.get("totp") and CONFIGURE_TOTP not in actions
        store.write(kc, user, fields, required_actions=[*actions, CONFIGURE_TOTP] if required else actions)
        audit.write(event(plan.kind.audit_action, realm=kc.realm, actor=actor, now=now, user_id=plan.user_id,
                          username=plan.username, until=rec.until_raw or None, granted_by=rec.by or None,
                          granted_at=rec.granted_raw or None, reason=plan.why,
                          grant_reason=rec.reason or None, require_otp_setup=required, **audit_details))
    finally:
        release_lock(kc, lock)
    finish(kc, plan.user_id, plan.end_sessions, store)
    return "done"


def end_window_sessions(kc: KeycloakClient, rec: Record, stop: datetime | None = None) -> int:
    """End the sessions and offline sessions (offline_access tokens) that began between the grant and
    `stop` (default: the record's end, which end_bypass set to the moment the bypass was really ended);
    all of them when the record's times can't be read. An offline token outlives every online session
    and `POST /users/{id}/logout` leaves it alone, so it is ended by id like the others."""
    start, stop = rec.granted_at, stop or rec.until
    if start is None or stop is None:
        kc.logout_user(rec.user_id)  # no trustworthy window (hand-set record): all sessions
        for session in kc.offline_sessions(rec.user_id):
            _end_session(kc, session, offline=True)
        return -1
    lo = int(start.timestamp() * 1000) - SESSION_SKEW_MS
    hi = int(stop.timestamp() * 1000) + SESSION_SKEW_MS
    ended = 0
    for offline, sessions in ((False, kc.user_sessions(rec.user_id)), (True, kc.offline_sessions(rec.user_id))):
        for session in sessions:
            if lo <= int(session.get("start") or 0) <= hi:
                ended += _end_session(kc, session, offline)
    return ended


def _end_session(kc: KeycloakClient, session: JSON, offline: bool) -> int:
    try:
        kc.delete_session(str(session["id"]), offline=offline)
        return 1
    except NotFound:
        return 0  # ended meanwhile (sign-out, expiry, another run)


def finish(kc: KeycloakClient, user_id: str, end_sessions: bool = True, store: RecordStore | None = None) -> int:
    """Idempotent clean-up of an ended bypass (marker "ending"): end the sessions opened while it was
    active, then clear the record. Safe to repeat after a crash or by two runs at once."""
    store = store or realm_context(kc)[1]
    rec = store.read(kc, kc.get_user(user_id))
    if rec.marker != ENDING_VALUE:
        return 0
    ended = end_window_sessions(kc, rec) if end_sessions else 0
    if store.read(kc, kc.get_user(user_id)).marker == ENDING_VALUE:
        store.clear(kc, user_id)
    return ended


def end_indexed(kc: KeycloakClient, entry: bypass_index.Entry, kind: EndKind, why: str, now: datetime,
                audit: AuditSink, actor: str, *, sessions: str = "all", require_device: bool = False,
                rec: Record | None = None, drop_entry: bool = False, clear_all: bool = False,
                **audit_details: Any) -> str:
    """End one record version of provider mode exactly once across concurrent runs, through its
    index entry. Returns done | busy. Three requests in the common case (an expiry):

    1. end the sessions: `POST /users/{id}/logout` (sessions="all": every online session, and the
       user's not-before, which refuses every refresh token issued before it, offline ones too) or
       those opened during the bypass one by one (sessions="window", what revoke does);
    2. claim the entry (create its `ending` child: 201 for one run, 409 for the others);
    3. the winner writes the audit event and deletes the record credential by id (404: replaced or
       removed meanwhile, nothing to do).

    The sessions end before the claim: a run that dies after the claim has already ended them, and
    a loser's second logout, a moment after the winner's, ends nothing more. The second factor is
    back from the record's end at sign-in (the provider refuses an expired record), so the credential
    delete is clean-up. The entry goes with its bucket (one request per hour of expiries), or at once
    with drop_entry (revoke)."""
    if sessions == "all":
        kc.logout_user(entry.user_id)
    elif sessions == "window" and rec is not None:
        end_window_sessions(kc, rec, stop=now)
    if not bypass_index.claim(kc, entry, now, actor):
        return "busy"
    required = False
    if require_device:
        user = kc.get_user(entry.user_id)
        actions = list(user.get("requiredActions") or [])
        if not user.get("totp") and CONFIGURE_TOTP not in actions:
            user["requiredActions"] = [*actions, CONFIGURE_TOTP]
            kc.update_user(entry.user_id, user)
            required = True
    # The record as read, when there is one (it is the truth; the entry is a copy made at the grant).
    until, granted, by, reason = ((rec.until_raw, rec.granted_raw, rec.by, rec.reason) if rec is not None
                                  else (entry.until_raw, entry.granted_raw, entry.by, entry.reason))
    audit.write(event(kind.audit_action, realm=kc.realm, actor=actor, now=now, user_id=entry.user_id,
                      username=entry.username or (rec.username if rec else None), until=until or None,
                      granted_by=by or None, granted_at=granted or None, reason=why, grant_reason=reason or None,
                      require_otp_setup=required, **audit_details))
    if clear_all:  # whatever record the user has now (one written by hand has another credential id)
        kc.delete_credentials(entry.user_id, BYPASS_CREDENTIAL)
    else:
        _delete_credential(kc, entry.user_id, entry.credential_id)
    if drop_entry:
        bypass_index.remove_user(kc, entry.user_id)
    return "done"


def _delete_credential(kc: KeycloakClient, user_id: str, credential_id: str) -> None:
    try:
        kc.delete_credential(user_id, credential_id)
    except NotFound:
        pass  # replaced or removed meanwhile
