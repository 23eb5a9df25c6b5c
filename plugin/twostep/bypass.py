"""Time-limited bypass of the second factor: grant, extend, revoke, list, show, and the one way a
bypass ends (used by `revoke` and by the sync job).

State lives in Keycloak only, in the record store the realm's policy names (twostep.records):
a `twostep-bypass` credential read by the provider at sign-in, or (fallback, no provider) admin-only
attributes read by the flow's attribute condition. The record's marker has three meanings:
  "true"    bypassed (the provider also checks the times against its own clock);
  "ending"  the bypass is over (the second factor is back) but the clean-up of sessions opened
            during it and of the record is not finished yet: the sync finishes it;
  absent    no bypass.
"""

from __future__ import annotations

import getpass
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .audit import AuditSink, event
from .clock import Clock
from .enforcement import CONFIGURE_TOTP
from .errors import Conflict, Forbidden, InvalidInput, KeycloakUnavailable, NotFound, TwostepError
from .keycloak_adapter import JSON, KeycloakClient, q
from .notify import EMAIL, Notifier
from .policy import BYPASS_VALUE, HARD_BYPASS_MAX_S, RealmPolicy, parse_iso, utc_iso
from .records import ENDING_VALUE, CredentialStore, Record, RecordStore, store_for
from .settings import Settings
from .users import resolve_user

MIN_BYPASS_S = 300
PRESETS = ("1h", "8h", "1d", "3d", "7d")
# Sessions whose start lies this far around the bypass window are counted as opened during it
# (our clock and Keycloak's may differ a little; ending one session too many is the safe side).
SESSION_SKEW_MS = 5_000
LOCK_PREFIX = "twostep-lock-"
LOCK_GENERATIONS = 6
# The sweep holds a stale chain only for the moment it takes to delete it.
MIN_SWEEP_LEASE_S = 30.0


# -- who is acting -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Actor:
    """The person (or job) behind the credentials, for the audit and the self-bypass rule.

    identities: (realm, lower-cased username or e-mail) pairs naming the person at the keyboard.
    operator: the credentials are the bootstrap admin of the master realm (server-side operator
    credentials); only those may use --break-glass.
    user_ids: the target realm's users the person is (resolved from the identities): the self-bypass
    rule compares these ids, so another spelling (e-mail for username, other case) or an operator
    signed in to the master realm who also has an account in the realm is still "yourself".
    credential: what signed in, for the audit: "service account <client>" (a shared secret: the
    name is what the caller said) or "person <user>@<realm>"."""

    name: str
    operator: bool
    identities: tuple[tuple[str, str], ...]
    user_ids: frozenset[str] = frozenset()
    credential: str = "person"


def actor_from_settings(settings: Settings, realm: str) -> Actor:
    if settings.uses_service_account:
        who = settings.actor or _os_user()
        return Actor(f"{who} (service account {settings.client_id})", False, ((realm, who.lower()),),
                     credential=f"service account {settings.client_id}")
    admin = settings.admin_username or "?"
    ids = [(settings.admin_realm, admin.lower())]
    name = f"{admin}@{settings.admin_realm}"
    if settings.actor:
        ids.append((realm, settings.actor.lower()))
        name += f" for {settings.actor}"
    return Actor(name, settings.admin_realm == "master" and bool(settings.admin_password), tuple(ids),
                 credential=f"person {admin}@{settings.admin_realm}")


def acting_person(kc: KeycloakClient, settings: Settings) -> Actor:
    """The actor of a bypass change made through the CLI. With the shared service account the person
    must be named (TWOSTEP_ACTOR, `actor` in the file, or --actor): the secret says nothing about who
    holds it. The named person, and a bootstrap admin under their username and e-mail, are resolved to
    users of the target realm, so the self-bypass rule compares ids."""
    if settings.uses_service_account and not (settings.actor or "").strip():
        raise InvalidInput(f"the service account {settings.client_id} is shared: name the person acting "
                           "(--actor NAME or TWOSTEP_ACTOR); it is recorded in the audit and checked "
                           "against the user")
    actor = actor_from_settings(settings, kc.realm)
    names = {n for _r, n in actor.identities}
    if not settings.uses_service_account and settings.admin_username:
        names |= _admin_emails(kc, settings)
    ids: set[str] = set()
    for n in sorted(names):
        ids |= _users_named(kc, n)
    return Actor(actor.name, actor.operator, actor.identities + tuple((kc.realm, n) for n in sorted(names)),
                 frozenset(ids), actor.credential)


def _admin_emails(kc: KeycloakClient, settings: Settings) -> set[str]:
    """The e-mail of the signed-in admin in their own realm (an operator's account in the target
    realm often shares only the e-mail). Not readable: the username alone is compared."""
    try:
        rows = kc.request("GET", f"/{q(settings.admin_realm)}/users", what="the signed-in admin",
                          params={"username": settings.admin_username, "exact": "true"}, realm_level=False).json()
    except TwostepError:
        return set()
    return {str(r.get("email")).lower() for r in rows or [] if r.get("email")}


