"""One sync pass: read what matters (targeted queries), plan (pure), apply.

read.read_state  -> State          (sync/read.py)
plan.plan(state, now) -> [Action]  pure: no I/O, the clock is an argument (sync/plan.py)
apply.apply(kc, actions, ...) -> Summary  (sync/apply.py)
`run_once` is that pass with its metrics, logs and warnings.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from twostep import help_notify, logs, metrics, pass_summary
from twostep.audit import AuditSink
from twostep.errors import KeycloakUnavailable, TwostepError, Unauthorized
from twostep.keycloak_adapter import KeycloakClient
from twostep.lock import sweep_stale_locks
from twostep.notify import EMAIL, Notifier
from twostep.policy import utc_iso

from .apply import Summary, apply
from .plan import DEFAULT_OPTIONS, Options, State, next_expiry, plan
from .read import read_state

log = logs.get("twostep.sync")


def run_once(kc: KeycloakClient, now: datetime, audit: AuditSink, actor: str, lease_s: float,
             options: Options = DEFAULT_OPTIONS, dry_run: bool = False,
             notifier: Notifier = EMAIL) -> tuple[Summary, State | None]:
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
    summary.bypassed_active = state.active_count if state.indexed else sum(
        1 for _u, r in state.bypassed if r.state(now, state.policy.bypass_max_s) == "active")
    nxt = next_expiry(state, now)
    summary.next_expiry = utc_iso(nxt) if nxt else None
    if not state.policy_ok:
        summary.warnings.append("realm policy record missing or damaged: acting on the fail-closed policy "
                                f"(everyone, no grace); run `twostep setup --realm {kc.realm}`")
    if state.expiry_by_task:
        log.info("sync.expiry_by_task", "the provider's expiry task ends this realm's bypasses", run_id=summary.run_id,
                 realm=kc.realm)
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
    apply(kc, actions, now, audit, actor, lease_s, summary, state.store, options.workers, notifier)
    pending = pending_end(state, now, summary)
    metrics.record_pass(kc.realm, ok=summary.ok, active=summary.bypassed_active,
                        next_end=pending.timestamp() if pending else None)
    # After the bypass work and its gauges: a slow SMTP server never delays an end. Its errors count.
    help_notify.sync_pass(kc, now, audit, actor, summary.errors, state.policy, notifier)
    log.info("sync.pass", kind="full" if options.full else "expiry", run_id=summary.run_id, realm=kc.realm,
             ok=summary.ok, expired=summary.expired, ended_early=summary.ended_early,
             drift_repaired=summary.drift_repaired, enforced=summary.enforced, errors=len(summary.errors),
             active=summary.bypassed_active, next_expiry=summary.next_expiry)
    pass_summary.record(kc, now, summary, state, options.full)  # for the admin overview; never raises
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
    ends = [e.until for e in state.due if e.until is not None and e.user_id not in summary.ended_user_ids]
    if state.next_until is not None:
        ends.append(state.next_until)
    for _user, rec in state.bypassed:
        if rec.valid and rec.until is not None and rec.user_id not in summary.ended_user_ids:
            ends.append(rec.until)
    return min(ends) if ends else None
