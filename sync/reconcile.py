"""One sync pass: read what matters (targeted queries), plan (pure), apply.

read_state  -> State       cost grows with bypassed users (one attribute query, paginated), plus a
                           bounded enforcement scan and a few realm-level reads;
plan(state, now) -> [Action]  pure: no I/O, the clock is an argument;
apply(kc, actions, ...) -> Summary.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twostep import flows, help_requests, logs, metrics
from twostep.audit import AuditSink, event
from twostep.bypass import EndPlan, end_bypass, finish, sweep_stale_locks
from twostep.enforcement import (
    grace_deadline,
    has_device,
    needs_enrollment,
    require_totp,
    user_in_scope,
    users_in_scope,
)
from twostep.errors import KeycloakUnavailable, TwostepError, Unauthorized
from twostep.keycloak_adapter import JSON, KeycloakClient
from twostep.notify import notify_user
from twostep.policy import BROWSER_FLOW, BYPASS_ATTR, BYPASS_VALUE, RealmPolicy, utc_iso
from twostep.realm_setup import browser_target, rebuild_flow
from twostep.records import ENDING_VALUE, AttributeStore, Record, RecordStore, store_for
from twostep.user_profile import desired_profile

log = logs.get("twostep.sync")


@dataclass(frozen=True)
class Options:
    end_sessions: bool = True      # end sessions opened while the bypass was active
    end_early: bool = True         # end a bypass once the user enrolled a new OTP device after the grant
    enforce: bool = True           # apply the enforcement policy (CONFIGURE_TOTP)
    full: bool = True              # also check definitions and group markers (watch does it less often)
    enforce_limit: int = 10_000    # users the enforcement pass changes per run (CONFIGURE_TOTP)
    remind: bool = False           # e-mail users in grace without a second factor (meant for a daily run)
    page_size: int = 100


@dataclass
class State:
    realm: str
    policy: RealmPolicy
    policy_ok: bool = True
    bypassed: list[tuple[JSON, Record]] = field(default_factory=list)  # marker "true" (or any but "ending")
    ending: list[tuple[JSON, Record]] = field(default_factory=list)    # marker "ending": clean-up unfinished
    unindexed: list[tuple[JSON, Record]] = field(default_factory=list)  # in the index group, no record
    store: RecordStore = field(default_factory=AttributeStore)
    otp_created_ms: dict[str, list[int]] = field(default_factory=dict)
    in_scope: dict[str, bool] = field(default_factory=dict)
    group_markers: list[JSON] = field(default_factory=list)
    profile_drift: bool = False
    flow_drift: list[str] = field(default_factory=list)
    to_enforce: list[JSON] = field(default_factory=list)
    enforce_complete: bool = True
    to_remind: list[tuple[JSON, datetime]] = field(default_factory=list)  # in grace, no second factor


@dataclass(frozen=True)
class Action:
    # expire | end_early | drift_user | finish | unindex | drift_group | repair_profile | repair_flow | enforce
    kind: str
    name: str
    detail: str
    user_id: str | None = None
    end: EndPlan | None = None
    group: JSON | None = field(default=None, compare=False)
    deadline: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.name, "detail": self.detail}


# -- read ------------------------------------------------------------------------------------------

def read_state(kc: KeycloakClient, now: datetime, options: Options = Options()) -> State:
    policy, ok = RealmPolicy.effective(kc.get_realm().get("attributes") or {})
    state = State(kc.realm, policy, ok, store=store_for(kc, policy if ok else None))
    for user, rec in state.store.find(kc, options.page_size):
        if rec.marker == ENDING_VALUE:
            state.ending.append((user, rec))
        elif rec.marker is None:
            state.unindexed.append((user, rec))
        else:
            state.bypassed.append((user, rec))
    for user, rec in state.bypassed:
        if options.end_early and rec.valid and user.get("totp"):
            creds = kc.user_credentials(rec.user_id)
            state.otp_created_ms[rec.user_id] = [int(c.get("createdDate") or 0)
                                                 for c in creds if c.get("type") == "otp"]
        if rec.state(now, policy.bypass_max_s) == "active" and not _early(state, rec):
            continue  # not ending in this pass: scope is not needed
        state.in_scope[rec.user_id] = user_in_scope(kc, rec.user_id, policy)
    if options.full:
        state.group_markers = kc.groups_with_attribute(BYPASS_ATTR, BYPASS_VALUE)
        profile = kc.user_profile()
        state.profile_drift = desired_profile(profile) != profile
        target = browser_target(kc, policy if ok else None)
        # Only damage to our flow is repaired here. When the realm's own flow changed since setup
        # (or cannot be adapted any more), adapting it again is setup's job; status reports it.
        if target is not None:
            state.flow_drift = flows.differences(target.desired, target.actual) if target.desired else []
    # With the provider, enrollment is decided at sign-in; the scan only serves the fallback flow.
    if options.enforce and policy.enforcement.mode != "none" and isinstance(state.store, AttributeStore):
        # The limit counts the users this pass would change, not the ones it reads: an enrolled majority
        # never hides the users after them.
        for user in users_in_scope(kc, policy, options.page_size):
            if needs_enrollment(user, policy, now) and not has_device(kc, user):
                if len(state.to_enforce) >= options.enforce_limit:
                    state.enforce_complete = False
                    break
                state.to_enforce.append(user)
    if options.remind and policy.enforcement.mode != "none":
        for user in users_in_scope(kc, policy, options.page_size):
            deadline = grace_deadline(user, policy)
            if now < deadline and not has_device(kc, user):
                state.to_remind.append((user, deadline))
    return state


def _early(state: State, rec: Any) -> bool:
    granted = rec.granted_at
    return granted is not None and any(ms > granted.timestamp() * 1000
                                       for ms in state.otp_created_ms.get(rec.user_id, []))


# -- plan (pure) -----------------------------------------------------------------------------------

def plan(state: State, now: datetime, options: Options = Options()) -> list[Action]:
    actions: list[Action] = []
    for user, rec in state.bypassed:
        in_scope = state.in_scope.get(rec.user_id, state.policy.enforcement.mode == "all")
        grace_over = now >= grace_deadline(user, state.policy)
        require = in_scope and (rec.reset_device or grace_over)

        def end(kind: str, why: str, rec: Any = rec, require: bool = require) -> EndPlan:
            return EndPlan(kind, rec.user_id, rec.username, rec.marker, rec.lock_key(), why,
                           options.end_sessions, require)

        status = rec.state(now, state.policy.bypass_max_s)
        if status in ("damaged-marker", "no-valid-record"):
            why = "bypass marker without a valid record (set by hand?): treated as expired"
            actions.append(Action("drift_user", rec.username, why, rec.user_id, end("drift", why)))
        elif status in ("too-long", "granted-in-future"):
            why = f"bypass record not honoured at sign-in ({status}): ended"
            actions.append(Action("drift_user", rec.username, why, rec.user_id, end("drift", why)))
        elif rec.until is not None and rec.until <= now:
            why = f"bypass time is up ({rec.until_raw})"
            actions.append(Action("expire", rec.username, why, rec.user_id, end("expire", why)))
        elif options.end_early and _early(state, rec):
            why = "the user enrolled a new OTP device after the grant"
            actions.append(Action("end_early", rec.username, why, rec.user_id, end("end_early", why)))
    for user, _rec in state.ending:
        actions.append(Action("finish", str(user.get("username")), "finish clean-up of an ended bypass",
                              str(user["id"])))
    for user, _rec in state.unindexed:
        actions.append(Action("unindex", str(user.get("username")), "in the bypass index without a record",
                              str(user["id"])))
    for group in state.group_markers:
        path = str(group.get("path") or group.get("name"))
        actions.append(Action("drift_group", path, f"group {path} carries the bypass marker (ignored by the "
                              "login flow, removed so no one mistakes it for a bypass)", group=group))
    if state.profile_drift:
        actions.append(Action("repair_profile", "user profile",
                              "bypass marker/record declaration missing or not admin-only"))
    if state.flow_drift:
        actions.append(Action("repair_flow", BROWSER_FLOW, "; ".join(state.flow_drift)))
    for user, deadline in state.to_remind:
        actions.append(Action("remind", str(user.get("username")),
                              f"in grace until {utc_iso(deadline)}, no second factor yet: e-mail a reminder",
                              str(user["id"]), deadline=deadline))
    for user in state.to_enforce:
        actions.append(Action("enforce", str(user.get("username")),
                              "in scope, grace over, no OTP device: require CONFIGURE_TOTP", str(user["id"])))
    return actions


def next_expiry(state: State, now: datetime) -> datetime | None:
    times = []
    for _user, rec in state.bypassed:
        if rec.valid and rec.until is not None and rec.until > now:
            times.append(rec.until)
    return min(times) if times else None


# -- apply -----------------------------------------------------------------------------------------

@dataclass
class Summary:
    run_id: str
    dry_run: bool = False
    expired: int = 0
    ended_early: int = 0
    drift_repaired: int = 0
    finished: int = 0
    enforced: int = 0
    reminded: int = 0
    handled_elsewhere: int = 0
    bypassed_active: int = 0
    errors: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    next_expiry: str | None = None
    aborted: bool = False
    # users whose bypass this pass ended (or another run was ending): not pending any more (metrics)
    ended_user_ids: set[str] = field(default_factory=set)
    locks_removed: list[str] = field(default_factory=list)  # stale lock roles this pass removed

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "dry_run": self.dry_run, "ok": self.ok, "expired": self.expired,
                "ended_early": self.ended_early, "drift_repaired": self.drift_repaired,
                "finished": self.finished, "enforced": self.enforced, "reminded": self.reminded,
                "handled_by_another_run": self.handled_elsewhere, "bypassed_active": self.bypassed_active,
                "errors": self.errors, "warnings": self.warnings, "next_expiry": self.next_expiry,
                "locks_removed": self.locks_removed,
                "actions": self.actions}


_COUNTER = {"expire": "expired", "end_early": "ended_early", "drift_user": "drift_repaired",
            "drift_group": "drift_repaired", "repair_profile": "drift_repaired",
            "repair_flow": "drift_repaired", "finish": "finished", "enforce": "enforced",
            "unindex": "drift_repaired", "remind": "reminded"}


def apply(kc: KeycloakClient, actions: list[Action], now: datetime, audit: AuditSink, actor: str,
          lease_s: float, summary: Summary, store: RecordStore | None = None) -> Summary:
    """Each action on its own: one failure does not stop the others, except losing Keycloak or our
    credentials, which stops the run (every later request would fail the same way)."""
    store = store or store_for(kc)
    for action in actions:
        try:
            outcome = _apply_one(kc, action, now, audit, actor, lease_s, summary.run_id, store)
        except (KeycloakUnavailable, Unauthorized) as exc:
            _failed(kc.realm, action, exc, summary, stops=True)
            summary.errors.append(f"{action.kind} {action.name}: {exc}")
            summary.aborted = True
            break
        except TwostepError as exc:
            _failed(kc.realm, action, exc, summary, stops=False)
            summary.errors.append(f"{action.kind} {action.name}: {exc}")
            continue
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            # A record or answer we could not handle: this user fails, the pass goes on for the others.
            wrapped = TwostepError(f"unexpected data ({type(exc).__name__}: {exc})")
            _failed(kc.realm, action, wrapped, summary, stops=False)
            summary.errors.append(f"{action.kind} {action.name}: {wrapped}")
            continue
        if outcome == "done":
            counter = _COUNTER[action.kind]
            setattr(summary, counter, getattr(summary, counter) + 1)
            summary.actions.append(action.as_dict())
            metrics.record_action(kc.realm, action.kind)
        elif outcome == "busy":
            summary.handled_elsewhere += 1
        if action.end is not None and action.user_id and outcome == "done":
            # Only an end this pass made counts: one another run keeps "busy" stays pending (and overdue).
            summary.ended_user_ids.add(action.user_id)
        log.info("sync.action", kind=action.kind, target=action.name, user_id=action.user_id,
                 outcome="done" if outcome == "done" else "handled_elsewhere", detail=action.detail,
                 run_id=summary.run_id, realm=kc.realm)
    return summary


def _failed(realm: str, action: Action, exc: TwostepError, summary: Summary, stops: bool) -> None:
    kind = metrics.error_kind(exc)
    metrics.record_error(realm, kind)
    log.error("sync.error", str(exc), kind=kind, action=action.kind, target=action.name, user_id=action.user_id,
              run_id=summary.run_id, realm=realm, stops_pass=stops)


def _apply_one(kc: KeycloakClient, action: Action, now: datetime, audit: AuditSink, actor: str,
               lease_s: float, run_id: str, store: RecordStore) -> str:
    if action.end is not None:
        outcome = end_bypass(kc, action.end, now, audit, actor, lease_s, store=store, sync_run=run_id)
        return "busy" if outcome == "skipped" else outcome
    if action.kind == "finish":
        assert action.user_id
        finish(kc, action.user_id, store=store)
        return "done"
    if action.kind == "unindex":
        assert action.user_id
        if store.read(kc, kc.get_user(action.user_id)).marker is not None:
            return "busy"  # a grant arrived meanwhile
        store.clear(kc, action.user_id)
        return "done"
    if action.kind == "drift_group":
        assert action.group is not None
        group = kc.get_group(str(action.group["id"]))
        attrs = dict(group.get("attributes") or {})
        if BYPASS_ATTR not in attrs:
            return "busy"
        attrs.pop(BYPASS_ATTR)
        group["attributes"] = attrs
        kc.update_group(str(group["id"]), group)
        audit.write(event("drift.repair", realm=kc.realm, actor=actor, now=now, group=action.name,
                          reason=action.detail, sync_run=run_id))
        return "done"
    if action.kind == "repair_profile":
        profile = kc.user_profile()
        want = desired_profile(profile)
        if want == profile:
            return "busy"
        kc.update_user_profile(want)
        audit.write(event("drift.repair", realm=kc.realm, actor=actor, now=now, target="user profile",
                          reason=action.detail, sync_run=run_id))
        return "done"
    if action.kind == "repair_flow":
        policy, ok = RealmPolicy.effective(kc.get_realm().get("attributes") or {})
        target = browser_target(kc, policy if ok else None)
        if target is None or target.desired is None:
            return "busy"
        rebuild_flow(kc, target)
        audit.write(event("drift.repair", realm=kc.realm, actor=actor, now=now, target=action.name,
                          reason=action.detail, sync_run=run_id))
        return "done"
    if action.kind == "remind":
        assert action.user_id and action.deadline is not None
        outcome = notify_user(kc, kc.get_user(action.user_id), "enroll.reminder", {"until": utc_iso(action.deadline)},
                              audit, actor, now)
        # Not sent (no SMTP, no address) is audited by notify_user and is no failure of the pass.
        return "done" if outcome == "sent" else "not sent"
    if action.kind == "enforce":
        assert action.user_id
        if not require_totp(kc, action.user_id):
            return "busy"
        audit.write(event("enforce", realm=kc.realm, actor=actor, now=now, user_id=action.user_id,
                          username=action.name, reason=action.detail, sync_run=run_id))
        return "done"
    raise ValueError(action.kind)  # pragma: no cover


def run_once(kc: KeycloakClient, now: datetime, audit: AuditSink, actor: str, lease_s: float,
             options: Options = Options(), dry_run: bool = False) -> tuple[Summary, State | None]:
    summary = Summary(run_id=uuid.uuid4().hex[:12], dry_run=dry_run)
    try:
        state = read_state(kc, now, options)
    except TwostepError as exc:
        if not dry_run:
            kind = metrics.error_kind(exc)
            metrics.record_error(kc.realm, kind)
            metrics.record_failed_pass(kc.realm)
            log.error("sync.error", str(exc), kind=kind, action="read", run_id=summary.run_id, realm=kc.realm,
                      stops_pass=True)
        raise
    actions = plan(state, now, options)
    summary.bypassed_active = sum(1 for _u, r in state.bypassed if r.state(now, state.policy.bypass_max_s) == "active")
    nxt = next_expiry(state, now)
    summary.next_expiry = utc_iso(nxt) if nxt else None
    if not state.policy_ok:
        summary.warnings.append("realm policy record missing or damaged: acting on the fail-closed policy "
                                f"(everyone, no grace); run `twostep setup --realm {kc.realm}`")
    if not state.enforce_complete:
        summary.warnings.append("enforcement pass stopped at --enforce-limit users; the rest next run")
    if state.group_markers:
        summary.warnings.append("groups carrying the bypass marker: "
                                + ", ".join(str(g.get("path")) for g in state.group_markers))
    if dry_run:
        summary.actions = [a.as_dict() for a in actions]
        return summary, state
    if options.full:
        _sweep(kc, now, summary)
    apply(kc, actions, now, audit, actor, lease_s, summary, state.store)
    pending = pending_end(state, now, summary)
    metrics.record_pass(kc.realm, ok=summary.ok, active=summary.bypassed_active,
                        next_end=pending.timestamp() if pending else None)
    # After the bypass work and its gauges: a slow SMTP server never delays an end. Its errors count.
    help_requests.sync_pass(kc, now, audit, actor, summary.errors, state.policy)
    log.info("sync.pass", kind="full" if options.full else "expiry", run_id=summary.run_id, realm=kc.realm,
             ok=summary.ok, expired=summary.expired, ended_early=summary.ended_early,
             drift_repaired=summary.drift_repaired, enforced=summary.enforced, errors=len(summary.errors),
             active=summary.bypassed_active, next_expiry=summary.next_expiry)
    return summary, state


def _sweep(kc: KeycloakClient, now: datetime, summary: Summary) -> None:
    """Before the ends: a lock left by a killed run is gone, so this pass can take its user's end."""
    try:
        summary.locks_removed = sweep_stale_locks(kc, now)
    except (KeycloakUnavailable, Unauthorized):
        raise
    except TwostepError as exc:
        metrics.record_error(kc.realm, metrics.error_kind(exc))
        summary.errors.append(f"sweep stale locks: {exc}")
        return
    for name in summary.locks_removed:
        log.info("sync.lock_removed", "lock role past its lease removed", role=name, run_id=summary.run_id,
                 realm=kc.realm)


def pending_end(state: State, now: datetime, summary: Summary) -> datetime | None:
    """Earliest end among the bypasses still in force after the pass: those not yet due, and those due
    that the pass did not end (failed, or not reached after losing Keycloak)."""
    ends = []
    for _user, rec in state.bypassed:
        if rec.valid and rec.until is not None and rec.user_id not in summary.ended_user_ids:
            ends.append(rec.until)
    return min(ends) if ends else None
