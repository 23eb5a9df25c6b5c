"""Time-limited bypass of the second factor: grant, extend, revoke, list, show. How a bypass ends
(revoke here, expiry, early end and drift repair in the sync job) is `bypass_end.py`.

State lives in Keycloak only, in the record store the realm's policy names (twostep.records):
a `twostep-bypass` credential read by the provider at sign-in, or (fallback, no provider) admin-only
attributes read by the flow's attribute condition. The record's marker has three meanings:
  "true"    bypassed (the provider also checks the times against its own clock);
  "ending"  the bypass is over (the second factor is back) but the clean-up of sessions opened
            during it and of the record is not finished yet: the sync finishes it;
  absent    no bypass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .actor import Actor, is_self
from .audit import AuditSink, EndKind, event
from .bypass_end import EndPlan, end_bypass, end_window_sessions
from .bypass_kinds import choose_kind, grant_default
from .clock import Clock
from .durations import format_duration
from .enforcement import CONFIGURE_TOTP
from .errors import Conflict, Forbidden, InvalidInput, NotFound, TwostepError
from .keycloak_adapter import JSON, KeycloakClient
from .lock import acquire_lock, lease_seconds, release_lock, user_lock_key
from .notify import EMAIL, Notifier
from .policy import BYPASS_VALUE, HARD_BYPASS_MAX_S, RealmPolicy, parse_iso, utc_iso
from .records import CredentialStore, Record, RecordStore, realm_context, refuse_directory_write
from .settings import Settings
from .users import resolve_user

MIN_BYPASS_S = 300
PRESETS = ("1h", "8h", "1d", "3d", "7d")


# -- validation (pure) ------------------------------------------------------------------------------

def validate_window(now: datetime, policy: RealmPolicy, duration: timedelta | None,
                    until: datetime | None) -> datetime:
    """The end of the bypass asked for, or InvalidInput. Between 5 minutes and the policy maximum."""
    if (duration is None) == (until is None):
        raise InvalidInput("give exactly one of --for DURATION or --until TIME")
    if duration is not None:
        if duration.total_seconds() <= 0:
            raise InvalidInput("the bypass duration must be longer than zero")
        end = now + duration
    else:
        assert until is not None
        end = until
        if end <= now:
            raise InvalidInput(f"--until {utc_iso(end)} is not in the future")
    seconds = (end - now).total_seconds()
    if seconds < MIN_BYPASS_S:
        raise InvalidInput("a bypass must last at least 5 minutes")
    if seconds > policy.bypass_max_s:
        raise InvalidInput(f"a bypass may last at most {format_duration(policy.bypass_max_s)} in realm policy "
                           f"(asked for {format_duration(int(seconds))}); there is no 'forever'")
    return end


def parse_until(text: str) -> datetime:
    try:
        return parse_iso(text.strip())
    except ValueError:
        raise InvalidInput(f"cannot read --until {text!r}: use ISO-8601, e.g. 2030-01-31T18:00:00Z") from None


@dataclass(frozen=True)
class GrantRequest:
    who: str
    reason: str
    duration: timedelta | None = None
    until: datetime | None = None
    reset_device: bool = False
    end_sessions: bool | None = None  # None: end them when resetting the device
    extend: bool = False
    break_glass: bool = False
    # False: the caller tells the user itself (a help request's answer carries the bypass in its one mail).
    notify: bool = True
    # The kind (docs/bypass.md, "Kinds"): an access pass used once or many times, or the password alone;
    # neither: the realm's default. An extension keeps the kind it extends.
    pass_use: str | None = None
    password_only: bool = False


def check_request(req: GrantRequest) -> None:
    if not req.reason.strip():
        raise InvalidInput("a reason is required (--reason TEXT)")
    if req.reset_device and req.end_sessions is False:
        raise InvalidInput("--reset-device always ends the user's sessions (the lost phone may hold one); "
                           "drop --keep-sessions")


# -- grant / extend ---------------------------------------------------------------------------------

def grant(kc: KeycloakClient, clock: Clock, audit: AuditSink, actor: Actor, req: GrantRequest,
          dry_run: bool = False) -> dict[str, Any]:
    now = clock()
    check_request(req)
    if req.break_glass and not actor.operator:
        raise Forbidden("--break-glass needs the server-side operator credentials (bootstrap admin of the "
                        "master realm), not a realm service account")
    policy, store = realm_context(kc)
    until = validate_window(now, policy, req.duration, req.until)
    user = resolve_user(kc, req.who)
    rec = store.read(kc, user)
    self_bypass = is_self(actor, kc.realm, user)
    if self_bypass and not req.break_glass:
        raise Forbidden(f"you cannot bypass two-step authentication for yourself ({rec.username}); another "
                        "admin must grant it (a sole admin with operator credentials: --break-glass)")
    state = rec.state(now, policy.bypass_max_s)
    extending = state == "active"
    kind = rec.kind if extending else choose_kind(
        policy.bypass_kinds, grant_default(policy.bypass_default, isinstance(store, CredentialStore)),
        req.pass_use, req.password_only)
    if kind == "pass" and not isinstance(store, CredentialStore):
        raise InvalidInput("an access pass needs the twostep provider in Keycloak (provider mode); this realm's "
                           "bypasses are kept by sync (fallback mode): grant --password")
    if extending and not req.extend:
        raise Conflict(f"{rec.username} is already bypassed until {rec.until_raw}; use --extend to change it")
    if req.extend and not extending:
        raise InvalidInput(f"{rec.username} has no active bypass to extend; grant one without --extend")
    # An extension keeps its start: the whole window is what the provider bounds by the policy maximum.
    granted = rec.granted_at if extending and rec.granted_at is not None else now
    window = int((until - granted).total_seconds())
    if window > min(policy.bypass_max_s, HARD_BYPASS_MAX_S):
        raise InvalidInput(f"the bypass of {rec.username} began {utc_iso(granted)}; extended to {utc_iso(until)} "
                           f"it would last {format_duration(window)}, more than the realm maximum "
                           f"{format_duration(policy.bypass_max_s)}: revoke it and grant a new one")
    end_sessions = req.reset_device if req.end_sessions is None else req.end_sessions
    changes = [f"set the bypass marker on {rec.username} until {utc_iso(until)}" if kind == "password" else
               f"give {rec.username} an access pass ({req.pass_use or rec.pass_use or 'once'}) until {utc_iso(until)}: "
               "the password and the pass sign in, the password alone does not"]
    if req.reset_device:
        changes.append("remove the user's OTP devices (the lost phone becomes worthless)")
    if CONFIGURE_TOTP in (user.get("requiredActions") or []):
        changes.append("drop the pending CONFIGURE_TOTP (the user may enroll during the bypass, not forced)")
    if end_sessions:
        changes.append("end all of the user's sessions")
    action = "bypass.extend" if extending else "bypass.grant"
    result: dict[str, Any] = {"action": action, "dry_run": dry_run, "user_id": rec.user_id,
                              "username": rec.username, "until": utc_iso(until), "changes": changes,
                              "break_glass": req.break_glass}
    if dry_run:
        return result

    if isinstance(store, CredentialStore):
        answer = _grant_in_keycloak(kc, user, actor, req, end_sessions, extending)
        until, devices_removed = parse_iso(str(answer["until"])), int(answer.get("devices_removed") or 0)
        result["until"] = utc_iso(until)
        result["kind"] = kind_label(answer)
        if answer.get("access_pass"):
            result["access_pass"] = str(answer["access_pass"])  # shown once: never in the audit or a log
    else:
        devices_removed = _grant_with_lock(kc, store, rec, actor, req, now, granted, until, extending, end_sessions)
    common: dict[str, Any] = {"realm": kc.realm, "actor": actor.name, "now": now, "user_id": rec.user_id,
                              "username": rec.username}
    audit.write(event(action, **common, until=utc_iso(until), reason=req.reason.strip(),
                      previous_until=rec.until_raw if extending else None,
                      reset_device=req.reset_device, devices_removed=devices_removed,
                      sessions_ended=end_sessions, break_glass=req.break_glass, self_bypass=self_bypass,
                      credential=actor.credential, kind=result.get("kind", "password")))
    if req.break_glass:
        audit.write(event("bypass.break_glass", **common, until=utc_iso(until), reason=req.reason.strip(),
                          self_bypass=self_bypass))
    result["devices_removed"] = devices_removed
    if not req.notify:
        result["notified"] = "left to the caller"
        return result
    result["notified"] = notify_on_grant(kc, user, action, {"until": utc_iso(until), "reason": req.reason.strip(),
                                                            "reset_device": req.reset_device}, audit, actor, now)
    return result


def kind_label(answer: JSON) -> str:
    """`password`, `pass once`, `pass multi` from the extension's answer (an older JAR: password)."""
    kind = str(answer.get("kind") or "password")
    return f"{kind} {answer.get('pass_use') or ''}".strip() if kind == "pass" else kind


