"""A sync pass's model and its plan: what the pass read (`State`), what it may do (`Options`) and
the changes it decides (`Action`, one `ActionKind` each). `plan(state, now)` is pure: no I/O, the
clock is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from twostep import bypass_index
from twostep.audit import EndKind
from twostep.bypass_end import EndPlan
from twostep.enforcement import (
    grace_deadline,
)
from twostep.keycloak_adapter import JSON
from twostep.policy import BROWSER_FLOW, BYPASS_INDEX_GROUP, RealmPolicy, utc_iso
from twostep.records import AttributeStore, Record, RecordStore


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


DEFAULT_OPTIONS = Options()


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



def enrolled_after_grant(state: State, rec: Any) -> bool:
    # granted_at has whole seconds (docs/formats.md) and credential times milliseconds: a device made in
    # the second of the grant, before it, is not "after the grant". Only devices from the next second on
    # count; a device made later in that same second ends the bypass on time instead.
    granted = rec.granted_at
    return granted is not None and any(ms >= (granted.timestamp() + 1) * 1000
                                       for ms in state.otp_created_ms.get(rec.user_id, []))


# -- plan (pure) -----------------------------------------------------------------------------------

K = ActionKind


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
        elif options.end_early and enrolled_after_grant(state, rec):
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