def _users_named(kc: KeycloakClient, name: str) -> set[str]:
    found = {str(u["id"]) for u in kc.find_users(username=name, exact="true", briefRepresentation="true")}
    if "@" in name:
        found |= {str(u["id"]) for u in kc.find_users(email=name, exact="true", briefRepresentation="true")}
    return found


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def is_self(actor: Actor, realm: str, user: JSON) -> bool:
    if str(user.get("id") or "") in actor.user_ids:
        return True
    names = {str(user.get("username") or "").lower(), str(user.get("email") or "").lower()} - {""}
    return any(r == realm and n in names for r, n in actor.identities)


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
        raise InvalidInput(f"a bypass may last at most {_human(policy.bypass_max_s)} in realm policy "
                           f"(asked for {_human(int(seconds))}); there is no 'forever'")
    return end


def _human(seconds: int) -> str:
    d, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    parts = (f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else "")
    return "".join(parts) or f"{seconds}s"


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


def _check_request(req: GrantRequest) -> None:
    if not req.reason.strip():
        raise InvalidInput("a reason is required (--reason TEXT)")
    if req.reset_device and req.end_sessions is False:
        raise InvalidInput("--reset-device always ends the user's sessions (the lost phone may hold one); "
                           "drop --keep-sessions")


def realm_context(kc: KeycloakClient) -> tuple[RealmPolicy, RecordStore]:
    """The policy to act on (fail-closed when damaged) and the store that holds the records."""
    policy, intact = RealmPolicy.effective(kc.get_realm().get("attributes") or {})
    return policy, store_for(kc, policy if intact else None)


# -- grant / extend ---------------------------------------------------------------------------------

def grant(kc: KeycloakClient, clock: Clock, audit: AuditSink, actor: Actor, req: GrantRequest,
          dry_run: bool = False) -> dict[str, Any]:
    now = clock()
    _check_request(req)
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
    if extending and not req.extend:
        raise Conflict(f"{rec.username} is already bypassed until {rec.until_raw}; use --extend to change it")
    if req.extend and not extending:
        raise InvalidInput(f"{rec.username} has no active bypass to extend; grant one without --extend")
    # An extension keeps its start: the whole window is what the provider bounds by the policy maximum.
    granted = rec.granted_at if extending and rec.granted_at is not None else now
    window = int((until - granted).total_seconds())
    if window > min(policy.bypass_max_s, HARD_BYPASS_MAX_S):
        raise InvalidInput(f"the bypass of {rec.username} began {utc_iso(granted)}; extended to {utc_iso(until)} "
                           f"it would last {_human(window)}, more than the realm maximum "
                           f"{_human(policy.bypass_max_s)}: revoke it and grant a new one")
    end_sessions = req.reset_device if req.end_sessions is None else req.end_sessions
    changes = [f"set the bypass marker on {rec.username} until {utc_iso(until)}"]
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
    devices_removed = 0
    if req.reset_device:
        for cred in kc.user_credentials(rec.user_id):
            if cred.get("type") == "otp":
                kc.delete_credential(rec.user_id, cred["id"])
                devices_removed += 1
    if end_sessions:
        kc.logout_user(rec.user_id)
    common: dict[str, Any] = {"realm": kc.realm, "actor": actor.name, "now": now, "user_id": rec.user_id,
                              "username": rec.username}
    audit.write(event(action, **common, until=utc_iso(until), reason=req.reason.strip(),
                      previous_until=rec.until_raw if extending else None,
                      reset_device=req.reset_device, devices_removed=devices_removed,
                      sessions_ended=end_sessions, break_glass=req.break_glass, self_bypass=self_bypass,
                      credential=actor.credential))
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


# -- ending a bypass (revoke, expiry, early end, drift) ----------------------------------------------

@dataclass(frozen=True)
class EndPlan:
    kind: str  # revoke | expire | end_early | drift
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


@dataclass
class Lock:
    names: list[str]
    acquired: float
    lease_s: float

    def time_left(self) -> float:
        return self.lease_s - (time.monotonic() - self.acquired)


def lease_seconds(settings: Settings) -> float:
    # A request may be retried (see the adapter): 4 timeouts and a margin bound one decisive write.
    return 4 * settings.timeout + 5


def user_lock_key(user_id: str) -> str:
    """Grant, extend, revoke and expiry of one user's bypass all take this one lock."""
    return f"user|{user_id}"


