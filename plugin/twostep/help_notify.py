"""Telling the admins about help requests, each sync pass: who `help_admins` names (`recipients`;
setup checks the name with `check_help_admins`), one e-mail per new request to each, `notified_at`
set once a mail went out, and the queue's metrics (`sync_pass`). The queue and answering a request:
`help_requests`.
"""

from __future__ import annotations

import json
from datetime import datetime

from . import metrics
from .audit import AuditSink, event
from .errors import Conflict, InvalidInput, NotFound, TwostepError
from .help_requests import HELP_LABEL, MAX_RECIPIENTS, HelpRequest, close, list_open, read_request, split_expired
from .keycloak_adapter import JSON, KeycloakClient
from .lock import acquire_lock, lease_seconds, release_lock
from .notify import EMAIL, Notifier
from .policy import HELP_CREDENTIAL, RealmPolicy, utc_iso


def recipients(kc: KeycloakClient, spec: str) -> list[JSON]:
    """The admins named by the policy's `help_admins`: members of the group (and its subgroups) or
    holders of the realm role; only those with an e-mail address, each once, at most MAX_RECIPIENTS."""
    kind, _sep, name = spec.partition(":")
    users: list[JSON] = []
    if kind == "group":
        group = kc.find_group_by_path(name)
        if group is None:
            raise NotFound(f"help_admins names group {name!r}, which does not exist; run `twostep setup "
                           "--help-admins ...`")
        stack = [str(group["id"])]
        while stack and len(users) < 10 * MAX_RECIPIENTS:
            gid = stack.pop()
            users.extend(kc.iter_group_members(gid, brief=False))
            stack.extend(str(c["id"]) for c in kc.group_children(gid))
    elif kind == "role":
        try:
            users = list(kc.iter_role_users(name))
        except NotFound:
            raise NotFound(f"help_admins names realm role {name!r}, which does not exist; run `twostep setup "
                           "--help-admins ...`") from None
    seen: dict[str, JSON] = {}
    for u in users:
        if u.get("email") and u.get("enabled", True) and str(u["id"]) not in seen:
            seen[str(u["id"])] = u
    return list(seen.values())[:MAX_RECIPIENTS]


def check_help_admins(kc: KeycloakClient, spec: str) -> None:
    """setup refuses a group or role that does not exist (a typo would leave admins unwarned)."""
    kind, _sep, name = spec.partition(":")
    if kind == "group" and kc.find_group_by_path(name) is None:
        raise InvalidInput(f"--help-admins: no group {name!r} in realm {kc.realm!r} (give its path, e.g. "
                           "group:/helpdesk)")
    if kind == "role":
        try:
            kc.get_role(name)
        except NotFound:
            raise InvalidInput(f"--help-admins: no realm role {name!r} in realm {kc.realm!r}") from None


def _rewrite(kc: KeycloakClient, req: HelpRequest, notified_at: str) -> None:
    """Store the request again with `notified_at` set (the provider's credential keeps one per user:
    storing replaces). Same fields and label the provider writes."""
    data = {"asked_at": req.asked_at_raw, "message": req.message, "notified_at": notified_at}
    kc.store_user_credential(req.user_id, {
        "type": HELP_CREDENTIAL, "userLabel": HELP_LABEL, "secretData": "{}",
        "credentialData": json.dumps(data, sort_keys=True, separators=(",", ":"))})


