"""A sync pass's read: `read_state` -> `State`, with targeted queries. Its cost grows with the
bypassed users (the expiry index or one attribute query, paginated), plus a bounded enforcement scan
and a few realm-level reads.
"""

from __future__ import annotations

from datetime import datetime

from twostep import bypass_index, expiry_task, flows
from twostep.enforcement import (
    grace_deadline,
    has_device,
    needs_enrollment,
    user_in_scope,
    users_in_scope,
)
from twostep.errors import NotFound
from twostep.keycloak_adapter import JSON, KeycloakClient
from twostep.policy import BYPASS_ATTR, BYPASS_VALUE
from twostep.realm_policy import read_policy
from twostep.realm_setup import browser_target
from twostep.records import ENDING_VALUE, AttributeStore, CredentialStore, store_for
from twostep.user_profile import desired_profile

from .plan import DEFAULT_OPTIONS, Options, State, enrolled_after_grant

# -- read ------------------------------------------------------------------------------------------

def read_state(kc: KeycloakClient, now: datetime, options: Options = DEFAULT_OPTIONS) -> State:
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
        if rec.state(now, policy.bypass_max_s) == "active" and not enrolled_after_grant(state, rec):
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