def _grant_in_keycloak(kc: KeycloakClient, user: JSON, actor: Actor, req: GrantRequest, end_sessions: bool,
                       extending: bool) -> JSON:
    """Provider mode: one request to the provider's admin extension, which checks the caller's
    permission for this user, locks the user's row, re-reads, and writes the record, its index entry,
    the sessions it ends and an admin event in one Keycloak transaction (docs/provider.md). The window
    is measured by Keycloak's clock; the end it chose is returned, with the devices it removed."""
    refuse_directory_write(kc, user)
    body: dict[str, Any] = {"reason": req.reason.strip(), "by": actor.name, "reset_device": req.reset_device,
                            "end_sessions": end_sessions, "break_glass": req.break_glass}
    if req.duration is not None:
        body["seconds"] = int(req.duration.total_seconds())
    else:
        assert req.until is not None
        body["until"] = utc_iso(req.until)
    body.update(kind_body(req))  # an extension keeps its kind: the provider refuses a different one
    return kc.bypass_change(str(user["id"]), "extend" if extending else "grant", body)


def kind_body(req: GrantRequest) -> dict[str, Any]:
    """What the extension is asked for: nothing names the realm's default (the extension applies it)."""
    if req.pass_use is not None:
        return {"kind": "pass", "pass_use": req.pass_use}
    return {"kind": "password"} if req.password_only else {}