def notify_admins(kc: KeycloakClient, now: datetime, audit: AuditSink, actor: str,
                  pending: list[HelpRequest], spec: str, notifier: Notifier = EMAIL) -> dict[str, int]:
    """E-mail every recipient about each open request not yet e-mailed, then set its notified_at.
    Only a request of which at least one mail went out is marked (no SMTP, nobody with an address:
    the next pass tries again). Under the request's lock, re-read: two sync hosts mail once."""
    counts = {"requests": 0, "mails": 0}
    if not spec or not pending:
        return counts
    admins = recipients(kc, spec)
    if not admins:
        return counts  # nobody with an address: nothing to lock or send; the next pass looks again
    for req in pending:
        lock = acquire_lock(kc, f"help|{req.user_id}", lease_seconds(kc.settings))
        if lock is None:
            continue  # being answered or e-mailed by someone else right now
        try:
            user = kc.get_user(req.user_id)
            fresh = read_request(user, kc.user_credentials(req.user_id))
            if fresh is None or fresh.damaged or fresh.notified_at_raw:
                continue
            sent = 0
            for admin in admins:
                details = {"requester": fresh.username, "asked_at": fresh.asked_at_raw, "message": fresh.message}
                if notifier.notify(kc, admin, "help.new", details, audit, actor, now) == "sent":
                    sent += 1
            if sent:
                _rewrite(kc, fresh, utc_iso(now))
                counts["requests"] += 1
                counts["mails"] += sent
                audit.write(event("help.notify", realm=kc.realm, actor=actor, now=now, user_id=fresh.user_id,
                                  username=fresh.username, asked_at=fresh.asked_at_raw, admins_mailed=sent))
        finally:
            release_lock(kc, lock)
    return counts


def sync_pass(kc: KeycloakClient, now: datetime, audit: AuditSink, actor: str, errors: list[str],
              policy: RealmPolicy, notifier: Notifier = EMAIL) -> dict[str, int]:
    """The sync's one call: read the queue, set the metrics, e-mail the admins about new requests.
    A failure here (Keycloak lost included) is one error of the pass, appended to `errors`: the pass
    still records what it did."""
    try:
        live, gone = split_expired(list_open(kc), now, policy.help_expiry_days)
        close_expired(kc, now, audit, actor, errors, gone, policy)
        items = [r for r, _u, _c in live]
        readable = [r for r in items if not r.damaged]
        oldest = min((r.asked_at for r in readable if r.asked_at), default=None)
        metrics.record_help(kc.realm, open_count=len(items), oldest=oldest.timestamp() if oldest else None)
        pending = [r for r in readable if not r.notified_at_raw]
        return notify_admins(kc, now, audit, actor, pending, policy.help_admins, notifier)
    except TwostepError as exc:
        metrics.record_error(kc.realm, metrics.error_kind(exc))
        errors.append(f"help requests: {exc}")
        return {"requests": 0, "mails": 0}


def close_expired(kc: KeycloakClient, now: datetime, audit: AuditSink, actor: str, errors: list[str],
                  gone: list[HelpRequest], policy: RealmPolicy) -> int:
    """Close each expired request through the provider's dismiss (one transaction under the user's row
    lock, refused with 409 when the user filed a new request meanwhile: a new request is never closed
    as the old one), audited as `help.expire`. The user is not e-mailed. One error per request that
    could not be closed; the others go on. Without the provider (a request left from provider mode):
    the plain close under the request's lock, re-read first."""
    closed, days = 0, policy.help_expiry_days
    for req in gone:
        try:
            if policy.provider_mode:
                kc.help_answer(req.user_id, "dismiss", {"reason": f"expired: not answered within {days} days",
                                                        "by": actor, "asked_at": req.asked_at_raw})
            elif not _close_if_unchanged(kc, req):
                continue
        except Conflict:
            continue  # answered or filed anew meanwhile: nothing of this request is left to close
        except TwostepError as exc:
            errors.append(f"help requests: could not close the expired request of {req.username}: {exc}")
            continue
        closed += 1
        audit.write(event("help.expire", realm=kc.realm, actor=actor, now=now, user_id=req.user_id,
                          username=req.username, asked_at=req.asked_at_raw, expiry_days=days))
    return closed


def _close_if_unchanged(kc: KeycloakClient, req: HelpRequest) -> bool:
    lock = acquire_lock(kc, f"help|{req.user_id}", lease_seconds(kc.settings))
    if lock is None:
        return False
    try:
        fresh = read_request(kc.get_user(req.user_id), kc.user_credentials(req.user_id))
        if fresh is None or fresh.asked_at_raw != req.asked_at_raw:
            return False
        close(kc, req.user_id)
        return True
    finally:
        release_lock(kc, lock)
