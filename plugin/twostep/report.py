"""The lists behind the overview's numbers, for export: users not enrolled, overdue, bypassed now.
One service for `/admin/export/<kind>.csv` and `twostep report <kind>`: rows come page by page from
Keycloak (coverage.walk, 100 users a page; a credentials read only for a user without OTP, to see a
security key) and are written as they come, so a 100,000-user realm is never in memory; the
classification is the one the sync pass counts with (coverage.classify).

CSV: UTF-8, one header row, CRLF line ends (RFC 4180), times ISO-8601 UTC; a cell a spreadsheet
would read as a formula (=, +, -, @, tab, CR first) gets a leading apostrophe.
JSON: one array, written row by row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from . import coverage
from .bypass import list_bypasses
from .errors import InvalidInput
from .keycloak_adapter import KeycloakClient
from .policy import RealmPolicy, utc_iso
from .realm_policy import read_policy

KINDS = ("not-enrolled", "overdue", "bypassed")
USER_COLUMNS = ("username", "email", "first_name", "last_name", "state", "deadline", "asked_at_next_sign_in")
COLUMNS = {
    "not-enrolled": USER_COLUMNS,
    "overdue": USER_COLUMNS,
    "bypassed": ("username", "user_id", "until", "granted_at", "granted_by", "reason"),
}
STATE_WORDS = {coverage.IN_GRACE: "in grace", coverage.OVERDUE: "overdue", coverage.BYPASSED: "bypassed"}


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"no report {kind!r}: use one of " + ", ".join(KINDS))
    return kind


def rows(kc: KeycloakClient, kind: str, now: datetime) -> Iterator[dict[str, str]]:
    """The rows of one report. What can fail at once is read before this returns (the bypasses: the
    index or the marked users, and the realm's policy), so a refusal is an error, never a half file;
    the users in scope are then read page by page as the rows are taken."""
    check_kind(kind)
    bypasses = [b for b in list_bypasses(kc, lambda: now) if b.get("bypassed")]
    if kind == "bypassed":
        return iter([{"username": str(b.get("username") or ""), "user_id": str(b.get("user_id") or ""),
                      "until": str(b.get("until") or ""), "granted_at": str(b.get("granted_at") or ""),
                      "granted_by": str(b.get("granted_by") or ""), "reason": str(b.get("reason") or "")}
                     for b in bypasses])
    # Through the extension for a help desk, who is handed the realm without its attributes.
    policy = read_policy(kc).policy
    wanted = {coverage.OVERDUE} if kind == "overdue" else {coverage.IN_GRACE, coverage.OVERDUE, coverage.BYPASSED}
    return _user_rows(kc, policy, now, {str(b.get("user_id")) for b in bypasses}, wanted)


def _user_rows(kc: KeycloakClient, policy: RealmPolicy, now: datetime, active: set[str],
               wanted: set[str]) -> Iterator[dict[str, str]]:
    for c in coverage.walk(kc, policy, now, active, not_enrolled_only=True):
        if c.state not in wanted:
            continue
        u = c.user
        yield {"username": c.username, "email": str(u.get("email") or ""), "first_name": str(u.get("firstName") or ""),
               "last_name": str(u.get("lastName") or ""), "state": STATE_WORDS[c.state],
               "deadline": utc_iso(c.deadline), "asked_at_next_sign_in": "yes" if c.pending else "no"}


def _safe(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_lines(kind: str, items: Iterable[dict[str, str]]) -> Iterator[str]:
    """The CSV text, one line (or quoted multi-line record) at a time, header first."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    columns = COLUMNS[kind]

    def take() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    writer.writerow(columns)
    yield take()
    for row in items:
        writer.writerow([_safe(row.get(c, "")) for c in columns])
        yield take()


def json_chunks(items: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A JSON array, one element at a time."""
    first = True
    yield "["
    for row in items:
        yield ("\n" if first else ",\n") + json.dumps(row, ensure_ascii=False, sort_keys=True)
        first = False
    yield "\n]\n"
