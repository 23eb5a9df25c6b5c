"""One sync pass: read what matters (targeted queries), plan (pure), apply.

read_state  -> State       cost grows with bypassed users (one attribute query, paginated), plus a
                           bounded enforcement scan and a few realm-level reads;
plan(state, now) -> [Action]  pure: no I/O, the clock is an argument;
apply(kc, actions, ...) -> Summary.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from twostep import bypass_index, expiry_task, flows, help_requests, logs, metrics, pass_summary
from twostep.audit import AuditSink, EndKind, event
from twostep.bypass_end import EndPlan, end_bypass, end_indexed, finish
from twostep.enforcement import (
    grace_deadline,
    has_device,
    needs_enrollment,
    require_totp,
    user_in_scope,
    users_in_scope,
)
from twostep.errors import Forbidden, KeycloakUnavailable, NotFound, TwostepError, Unauthorized
from twostep.keycloak_adapter import JSON, KeycloakClient
from twostep.lock import sweep_stale_locks
from twostep.notify import notify_user
from twostep.policy import BROWSER_FLOW, BYPASS_ATTR, BYPASS_INDEX_GROUP, BYPASS_VALUE, RealmPolicy, utc_iso
from twostep.realm_policy import read_policy
from twostep.realm_setup import browser_target, rebuild_flow
from twostep.records import ENDING_VALUE, AttributeStore, CredentialStore, Record, RecordStore, reindex, store_for
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
    # Provider mode: expiries ended this many at a time (each touches one user and claims its own entry).
    # 1 by default: with several in flight, losing Keycloak can lose the answer to a claim that was
    # made, and that end is then tidied without its audit event.
    workers: int = 1
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
    # Provider mode (the expiry index, bypass_index.py): entries due, entries still running (by user),
    # buckets whose hour is over, with their entries, and users still indexed the old way.
    indexed: bool = False
    due: list[bypass_index.Entry] = field(default_factory=list)
    entries: dict[str, bypass_index.Entry] = field(default_factory=dict)
    buckets_over: list[tuple[JSON, list[bypass_index.Entry]]] = field(default_factory=list)
    legacy: list[JSON] = field(default_factory=list)
    claimed: list[bypass_index.Entry] = field(default_factory=list)  # ended by a run (full pass: tidied)
    active_count: int = 0
    next_until: datetime | None = None
    # The provider's expiry task serves this realm and ran lately (expiry_task.py): it ends the due
    # entries; this pass leaves them to it (the claim keeps both paths to one end each anyway).
    expiry_by_task: bool = False


class ActionKind(StrEnum):
    """Every kind of change a pass makes: dispatch (`_HANDLERS`), the summary counter each one adds
    to (`COUNTER`), the metrics label and the JSON `kind` are all this one value."""

    EXPIRE = EndKind.EXPIRE.value
    END_EARLY = EndKind.END_EARLY.value
    DRIFT_USER = "drift_user"
    FINISH = "finish"
    UNINDEX = "unindex"
    REINDEX = "reindex"
    DROP_BUCKET = "drop_bucket"
    DRIFT_GROUP = "drift_group"
    REPAIR_PROFILE = "repair_profile"
    REPAIR_FLOW = "repair_flow"
    REMIND = "remind"
    ENFORCE = "enforce"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    name: str
    detail: str
    user_id: str | None = None
    end: EndPlan | None = None
    group: JSON | None = field(default=None, compare=False)
    deadline: datetime | None = None
    entry: bypass_index.Entry | None = None
    needs: tuple[str, ...] = ()  # drop_bucket: the entries (ids) this pass must have claimed first

    def as_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "target": self.name, "detail": self.detail}


# -- read ------------------------------------------------------------------------------------------

def read_state(kc: KeycloakClient, now: datetime, options: Options = Options()) -> State:
    reading = read_policy(kc)
    policy, ok = reading.policy, reading.intact
    state = State(kc.realm, policy, ok, store=store_for(kc, policy if ok else None))
    if isinstance(state.store, CredentialStore):
        _read_index(kc, state, now, options)
    else:
        _read_attributes(kc, state, now, options)
    _read_realm(kc, state, now, options)
    return state


def _read_index(kc: KeycloakClient, state: State, now: datetime, options: Options) -> None:
    """Provider mode. The expiry pass reads the index only: the root, its buckets (one page per 100
    hours), and the entries of the buckets whose hour has begun, whatever the realm's size. A full
    pass also reads each running bypass's user and record (drift, early end) and the old index."""
    state.indexed = True
    state.expiry_by_task = expiry_task.task_has_it(kc, state.policy, now) if state.policy_ok else False
    root = bypass_index.root_id(kc)
    if root is None:
        return
    future: list[tuple[datetime, JSON]] = []
    for bucket in bypass_index.buckets(kc, root, options.page_size):
        span = bypass_index.bucket_span(str(bucket.get("name")))
        if span is None:
            continue
        if span[0] > now and not options.full:
            state.active_count += int(bucket.get("subGroupCount") or 0)
            future.append((span[0], bucket))
            continue
        listed = list(bypass_index.entries(kc, bucket, options.page_size))
        for entry in listed:
            until = entry.until
            if entry.claimed:
                if options.full:
                    state.claimed.append(entry)
                continue
            if until is None or until <= now:
                if not state.expiry_by_task:
                    state.due.append(entry)
            else:
                state.entries[entry.user_id] = entry
                state.active_count += 1
                state.next_until = until if state.next_until is None else min(state.next_until, until)
        if span[1] <= now:
            state.buckets_over.append((bucket, listed))
    if state.next_until is None and future:
        # The watch sleeps until the next end: the earliest bucket still to come says when.
        _start, first = min(future, key=lambda f: f[0])
        times = [e.until for e in bypass_index.entries(kc, first, options.page_size) if e.until and not e.claimed]
        state.next_until = min(times) if times else None
    for entry in state.due:
        if entry.reset_device:  # the only ends that add CONFIGURE_TOTP with the provider
            state.in_scope[entry.user_id] = user_in_scope(kc, entry.user_id, state.policy)
    if options.full:
        for entry in list(state.entries.values()):
            try:
                user = kc.get_user(entry.user_id)
            except NotFound:
                continue
            rec = state.store.read(kc, user)
            state.bypassed.append((user, rec))
            if options.end_early and rec.valid and user.get("totp"):
                creds = kc.user_credentials(rec.user_id)
                state.otp_created_ms[rec.user_id] = [int(c.get("createdDate") or 0)
                                                     for c in creds if c.get("type") == "otp"]
            state.in_scope[rec.user_id] = user_in_scope(kc, rec.user_id, state.policy)
        state.legacy = list(kc.iter_group_members(root, options.page_size, brief=True))


