"""Help requests ("I lost my phone: ask an administrator"): the admins' side.

The provider stores a request when a user who passed the password step asks for help: one
`twostep-help-request` credential (asked_at, message, notified_at) and membership of the group
`twostep-help-requests`, the index (docs/formats.md, "Help requests"). Here: list the open queue,
answer a request (grant a bypass that also removes the lost device, or dismiss it with a reason),
e-mail the admins about new requests and keep the queue's metrics; the sync pass calls `sync_pass`.

A request is a message, never a credential to sign in with: nothing here reads it as a bypass, and a
member of the index without a readable credential is listed as damaged, never anything more.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import bypass, metrics
from .actor import Actor
from .audit import AuditSink, event
from .bypass_kinds import choose_kind
from .clock import Clock
from .errors import Conflict, InvalidInput, NotFound, TwostepError
from .keycloak_adapter import JSON, KeycloakClient
from .lock import Lock, acquire_lock, lease_seconds, release_lock
from .notify import notify_user
from .policy import HELP_CREDENTIAL, HELP_INDEX_GROUP, RealmPolicy, parse_strict_time, utc_iso
from .records import CredentialStore, realm_context
from .users import resolve_user

HELP_LABEL = "twostep help request"
FIELDS = ("asked_at", "message", "notified_at")
# The duration an answer grants unless the admin picks another (capped by the policy's bypass maximum):
# a day to set up the new phone.
DEFAULT_GRANT = timedelta(days=1)
REASON_MAX = 500
# Admins e-mailed about one request at most: a role or group the size of the realm is a mistake.
MAX_RECIPIENTS = 50


@dataclass(frozen=True)
class HelpRequest:
    user_id: str
    username: str
    email: str
    asked_at_raw: str
    message: str
    notified_at_raw: str
    damaged: str = ""  # why it can't be read; empty for a readable request

    @property
    def asked_at(self) -> datetime | None:
        return parse_strict_time(self.asked_at_raw)

    def as_dict(self, now: datetime) -> dict[str, Any]:
        asked = self.asked_at
        return {"user_id": self.user_id, "username": self.username, "email": self.email or None,
                "state": "damaged" if self.damaged else "open", "damaged": self.damaged or None,
                "asked_at": self.asked_at_raw or None, "message": self.message,
                "notified_at": self.notified_at_raw or None,
                "age_seconds": max(0, int((now - asked).total_seconds())) if asked and not self.damaged else None}


def read_request(user: JSON, credentials: list[JSON]) -> HelpRequest | None:
    """The user's request as stored, None when there is no `twostep-help-request` credential.
    Anything but one credential whose data is a JSON object of strings with a well-formed asked_at
    is damaged."""
    uid, name, mail = str(user["id"]), str(user.get("username") or ""), str(user.get("email") or "")
    mine = [c for c in credentials if c.get("type") == HELP_CREDENTIAL]
    if not mine:
        return None
    if len(mine) > 1:
        return HelpRequest(uid, name, mail, "", "", "", "more than one help request credential")
    try:
        data = json.loads(str(mine[0].get("credentialData") or ""))
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return HelpRequest(uid, name, mail, "", "", "", "the stored request is not a JSON object of strings")
    asked, notified = data.get("asked_at", ""), data.get("notified_at", "")
    if parse_strict_time(asked) is None:
        return HelpRequest(uid, name, mail, "", "", "", "the stored request has no well-formed asked_at")
    if notified and parse_strict_time(notified) is None:
        notified = ""  # unreadable: as if not yet e-mailed (at worst the admins hear of it twice)
    return HelpRequest(uid, name, mail, asked, data.get("message", ""), notified)


def _index_id(kc: KeycloakClient) -> str | None:
    group = kc.find_group_by_path(HELP_INDEX_GROUP)
    return str(group["id"]) if group is not None else None


def _members(kc: KeycloakClient, page_size: int = 100) -> Iterator[JSON]:
    gid = _index_id(kc)
    if gid is None:
        return iter(())
    return kc.iter_group_members(gid, page_size, brief=False)


CARD_LIMIT = 1000


def open_summary(kc: KeycloakClient, names: int = 5) -> tuple[int, bool, list[str]]:
    """(count, more, first usernames) of the open requests for the overview, at most two calls (the index
    group, one page of its members) whatever the queue's size; the queue page reads the requests."""
    gid = _index_id(kc)
    if gid is None:
        return 0, False, []
    page = kc.group_members_page(gid, 0, CARD_LIMIT + 1, brief=True)
    return min(len(page), CARD_LIMIT), len(page) > CARD_LIMIT, [str(u.get("username")) for u in page[:names]]


