"""A sync pass's apply: `apply(kc, actions, ...)` runs each `Action` by its kind (`_HANDLERS`) and
counts it in the `Summary`; it decides nothing new.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twostep import bypass_index, logs, metrics
from twostep.audit import AuditSink, event
from twostep.bypass_end import end_bypass, end_indexed, finish
from twostep.enforcement import (
    require_totp,
)
from twostep.errors import Forbidden, KeycloakUnavailable, NotFound, TwostepError, Unauthorized
from twostep.keycloak_adapter import KeycloakClient
from twostep.notify import EMAIL, Notifier
from twostep.policy import BYPASS_ATTR, utc_iso
from twostep.realm_policy import read_policy
from twostep.realm_setup import browser_target, rebuild_flow
from twostep.records import RecordStore, reindex, store_for
from twostep.user_profile import desired_profile

from .plan import Action, ActionKind

log = logs.get("twostep.sync")


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


K = ActionKind
# The summary counter each kind adds to (None: housekeeping, counted in no total).
COUNTER: dict[ActionKind, str | None] = {
    K.EXPIRE: "expired", K.END_EARLY: "ended_early", K.DRIFT_USER: "drift_repaired", K.FINISH: "finished",
    K.UNINDEX: "drift_repaired", K.REINDEX: "drift_repaired", K.DROP_BUCKET: None,
    K.DRIFT_GROUP: "drift_repaired", K.REPAIR_PROFILE: "drift_repaired", K.REPAIR_FLOW: "drift_repaired",
    K.REMIND: "reminded", K.ENFORCE: "enforced"}
assert set(COUNTER) == set(ActionKind)


def apply(kc: KeycloakClient, actions: list[Action], now: datetime, audit: AuditSink, actor: str,
          lease_s: float, summary: Summary, store: RecordStore | None = None, workers: int = 1,
          notifier: Notifier = EMAIL) -> Summary:
    """Each action on its own: one failure does not stop the others, except losing Keycloak or our
    credentials, which stops the run (every later request would fail the same way). The expiries of
    provider mode touch one user each and claim their own entry: they run `workers` at a time, first;
    everything else (the bucket drops, which wait for those claims, included) follows in plan order."""
    store = store or store_for(kc)
    settled: set[str] = set()  # index entries this pass claimed, or found claimed by another run
    ctx = _Ctx(kc, now, audit, actor, lease_s, summary.run_id, store, settled, notifier)
    parallel = [a for a in actions if a.kind == K.EXPIRE and a.entry is not None] if workers > 1 else []
    rest = [a for a in actions if a not in parallel]
    results: list[tuple[Action, str | BaseException]] = []
    if parallel:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(zip(parallel, pool.map(lambda a: _attempt(ctx, a), parallel), strict=True))
    for action, result in results:
        if _record(kc, action, result, summary, settled):
            break
    for action in rest:
        if summary.aborted or _record(kc, action, _attempt(ctx, action), summary, settled):
            break
    return summary


def _attempt(ctx: _Ctx, action: Action) -> str | BaseException:
    try:
        return _HANDLERS[action.kind](ctx, action)
    except (TwostepError, ValueError, TypeError, KeyError, OverflowError) as exc:
        return exc


def _record(kc: KeycloakClient, action: Action, result: str | BaseException, summary: Summary,
            settled: set[str]) -> bool:
    """Book one action's outcome in the summary, log and metrics; True: the pass stops here."""
    if isinstance(result, (KeycloakUnavailable, Unauthorized)):
        _failed(kc.realm, action, result, summary, stops=True)
        summary.errors.append(f"{action.kind} {action.name}: {result}")
        summary.aborted = True
        return True
    if isinstance(result, TwostepError):
        _failed(kc.realm, action, result, summary, stops=False)
        summary.errors.append(f"{action.kind} {action.name}: {result}")
        return False
    if isinstance(result, BaseException):
        # A record or answer we could not handle: this user fails, the pass goes on for the others.
        wrapped = TwostepError(f"unexpected data ({type(result).__name__}: {result})")
        _failed(kc.realm, action, wrapped, summary, stops=False)
        summary.errors.append(f"{action.kind} {action.name}: {wrapped}")
        return False
    outcome = result
    if action.entry is not None and outcome in ("done", "busy"):
        settled.add(action.entry.group_id)
    if outcome == "done":
        counter = COUNTER[action.kind]
        if counter is not None:
            setattr(summary, counter, getattr(summary, counter) + 1)
            summary.actions.append(action.as_dict())
            metrics.record_action(kc.realm, str(action.kind))
    elif outcome == "busy":
        summary.handled_elsewhere += 1
    if action.end is not None and action.user_id and outcome == "done":
        # Only an end this pass made counts: one another run keeps "busy" stays pending (and overdue).
        summary.ended_user_ids.add(action.user_id)
    log.info("sync.action", kind=str(action.kind), target=action.name, user_id=action.user_id,
             outcome="done" if outcome == "done" else "handled_elsewhere", detail=action.detail,
             run_id=summary.run_id, realm=kc.realm)
    return False