def _grant_with_lock(kc: KeycloakClient, store: RecordStore, rec: Record, actor: Actor, req: GrantRequest,
                     now: datetime, granted: datetime, until: datetime, extending: bool, end_sessions: bool) -> int:
    """Fallback mode (no provider): the lease lock (a realm role, so manage-realm), then separate writes."""
    lock = acquire_lock(kc, user_lock_key(rec.user_id), lease_seconds(kc.settings))
    if lock is None:
        raise Conflict(f"another change to the bypass of {rec.username} is in progress; try again in a minute")
    try:
        # Re-read under the lock: a revoke or an expiry that won the race must not be undone.
        user = kc.get_user(rec.user_id)
        if store.read(kc, user).lock_key() != rec.lock_key():
            raise Conflict(f"the bypass of {rec.username} changed while this grant was prepared; check "
                           f"`twostep bypass show {rec.username}` and try again")
        _write_grant(kc, store, user, rec, actor, req, now, granted, until, extending)
    finally:
        release_lock(kc, lock)
    devices_removed = kc.delete_credentials(rec.user_id, "otp") if req.reset_device else 0
    if end_sessions:
        kc.logout_user(rec.user_id)
    return devices_removed


def _write_grant(kc: KeycloakClient, store: RecordStore, user: JSON, rec: Record, actor: Actor,
                 req: GrantRequest, now: datetime, granted: datetime, until: datetime, extending: bool) -> None:
    if rec.marker is not None and not extending:
        # An earlier bypass not yet cleaned up: its sessions were opened without the second factor.
        end_window_sessions(kc, rec, stop=now)
    fields = {"marker": BYPASS_VALUE, "until": utc_iso(until), "by": actor.name, "reason": req.reason.strip(),
              "granted_at": utc_iso(granted), "extended": str(rec.extended + 1 if extending else 0),
              "reset_device": "true" if (req.reset_device or (extending and rec.reset_device)) else "false"}
    store.write(kc, user, fields,
                required_actions=[a for a in (user.get("requiredActions") or []) if a != CONFIGURE_TOTP])
    check = store.read(kc, kc.get_user(rec.user_id))
    if not check.active or check.until_raw != utc_iso(until):
        if isinstance(store, CredentialStore):
            raise TwostepError("Keycloak dropped the bypass record: the twostep provider (credential type "
                               f"twostep-bypass) is not loaded; see `twostep doctor --realm {kc.realm}`")
        raise TwostepError("Keycloak dropped the bypass attributes: they are not declared in the user "
                           f"profile of realm {kc.realm!r}; run `twostep setup --realm {kc.realm}`")