def _read_attributes(kc: KeycloakClient, state: State, now: datetime, options: Options) -> None:
    policy = state.policy
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


def _read_realm(kc: KeycloakClient, state: State, now: datetime, options: Options) -> None:
    policy, ok = state.policy, state.policy_ok
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


def _early(state: State, rec: Any) -> bool:
    # granted_at has whole seconds (docs/formats.md) and credential times milliseconds: a device made in
    # the second of the grant, before it, is not "after the grant". Only devices from the next second on
    # count; a device made later in that same second ends the bypass on time instead.
    granted = rec.granted_at
    return granted is not None and any(ms >= (granted.timestamp() + 1) * 1000
                                       for ms in state.otp_created_ms.get(rec.user_id, []))


# -- plan (pure) -----------------------------------------------------------------------------------

def plan(state: State, now: datetime, options: Options = Options()) -> list[Action]:
    actions: list[Action] = []
    for user, rec in state.bypassed:
        in_scope = state.in_scope.get(rec.user_id, state.policy.enforcement.mode == "all")
        grace_over = now >= grace_deadline(user, state.policy)
        require = in_scope and (rec.reset_device or grace_over)

        entry = state.entries.get(rec.user_id)

        def end(kind: EndKind, why: str, rec: Any = rec, require: bool = require) -> EndPlan:
            return EndPlan(kind, rec.user_id, rec.username, rec.marker, rec.lock_key(), why,
                           options.end_sessions, require)

        status = rec.state(now, state.policy.bypass_max_s)
        if status in ("damaged-marker", "no-valid-record"):
            why = "bypass marker without a valid record (set by hand?): treated as expired"
            actions.append(Action(K.DRIFT_USER, rec.username, why, rec.user_id, end(EndKind.DRIFT, why), entry=entry))
        elif status in ("too-long", "granted-in-future"):
            why = f"bypass record not honoured at sign-in ({status}): ended"
            actions.append(Action(K.DRIFT_USER, rec.username, why, rec.user_id, end(EndKind.DRIFT, why), entry=entry))
        elif rec.until is not None and rec.until <= now:
            why = f"bypass time is up ({rec.until_raw})"
            actions.append(Action(K.EXPIRE, rec.username, why, rec.user_id, end(EndKind.EXPIRE, why), entry=entry))
        elif options.end_early and _early(state, rec):
            why = "the user enrolled a new OTP device after the grant"
            actions.append(Action(K.END_EARLY, rec.username, why, rec.user_id, end(EndKind.END_EARLY, why),
                                  entry=entry))
    for e in state.due:
        why = (f"bypass time is up ({e.until_raw})" if e.until is not None
               else f"index entry with no readable end ({e.until_raw!r}): ended")
        in_scope = state.in_scope.get(e.user_id, state.policy.enforcement.mode == "all")
        actions.append(Action(K.EXPIRE, e.username or e.user_id, why, e.user_id,
                              EndPlan(EndKind.EXPIRE, e.user_id, e.username, "true", e.group_id, why,
                                      options.end_sessions, in_scope and e.reset_device), entry=e))
    for bucket, listed in state.buckets_over:
        name = str(bucket.get("name"))
        actions.append(Action(K.DROP_BUCKET, f"{BYPASS_INDEX_GROUP}/{name}",
                              f"hour over, {len(listed)} record(s) ended: index bucket removed", group=bucket,
                              needs=tuple(sorted(e.group_id for e in listed if not e.claimed))))
    for user in state.legacy:
        actions.append(Action(K.REINDEX, str(user.get("username")), "indexed the old way (member of "
                              f"{BYPASS_INDEX_GROUP}): given an index entry", str(user["id"])))
    for e in state.claimed:
        actions.append(Action(K.FINISH, e.username or e.user_id, "ended by an earlier run: record and index "
                              "entry removed (in case that run stopped before)", e.user_id, entry=e))
    for user, _rec in state.ending:
        actions.append(Action(K.FINISH, str(user.get("username")), "finish clean-up of an ended bypass",
                              str(user["id"])))
    for user, _rec in state.unindexed:
        actions.append(Action(K.UNINDEX, str(user.get("username")), "in the bypass index without a record",
                              str(user["id"])))
    for group in state.group_markers:
        path = str(group.get("path") or group.get("name"))
        actions.append(Action(K.DRIFT_GROUP, path, f"group {path} carries the bypass marker (ignored by the "
                              "login flow, removed so no one mistakes it for a bypass)", group=group))
    if state.profile_drift:
        actions.append(Action(K.REPAIR_PROFILE, "user profile",
                              "bypass marker/record declaration missing or not admin-only"))
    if state.flow_drift:
        actions.append(Action(K.REPAIR_FLOW, BROWSER_FLOW, "; ".join(state.flow_drift)))
    for user, deadline in state.to_remind:
        actions.append(Action(K.REMIND, str(user.get("username")),
                              f"in grace until {utc_iso(deadline)}, no second factor yet: e-mail a reminder",
                              str(user["id"]), deadline=deadline))
    for user in state.to_enforce:
        actions.append(Action(K.ENFORCE, str(user.get("username")),
                              "in scope, grace over, no OTP device: require CONFIGURE_TOTP", str(user["id"])))
    return actions


