"""Help requests ("I lost my phone: ask an administrator"): the admins' side.

The provider stores a request when a user who passed the password step asks for help: one
`twostep-help-request` credential (asked_at, message, notified_at) and membership of the group
`twostep-help-requests`, the index (docs/formats.md, "Help requests"). Here: list the open queue and
answer a request (grant a bypass that also removes the lost device, or dismiss it with a reason).
E-mailing the admins about new requests and the queue's metrics: `help_notify` (the sync pass calls
its `sync_pass`).

A request is a message, never a credential to sign in with: nothing here reads it as a bypass, and a
member of the index without a readable credential is listed as damaged, never anything more.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import bypass
from .actor import Actor
from .audit import AuditSink, event
from .bypass_kinds import choose_kind
from .clock import Clock
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .keycloak_adapter import JSON, KeycloakClient
from .lock import Lock, acquire_lock, lease_seconds, release_lock
from .notify import EMAIL, Notifier
from .policy import HELP_CREDENTIAL, HELP_INDEX_GROUP, parse_strict_time
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


def expired(req: HelpRequest, now: datetime, days: int) -> bool:
    """Past its expiry (the policy's help_expiry_days after asked_at, as the provider decides it:
    HelpRequestLimits.expired). A damaged request never expires: the admins close it themselves."""
    asked = req.asked_at
    return not req.damaged and asked is not None and now - asked >= timedelta(days=days)


def split_expired(items: list[tuple[HelpRequest, JSON, list[JSON]]], now: datetime, days: int
                  ) -> tuple[list[tuple[HelpRequest, JSON, list[JSON]]], list[HelpRequest]]:
    """(the open queue without the expired requests, the expired ones): an expired request is not
    shown or counted anywhere; sync closes it."""
    live = [rc for rc in items if not expired(rc[0], now, days)]
    return live, [rc[0] for rc in items if expired(rc[0], now, days)]


def list_live(kc: KeycloakClient, now: datetime) -> list[tuple[HelpRequest, JSON, list[JSON]]]:
    """The open queue as the admins see it: list_open without the expired requests."""
    policy, _store = realm_context(kc)
    return split_expired(list_open(kc), now, policy.help_expiry_days)[0]


def queue(kc: KeycloakClient, clock: Clock) -> list[dict[str, Any]]:
    now = clock()
    return [r.as_dict(now) for r, _u, _c in list_live(kc, now)]


# -- answering --------------------------------------------------------------------------------------

def _open_request(kc: KeycloakClient, user: JSON) -> tuple[HelpRequest, bool]:
    """(request, in the index). Conflict in one line when the request is already closed."""
    creds = kc.user_credentials(str(user["id"]))
    req = read_request(user, creds)
    try:
        gid = _index_id(kc)
    except Forbidden:  # an admin who may not read the index group (a delegated one): the credential decides here,
        gid = None     # and the provider's extension, which reads the index itself, checks again
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
    kc.delete_credentials(user_id, HELP_CREDENTIAL)
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
          password_only: bool = False, notifier: Notifier = EMAIL) -> dict[str, Any]:
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
    notified = notifier.notify(kc, kc.get_user(req.user_id), "help.grant",
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
    removed = kc.delete_credentials(str(user["id"]), "otp")
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
            dry_run: bool = False, notifier: Notifier = EMAIL) -> dict[str, Any]:
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
    result["notified"] = "skipped: damaged request" if req.damaged else notifier.notify(
        kc, kc.get_user(req.user_id), "help.dismiss", {"reason": why, "asked_at": req.asked_at_raw},
        audit, actor.name, now)
    result["changes"] = [f"closed the help request of {req.username} (asked {req.asked_at_raw or '?'})"]
    return result