def notify_on_grant(kc: KeycloakClient, user: JSON, kind: str, details: dict[str, Any], audit: AuditSink,
                    actor: Actor, now: datetime, notifier: Notifier = EMAIL) -> str:
    """E-mail the user that a bypass was granted; a failure never undoes the grant."""
    try:
        return notifier.notify(kc, user, kind, details, audit, actor.name, now)
    except (TwostepError, OSError, KeyError) as exc:
        return f"failed: {exc}"


# -- revoke, list, show -------------------------------------------------------------------------------

def revoke(kc: KeycloakClient, clock: Clock, audit: AuditSink, actor: Actor, who: str, reason: str = "",
           end_sessions: bool = True, dry_run: bool = False,
           settings: Settings | None = None) -> dict[str, Any]:
    now = clock()
    user = resolve_user(kc, who)
    _policy, store = realm_context(kc)
    rec = store.read(kc, user)
    if not rec.active:
        raise NotFound(f"{rec.username} has no bypass to revoke")
    plan = EndPlan(EndKind.REVOKE, rec.user_id, rec.username, rec.marker, rec.lock_key(),
                   reason.strip() or "revoked by an admin", end_sessions, require_device=False)
    result: dict[str, Any] = {"action": "bypass.revoke", "dry_run": dry_run, "user_id": rec.user_id,
                              "username": rec.username, "until": rec.until_raw or None,
                              "changes": [f"remove the bypass of {rec.username} (second factor back at once)"]
                              + (["end the sessions opened during the bypass"] if end_sessions else [])}
    if dry_run:
        return result
    if isinstance(store, CredentialStore):
        # One transaction in Keycloak (the provider's admin extension): the record, every index entry of
        # the user and the sessions opened during the bypass go together; the user's row lock orders it
        # against grant and extend, and sync's claim of the entry then finds nothing (404).
        kc.bypass_change(rec.user_id, "revoke", {"reason": plan.why, "by": actor.name, "end_sessions": end_sessions})
        audit.write(event(EndKind.REVOKE.audit_action, realm=kc.realm, actor=actor.name, now=now, user_id=rec.user_id,
                          username=rec.username, until=rec.until_raw or None, granted_by=rec.by or None,
                          granted_at=rec.granted_raw or None, reason=plan.why, grant_reason=rec.reason or None,
                          require_otp_setup=False, credential=actor.credential))
        return result
    outcome = end_bypass(kc, plan, now, audit, actor.name, lease_seconds(settings or kc.settings),
                         store=store, credential=actor.credential)
    if outcome != "done":
        raise Conflict(f"the bypass of {rec.username} is being ended by another run; check "
                       f"`twostep bypass show {rec.username}`")
    return result


def list_bypasses(kc: KeycloakClient, clock: Clock, page_size: int = 100) -> list[dict[str, Any]]:
    now = clock()
    policy, store = realm_context(kc)
    out = [rec.as_dict(now, policy.bypass_max_s) for _user, rec in store.find(kc, page_size) if rec.active]
    return sorted(out, key=lambda r: (r["until"] or "", r["username"]))


def show(kc: KeycloakClient, clock: Clock, who: str) -> dict[str, Any]:
    return show_user(kc, resolve_user(kc, who), clock())


def show_user(kc: KeycloakClient, user: JSON, now: datetime, credentials: list[JSON] | None = None) -> dict[str, Any]:
    policy, store = realm_context(kc)
    return store.read(kc, user, credentials).as_dict(now, policy.bypass_max_s)