def list_open(kc: KeycloakClient, page_size: int = 100) -> list[tuple[HelpRequest, JSON, list[JSON]]]:
    """The open queue, oldest first (damaged entries last), each with the user's full representation
    and the credentials read for it (the pages show devices and codes from them: no second read)."""
    out: list[tuple[HelpRequest, JSON, list[JSON]]] = []
    for user in list(_members(kc, page_size)):
        creds = kc.user_credentials(str(user["id"]))
        req = read_request(user, creds) or HelpRequest(
            str(user["id"]), str(user.get("username") or ""), str(user.get("email") or ""), "", "", "",
            "in the help request index without a request")
        out.append((req, user, creds))
    return sorted(out, key=lambda rc: (bool(rc[0].damaged), rc[0].asked_at_raw, rc[0].username))


def queue(kc: KeycloakClient, clock: Clock) -> list[dict[str, Any]]:
    now = clock()
    return [r.as_dict(now) for r, _u, _c in list_open(kc)]


# -- answering --------------------------------------------------------------------------------------

def _open_request(kc: KeycloakClient, user: JSON) -> tuple[HelpRequest, bool]:
    """(request, in the index). Conflict in one line when the request is already closed."""
    creds = kc.user_credentials(str(user["id"]))
    req = read_request(user, creds)
    gid = _index_id(kc)
    member = gid is not None and any(str(g.get("id")) == gid for g in kc.user_groups(str(user["id"])))
    if req is None and not member:
        raise Conflict(f"{user.get('username')} has no open help request (already answered, or never asked)")
    if req is None:
        req = HelpRequest(str(user["id"]), str(user.get("username") or ""), str(user.get("email") or ""),
                          "", "", "", "in the help request index without a request")
    return req, member


def close(kc: KeycloakClient, user_id: str) -> None:
    """Remove the request's credential, then the membership (docs/formats.md): a member without a
    credential is a damaged entry that still shows in the queue, never a lost request. Idempotent."""
    for cred in kc.user_credentials(user_id):
        if cred.get("type") == HELP_CREDENTIAL:
            try:
                kc.delete_credential(user_id, str(cred["id"]))
            except NotFound:
                pass
    gid = _index_id(kc)
    if gid is not None:
        try:
            kc.leave_group(user_id, gid)
        except NotFound:
            pass


def _answer_lock(kc: KeycloakClient, user: JSON) -> Lock:
    lock = acquire_lock(kc, f"help|{user['id']}", lease_seconds(kc.settings))
    if lock is None:
        raise Conflict(f"another admin is answering the help request of {user.get('username')}; "
                       "check `twostep help list` in a minute")
    return lock


def grant_duration(kc: KeycloakClient, duration: timedelta | None) -> timedelta:
    """The bypass an answer grants: the preset (a day) capped by the policy's maximum; a duration the
    admin gave is checked by bypass.grant as any other (too long: refused, not cut)."""
    if duration is not None:
        return duration
    policy, _store = realm_context(kc)
    return min(DEFAULT_GRANT, timedelta(seconds=policy.bypass_max_s))


