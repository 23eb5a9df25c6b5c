"""Coverage: of the users in scope, who has a second factor (an OTP app or a security key), who is in
the grace period, overdue, or without a device but bypassed; the same by group; a bounded daily
trend. One classification (`classify`) serves the sync pass's counts (realm_status.scope_counts ->
pass_summary, for the overview) and the exports (report.py), so the numbers on the page and the rows
of a CSV agree.

Cost: one credentials read per user in scope (the counting pass reads them anyway for backup
codes); the group breakdown re-reads group memberships (ids only), never credentials.
"""

from __future__ import annotations

from collections.abc import Container, Generator, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from . import recovery_codes
from .enforcement import CONFIGURE_TOTP, grace_deadline, users_in_scope
from .errors import NotFound
from .keycloak_adapter import JSON, KeycloakClient
from .policy import BYPASS_INDEX_GROUP, HELP_INDEX_GROUP, RealmPolicy

ENROLLED, BYPASSED, IN_GRACE, OVERDUE = "enrolled", "bypassed", "in_grace", "overdue"
STATES = (ENROLLED, IN_GRACE, OVERDUE, BYPASSED)
KEY_TYPES = ("webauthn", "webauthn-passwordless")
GROUPS_SHOWN = 10
"""Groups in the breakdown: the enforcement groups (first 10), else the 10 top-level groups with most members."""
TOP_GROUPS_READ = 50
"""Top-level groups looked at to find the largest (enforcement "all")."""
HISTORY_DAYS = 30
"""Daily trend entries kept ([date, in scope, enrolled], one per UTC day): about 30 * 25 bytes."""
INTERNAL_GROUPS = (BYPASS_INDEX_GROUP, HELP_INDEX_GROUP)


@dataclass(frozen=True)
class Covered:
    """One user in scope as the overview and the exports see them."""

    user: JSON
    otp: bool
    key: bool
    codes: recovery_codes.CodesInfo | None
    has_codes: bool
    deadline: datetime
    state: str
    pending: bool  # CONFIGURE_TOTP is asked at the next sign-in

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def username(self) -> str:
        return str(self.user.get("username") or "")


def classify(user: JSON, creds: list[JSON], policy: RealmPolicy, now: datetime, bypassed: Container[str]) -> Covered:
    """Enrolled: an OTP device or a security key. Otherwise bypassed (a bypass in force now), overdue
    (grace over) or in grace."""
    types = {str(c.get("type")) for c in creds}
    otp = bool(user.get("totp")) or "otp" in types
    key = any(t in types for t in KEY_TYPES)
    codes_creds = [c for c in creds if c.get("type") == recovery_codes.CREDENTIAL_TYPE]
    info = None
    if codes_creds:
        try:
            info = recovery_codes.parse_credential(codes_creds[0])
        except recovery_codes.CredentialFormatError:
            info = None  # unreadable: counted as having codes, never as low
    deadline = grace_deadline(user, policy)
    if otp or key:
        state = ENROLLED
    elif str(user["id"]) in bypassed:
        state = BYPASSED
    elif now >= deadline:
        state = OVERDUE
    else:
        state = IN_GRACE
    return Covered(user, otp, key, info, bool(codes_creds), deadline, state,
                   CONFIGURE_TOTP in (user.get("requiredActions") or []))


def walk(kc: KeycloakClient, policy: RealmPolicy, now: datetime, bypassed: Container[str],
         page_size: int = 100, not_enrolled_only: bool = False) -> Iterator[Covered]:
    """The users in scope page by page (never the realm in memory), one credentials read each.
    `not_enrolled_only` (the exports): a user whose representation says OTP is enrolled without
    reading their credentials, and is not yielded; in provider mode the others' credential types come
    in one call per page (the extension's `users/credential-types`, `_not_enrolled`), so an export
    costs about two calls per 100 users, not one per user (docs/performance.md)."""
    if not not_enrolled_only:
        for user in users_in_scope(kc, policy, page_size):
            yield classify(user, kc.user_credentials(str(user["id"])), policy, now, bypassed)
        return
    bulk = policy.provider_mode
    page: list[JSON] = []
    for user in users_in_scope(kc, policy, page_size):
        if user.get("totp"):
            continue
        page.append(user)
        if len(page) >= page_size:
            bulk = yield from _not_enrolled(kc, policy, now, bypassed, page, bulk)
            page = []
    if page:
        yield from _not_enrolled(kc, policy, now, bypassed, page, bulk)