def acquire_lock(kc: KeycloakClient, key: str, lease_s: float) -> Lock | None:
    """Keycloak has no compare-and-set, but realm role names are unique: creating the role
    `twostep-lock-<hash>-<generation>` succeeds for exactly one caller. A lock whose lease is over
    (its holder died or lost Keycloak) is taken over by creating the next generation, which again
    only one caller can do. None: another run holds it."""
    return _acquire(kc, hashlib.sha256(key.encode()).hexdigest()[:24], lease_s, time.time)


def _acquire(kc: KeycloakClient, digest: str, lease_s: float, wall: Callable[[], float]) -> Lock | None:
    names: list[str] = []
    for gen in range(1, LOCK_GENERATIONS + 1):
        name = f"{LOCK_PREFIX}{digest}-{gen}"
        names.append(name)
        start = time.monotonic()
        try:
            kc.create_role(name, f"twostep sync lock; lease until {wall() + lease_s:.3f}")
            return Lock(names, start, lease_s)
        except KeycloakUnavailable as outage:
            # Two creates of one name at the same instant: Keycloak on H2 answers the loser with a
            # 500 (the unique constraint), not a 409. When the role now exists, that was a lost race.
            try:
                kc.get_role(name)
            except NotFound:
                raise outage from None
            return None  # taken (or, at worst, ours: its lease runs out and the sweep removes it)
        except Conflict:
            try:
                desc = str(kc.get_role(name).get("description") or "")
            except NotFound:
                return None  # released between our create and read: the holder finished
            if wall() < lease_end(desc):
                return None
    return None


def lease_end(description: str) -> float:
    """The lease end a lock role carries (epoch seconds); 0 when unreadable (a lock no one can
    honour is over)."""
    try:
        return float(description.rsplit(" ", 1)[-1])
    except ValueError:
        return 0.0


def sweep_stale_locks(kc: KeycloakClient, now: datetime) -> list[str]:
    """Remove the lock roles whose lease is over at `now` (a run killed while holding one leaves it
    behind; it would only be taken over the next time that user's bypass changes, and a chain of
    LOCK_GENERATIONS stale ones would block that user for good). The removal follows the lock's own
    rule: a stale chain is taken over (creating the next generation, which only one caller can do)
    and released, so a holder that took it over a moment ago is never robbed. Returns the names removed."""
    chains: dict[str, list[JSON]] = {}
    for role in kc.roles_named(LOCK_PREFIX):
        name = str(role.get("name") or "")
        digest, _, gen = name[len(LOCK_PREFIX):].rpartition("-")
        if name.startswith(LOCK_PREFIX) and digest and gen.isdigit():
            chains.setdefault(digest, []).append(role)
    removed: list[str] = []
    at = now.timestamp()
    for digest, roles in sorted(chains.items()):
        if any(at < lease_end(str(r.get("description") or "")) for r in roles):
            continue  # someone holds it (or took it over): theirs to release
        lock = _acquire(kc, digest, MIN_SWEEP_LEASE_S, lambda: at)
        if lock is not None:
            release_lock(kc, lock)
            found = {str(r.get("name")) for r in roles}
            removed.extend(n for n in lock.names if n in found)  # not the generation the sweep made
        elif len(roles) >= LOCK_GENERATIONS:
            # Every generation stale: no one can take it over any more, so nothing can race this.
            for name in sorted((str(r["name"]) for r in roles), reverse=True):
                try:
                    kc.delete_role(name)
                    removed.append(name)
                except NotFound:
                    pass
    return removed


def release_lock(kc: KeycloakClient, lock: Lock) -> None:
    for name in lock.names:
        try:
            kc.delete_role(name)
        except NotFound:
            pass
        except TwostepError:
            return  # a lease runs out by itself


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
            fields["until"] = utc_iso(max(now, rec.until) if plan.kind == "expire" else now)
        actions = list(user.get("requiredActions") or [])
        required = plan.require_device and not user.get("totp") and CONFIGURE_TOTP not in actions
        store.write(kc, user, fields, required_actions=[*actions, CONFIGURE_TOTP] if required else actions)
        action = {"revoke": "bypass.revoke", "expire": "bypass.expire", "end_early": "bypass.end_early",
                  "drift": "drift.repair"}[plan.kind]
        audit.write(event(action, realm=kc.realm, actor=actor, now=now, user_id=plan.user_id,
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
    plan = EndPlan("revoke", rec.user_id, rec.username, rec.marker, rec.lock_key(),
                   reason.strip() or "revoked by an admin", end_sessions, require_device=False)
    result: dict[str, Any] = {"action": "bypass.revoke", "dry_run": dry_run, "user_id": rec.user_id,
                              "username": rec.username, "until": rec.until_raw or None,
                              "changes": [f"remove the bypass of {rec.username} (second factor back at once)"]
                              + (["end the sessions opened during the bypass"] if end_sessions else [])}
    if dry_run:
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