def next_expiry(state: State, now: datetime) -> datetime | None:
    if state.indexed:
        return state.next_until
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


K = ActionKind
# The summary counter each kind adds to (None: housekeeping, counted in no total).
COUNTER: dict[ActionKind, str | None] = {
    K.EXPIRE: "expired", K.END_EARLY: "ended_early", K.DRIFT_USER: "drift_repaired", K.FINISH: "finished",
    K.UNINDEX: "drift_repaired", K.REINDEX: "drift_repaired", K.DROP_BUCKET: None,
    K.DRIFT_GROUP: "drift_repaired", K.REPAIR_PROFILE: "drift_repaired", K.REPAIR_FLOW: "drift_repaired",
    K.REMIND: "reminded", K.ENFORCE: "enforced"}
assert set(COUNTER) == set(ActionKind)


def apply(kc: KeycloakClient, actions: list[Action], now: datetime, audit: AuditSink, actor: str,
          lease_s: float, summary: Summary, store: RecordStore | None = None, workers: int = 1) -> Summary:
    """Each action on its own: one failure does not stop the others, except losing Keycloak or our
    credentials, which stops the run (every later request would fail the same way). The expiries of
    provider mode touch one user each and claim their own entry: they run `workers` at a time, first;
    everything else (the bucket drops, which wait for those claims, included) follows in plan order."""
    store = store or store_for(kc)
    settled: set[str] = set()  # index entries this pass claimed, or found claimed by another run
    ctx = _Ctx(kc, now, audit, actor, lease_s, summary.run_id, store, settled)
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
    outcome = notify_user(ctx.kc, ctx.kc.get_user(action.user_id), "enroll.reminder",
                          {"until": utc_iso(action.deadline)}, ctx.audit, ctx.actor, ctx.now)
    # Not sent (no SMTP, no address) is audited by notify_user and is no failure of the pass.
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
    apply(kc, actions, now, audit, actor, lease_s, summary, state.store, options.workers)
    pending = pending_end(state, now, summary)
    metrics.record_pass(kc.realm, ok=summary.ok, active=summary.bypassed_active,
                        next_end=pending.timestamp() if pending else None)
    # After the bypass work and its gauges: a slow SMTP server never delays an end. Its errors count.
    help_requests.sync_pass(kc, now, audit, actor, summary.errors, state.policy)
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