def grant(kc: KeycloakClient, clock: Clock, audit: AuditSink, actor: Actor, who: str,
          duration: timedelta | None = None, dry_run: bool = False, pass_use: str | None = None,
          password_only: bool = False) -> dict[str, Any]:
    """Answer with a bypass that also removes the lost device (bypass.grant with reset_device, which
    also ends the sessions), then close the request and tell the user."""
    user = resolve_user(kc, who)
    req, _member = _open_request(kc, user)
    if req.damaged:
        raise Conflict(f"the help request of {req.username} is damaged ({req.damaged}): dismiss it "
                       "(`twostep help dismiss`) and use `twostep bypass grant --reset-device` if needed")
    length = grant_duration(kc, duration)
    reason = f"help request of {req.asked_at_raw}: lost device"
    breq = bypass.GrantRequest(who=req.user_id, reason=reason, duration=length, reset_device=True, notify=False,
                               pass_use=pass_use, password_only=password_only)
    if dry_run:
        res = bypass.grant(kc, clock, audit, actor, breq, dry_run=True)
        res["changes"].append(f"close the help request of {req.username} (asked {req.asked_at_raw})")
        return {**res, "action": "help.grant"}
    if _in_keycloak(kc):
        res = _grant_in_keycloak(kc, clock, audit, actor, req, breq)
    else:
        lock = _answer_lock(kc, user)
        try:
            user = kc.get_user(req.user_id)
            req, _member = _open_request(kc, user)  # under the lock: not answered meanwhile
            res = _resume(kc, clock, user, reason) or bypass.grant(kc, clock, audit, actor, breq)
            close(kc, req.user_id)
        finally:
            release_lock(kc, lock)
    now = clock()
    audit.write(event("help.grant", realm=kc.realm, actor=actor.name, now=now, user_id=req.user_id,
                      username=req.username, asked_at=req.asked_at_raw, until=res["until"],
                      devices_removed=res.get("devices_removed"), credential=actor.credential))
    notified = notify_user(kc, kc.get_user(req.user_id), "help.grant",
                           {"until": res["until"], "asked_at": req.asked_at_raw}, audit, actor.name, now)
    res["changes"].append(f"closed the help request of {req.username} (asked {req.asked_at_raw})")
    return {**res, "action": "help.grant", "asked_at": req.asked_at_raw, "notified": notified}


def _in_keycloak(kc: KeycloakClient) -> bool:
    """Provider mode (records in credentials): answers go through the provider's admin extension."""
    return isinstance(realm_context(kc)[1], CredentialStore)


def _grant_in_keycloak(kc: KeycloakClient, clock: Clock, audit: AuditSink, actor: Actor, req: HelpRequest,
                       breq: bypass.GrantRequest) -> dict[str, Any]:
    """One transaction in Keycloak, after its own permission check for this user: the bypass (with the
    device reset and the sessions ended), its index entry and the closing of the request. A request
    answered meanwhile (its asked_at changed or it is gone) is refused there (409)."""
    assert breq.duration is not None
    policy, _store = realm_context(kc)
    bypass.validate_window(clock(), policy, breq.duration, None)  # the one-line refusal before Keycloak is asked
    choose_kind(policy.bypass_kinds, policy.bypass_default, breq.pass_use, breq.password_only)
    done = kc.help_answer(req.user_id, "grant", {"seconds": int(breq.duration.total_seconds()), "by": actor.name,
                                                 "asked_at": req.asked_at_raw, **bypass.kind_body(breq)})
    if done.get("resumed"):
        return {"action": "bypass.grant", "dry_run": False, "user_id": req.user_id, "username": req.username,
                "until": done["until"], "devices_removed": done.get("devices_removed"),
                "changes": [f"the bypass of an earlier answer to this request is kept (until {done['until']})"]}
    now = clock()
    audit.write(event("bypass.grant", realm=kc.realm, actor=actor.name, now=now, user_id=req.user_id,
                      username=req.username, until=done["until"], reason=breq.reason, previous_until=None,
                      reset_device=True, devices_removed=done.get("devices_removed"), sessions_ended=True,
                      break_glass=False, self_bypass=False, credential=actor.credential,
                      kind=bypass.kind_label(done)))
    shown = {"access_pass": str(done["access_pass"])} if done.get("access_pass") else {}  # once: never audited
    return {"action": "bypass.grant", "dry_run": False, "user_id": req.user_id, "username": req.username,
            "until": done["until"], "devices_removed": done.get("devices_removed"), "kind": bypass.kind_label(done),
            **shown,
            "changes": [f"set the bypass marker on {req.username} until {done['until']}",
                        "remove the user's OTP devices (the lost phone becomes worthless)",
                        "end all of the user's sessions"]}