def _not_enrolled(kc: KeycloakClient, policy: RealmPolicy, now: datetime, bypassed: Container[str],
                  page: list[JSON], bulk: bool) -> Generator[Covered, None, bool]:
    """The page's users not enrolled; returns whether the bulk read is still to be used (False after
    the extension was not found: the provider JAR is not loaded, so the per-user reads take over)."""
    types: dict[str, list[str]] = {}
    if bulk:
        try:
            types = kc.credential_types([str(u["id"]) for u in page])
        except NotFound:
            bulk = False
    for user in page:
        uid = str(user["id"])
        # Types only (no backup codes' data, which the exports do not show); a user left out of the
        # answer (not viewable, gone) is read on their own: Keycloak's own answer, refusal included.
        creds = [{"type": t} for t in types[uid] if t != recovery_codes.CREDENTIAL_TYPE] if uid in types \
            else kc.user_credentials(uid)
        c = classify(user, creds, policy, now, bypassed)
        if c.state != ENROLLED:
            yield c
    return bulk


def empty_tally() -> dict[str, int]:
    return {"in_scope": 0, **{s: 0 for s in STATES}}


def by_group(kc: KeycloakClient, policy: RealmPolicy, states: dict[str, str], read_limit: int) -> list[dict[str, Any]]:
    """The enforcement groups (with their subgroups), else the largest top-level groups, each with its
    tally of the users classified in `states` (user id -> state). Reads memberships only, at most
    `read_limit` members in all; a group whose walk stopped there says `complete: False`."""
    enf = policy.enforcement
    if enf.mode == "none":
        return []
    if enf.mode == "groups":
        roots = []
        for name in enf.groups[:GROUPS_SHOWN]:
            group = kc.find_group_by_path(name)
            if group is not None:
                roots.append(group)
    else:
        roots = [g for g in kc.iter_top_groups(TOP_GROUPS_READ) if g.get("name") not in INTERNAL_GROUPS]
    budget = read_limit
    out: list[dict[str, Any]] = []
    for root in roots:
        tally: dict[str, Any] = {"name": str(root.get("path") or root.get("name")), **empty_tally(), "complete": True}
        seen: set[str] = set()
        stack, groups = [root], []
        while stack:  # the group and all its subgroups
            grp = stack.pop()
            groups.append(grp)
            stack.extend(kc.group_children(str(grp["id"])))
        for grp in groups:
            for member in kc.iter_group_members(str(grp["id"])):
                if budget <= 0:
                    tally["complete"] = False
                    break
                budget -= 1
                uid = str(member.get("id"))
                if uid in seen:
                    continue
                seen.add(uid)
                state = states.get(uid)
                if state is None:
                    continue  # not in scope, or past the counting limit
                tally["in_scope"] += 1
                tally[state] += 1
        out.append(tally)
    if enf.mode == "all":  # the largest groups with anyone in scope
        out = sorted((t for t in out if t["in_scope"]), key=lambda t: (-t["in_scope"], t["name"]))[:GROUPS_SHOWN]
    return out


def add_day(history: list[list[Any]] | None, day: date, in_scope: int, enrolled: int) -> list[list[Any]]:
    """The trend with today's numbers: today's entry replaced (or added), the last HISTORY_DAYS kept."""
    key = day.isoformat()
    kept = [list(e) for e in (history or []) if valid_entry(e) and e[0] != key]
    kept.append([key, in_scope, enrolled])
    return sorted(kept, key=lambda e: str(e[0]))[-HISTORY_DAYS:]


def valid_entry(e: Any) -> bool:
    if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], str)):
        return False
    if type(e[1]) is not int or type(e[2]) is not int:
        return False
    try:
        date.fromisoformat(e[0])
    except ValueError:
        return False
    return True