def _failed(realm: str, action: Action, exc: TwostepError, summary: Summary, stops: bool) -> None:
    kind = metrics.error_kind(exc)
    metrics.record_error(realm, kind)
    log.error("sync.error", str(exc), kind=kind, action=action.kind, target=action.name, user_id=action.user_id,
              run_id=summary.run_id, realm=realm, stops_pass=stops)


@dataclass
class _Ctx:
    kc: KeycloakClient
    now: datetime
    audit: AuditSink
    actor: str
    lease_s: float
    run_id: str
    store: RecordStore
    settled: set[str]
    notifier: Notifier = EMAIL


def _end(ctx: _Ctx, action: Action) -> str:
    assert action.end is not None
    if action.entry is not None:  # provider mode: through the index entry's claim
        sessions = "none" if not action.end.end_sessions else "all" if action.kind == K.EXPIRE else "window"
        # An expiry is the entry alone (3 requests); the full pass's ends (drift, early end) go by the
        # record as it is now, which may differ from the entry's copy (a record written by hand).
        expiry = action.kind == K.EXPIRE
        rec = None if expiry else ctx.store.read(ctx.kc, {"id": action.entry.user_id,
                                                           "username": action.entry.username})
        return end_indexed(ctx.kc, action.entry, action.end.kind, action.end.why, ctx.now, ctx.audit, ctx.actor,
                           sessions=sessions, require_device=action.end.require_device, rec=rec,
                           drop_entry=not expiry, clear_all=not expiry, sync_run=ctx.run_id)
    outcome = end_bypass(ctx.kc, action.end, ctx.now, ctx.audit, ctx.actor, ctx.lease_s, store=ctx.store,
                         sync_run=ctx.run_id)
    return "busy" if outcome == "skipped" else outcome


def _finish(ctx: _Ctx, action: Action) -> str:
    assert action.user_id
    if action.entry is not None:
        # Claimed, so ended (and audited) by its claimant: what may be left is idempotent clean-up.
        try:
            ctx.kc.delete_credential(action.entry.user_id, action.entry.credential_id)
        except NotFound:
            pass
        bypass_index.remove(ctx.kc, action.entry.group_id)
        return "done"
    finish(ctx.kc, action.user_id, store=ctx.store)
    return "done"


def _unindex(ctx: _Ctx, action: Action) -> str:
    assert action.user_id
    if ctx.store.read(ctx.kc, ctx.kc.get_user(action.user_id)).marker is not None:
        return "busy"  # a grant arrived meanwhile
    ctx.store.clear(ctx.kc, action.user_id)
    return "done"


def _reindex(ctx: _Ctx, action: Action) -> str:
    assert action.user_id
    reindex(ctx.kc, action.user_id, action.name)
    root = bypass_index.root_id(ctx.kc)
    if root is not None:
        try:
            ctx.kc.leave_group(action.user_id, root)
        except NotFound:
            pass
    return "done"


def _drop_bucket(ctx: _Ctx, action: Action) -> str:
    assert action.group is not None
    if not set(action.needs) <= ctx.settled:
        return "not yet"  # an end of this hour failed: its entry stays for the next pass
    bypass_index.remove(ctx.kc, str(action.group["id"]))
    return "done"