def _resume(kc: KeycloakClient, clock: Clock, user: JSON, reason: str) -> dict[str, Any] | None:
    """An earlier answer to this very request granted its bypass but stopped before closing the
    request (Keycloak lost, process killed): finish that answer instead of refusing it as "already
    bypassed". The devices are removed again (the bypass is written before they are)."""
    current = bypass.show_user(kc, user, clock())
    if not (current["bypassed"] and current["reason"] == reason):
        return None
    removed = 0
    for cred in kc.user_credentials(str(user["id"])):
        if cred.get("type") == "otp":
            kc.delete_credential(str(user["id"]), str(cred["id"]))
            removed += 1
    if removed:
        kc.logout_user(str(user["id"]))
    return {"action": "bypass.grant", "dry_run": False, "user_id": str(user["id"]),
            "username": user.get("username"), "until": current["until"], "devices_removed": removed,
            "changes": [f"the bypass of an earlier answer to this request is kept (until {current['until']})"]}


def dismiss_reason(reason: str) -> str:
    """The reason on one line, bounded; InvalidInput when there is none (checked before Keycloak is asked)."""
    why = " ".join(reason.split())[:REASON_MAX]
    if not why:
        raise InvalidInput("a reason is required to dismiss a help request (--reason TEXT); the user is told")
    return why


def dismiss(kc: KeycloakClient, clock: Clock, audit: AuditSink, actor: Actor, who: str, reason: str,
            dry_run: bool = False) -> dict[str, Any]:
    """Close the request without changing the account; the reason is required and told to the user."""
    why = dismiss_reason(reason)
    user = resolve_user(kc, who)
    req, _member = _open_request(kc, user)
    result: dict[str, Any] = {"action": "help.dismiss", "dry_run": dry_run, "user_id": req.user_id,
                              "username": req.username, "asked_at": req.asked_at_raw or None,
                              "changes": [f"close the help request of {req.username} without changing the "
                                          "account"]}
    if dry_run:
        return result
    if _in_keycloak(kc):
        kc.help_answer(req.user_id, "dismiss", {"reason": why, "by": actor.name, "asked_at": req.asked_at_raw})
    else:
        lock = _answer_lock(kc, user)
        try:
            req, _member = _open_request(kc, kc.get_user(req.user_id))
            close(kc, req.user_id)
        finally:
            release_lock(kc, lock)
    now = clock()
    audit.write(event("help.dismiss", realm=kc.realm, actor=actor.name, now=now, user_id=req.user_id,
                      username=req.username, asked_at=req.asked_at_raw or None, reason=why,
                      damaged=req.damaged or None, credential=actor.credential))
    result["notified"] = "skipped: damaged request" if req.damaged else notify_user(
        kc, kc.get_user(req.user_id), "help.dismiss", {"reason": why, "asked_at": req.asked_at_raw},
        audit, actor.name, now)
    result["changes"] = [f"closed the help request of {req.username} (asked {req.asked_at_raw or '?'})"]
    return result


# -- telling the admins (each sync pass) -------------------------------------------------------------

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
                  pending: list[HelpRequest], spec: str) -> dict[str, int]:
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
                if notify_user(kc, admin, "help.new", details, audit, actor, now) == "sent":
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
              policy: RealmPolicy) -> dict[str, int]:
    """The sync's one call: read the queue, set the metrics, e-mail the admins about new requests.
    A failure here (Keycloak lost included) is one error of the pass, appended to `errors`: the pass
    still records what it did."""
    try:
        items = [r for r, _u, _c in list_open(kc)]
        readable = [r for r in items if not r.damaged]
        oldest = min((r.asked_at for r in readable if r.asked_at), default=None)
        metrics.record_help(kc.realm, open_count=len(items), oldest=oldest.timestamp() if oldest else None)
        pending = [r for r in readable if not r.notified_at_raw]
        return notify_admins(kc, now, audit, actor, pending, policy.help_admins)
    except TwostepError as exc:
        metrics.record_error(kc.realm, metrics.error_kind(exc))
        errors.append(f"help requests: {exc}")
        return {"requests": 0, "mails": 0}