def _drift_group(ctx: _Ctx, action: Action) -> str:
    assert action.group is not None
    kc = ctx.kc
    group = kc.get_group(str(action.group["id"]))
    attrs = dict(group.get("attributes") or {})
    if BYPASS_ATTR not in attrs:
        return "busy"
    attrs.pop(BYPASS_ATTR)
    group["attributes"] = attrs
    kc.update_group(str(group["id"]), group)
    ctx.audit.write(event("drift.repair", realm=kc.realm, actor=ctx.actor, now=ctx.now, group=action.name,
                          reason=action.detail, sync_run=ctx.run_id))
    return "done"


def _realm_write(ctx: _Ctx, what: str) -> Forbidden:
    """A repair of the realm itself (its flow, its user profile) needs manage-realm, which sync's
    least-privilege account does not hold (docs/operations.md, "Who needs which role"): the pass
    reports it as an error with the fix, and changes nothing."""
    return Forbidden(f"{what}: needs `twostep setup --realm {ctx.kc.realm}` as a bootstrap admin "
                     "(manage-realm; the sync account holds manage-users)")


def _may_write_realm(ctx: _Ctx, what: str) -> None:
    held = ctx.kc.token_roles()
    if held is not None and "manage-realm" not in held:
        raise _realm_write(ctx, what)


def _repair_profile(ctx: _Ctx, action: Action) -> str:
    kc = ctx.kc
    profile = kc.user_profile()
    want = desired_profile(profile)
    if want == profile:
        return "busy"
    what = "user profile declarations of the bypass records are missing or not admin-only"
    _may_write_realm(ctx, what)
    try:
        kc.update_user_profile(want)
    except Forbidden:
        raise _realm_write(ctx, what) from None
    ctx.audit.write(event("drift.repair", realm=kc.realm, actor=ctx.actor, now=ctx.now, target="user profile",
                          reason=action.detail, sync_run=ctx.run_id))
    return "done"


def _repair_flow(ctx: _Ctx, action: Action) -> str:
    kc = ctx.kc
    reading = read_policy(kc)
    policy, ok = reading.policy, reading.intact
    target = browser_target(kc, policy if ok else None)
    if target is None or target.desired is None:
        return "busy"
    what = f"flow {action.name!r} drifted ({action.detail})"
    _may_write_realm(ctx, what)
    try:
        rebuild_flow(kc, target)  # its first write is refused whole without manage-realm: nothing half-built
    except Forbidden:
        raise _realm_write(ctx, what) from None
    ctx.audit.write(event("drift.repair", realm=kc.realm, actor=ctx.actor, now=ctx.now, target=action.name,
                          reason=action.detail, sync_run=ctx.run_id))
    return "done"


def _remind(ctx: _Ctx, action: Action) -> str:
    assert action.user_id and action.deadline is not None
    outcome = ctx.notifier.notify(ctx.kc, ctx.kc.get_user(action.user_id), "enroll.reminder",
                                  {"until": utc_iso(action.deadline)}, ctx.audit, ctx.actor, ctx.now)
    # Not sent (no SMTP, no address) is audited by the notifier and is no failure of the pass.
    return "done" if outcome == "sent" else "not sent"


def _enforce(ctx: _Ctx, action: Action) -> str:
    assert action.user_id
    if not require_totp(ctx.kc, action.user_id):
        return "busy"
    ctx.audit.write(event("enforce", realm=ctx.kc.realm, actor=ctx.actor, now=ctx.now, user_id=action.user_id,
                          username=action.name, reason=action.detail, sync_run=ctx.run_id))
    return "done"


_HANDLERS = {K.EXPIRE: _end, K.END_EARLY: _end, K.DRIFT_USER: _end, K.FINISH: _finish, K.UNINDEX: _unindex,
             K.REINDEX: _reindex, K.DROP_BUCKET: _drop_bucket, K.DRIFT_GROUP: _drift_group,
             K.REPAIR_PROFILE: _repair_profile, K.REPAIR_FLOW: _repair_flow, K.REMIND: _remind,
             K.ENFORCE: _enforce}
assert set(_HANDLERS) == set(ActionKind)
