"""The expiry index of provider mode (docs/formats.md, "The bypass index"): where sync finds the
bypass records that are due without reading every user, and the claim that lets exactly one run
end each of them.

    twostep-bypass                       top-level group (the index root)
      2026-12-01T20                      bucket: the UTC hour in which the records below end
        <user id>.<credential id>        entry: one record version (attributes: until, granted_at, ...)
          ending                         claim: created by the one run that ends this record

Keycloak has no compare-and-set, but sibling group names are unique: creating `ending` under an
entry succeeds for one caller (201), every other gets 409. A bucket whose hour is over and whose
entries are all claimed is deleted as a whole (its entries and claims with it): one request per
hour of expiries, not one per expiry. The Java provider never reads any of this.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import Conflict, KeycloakUnavailable, NotFound
from .keycloak_adapter import JSON, KeycloakClient
from .policy import BYPASS_INDEX_GROUP, parse_strict_time, utc_iso

CLAIM = "ending"
BUCKET_FORMAT = "%Y-%m-%dT%H"
REASON_MAX = 200  # group attribute values are short; the record keeps the whole reason


def bucket_name(until: datetime) -> str:
    return until.astimezone(UTC).strftime(BUCKET_FORMAT)


def bucket_span(name: str) -> tuple[datetime, datetime] | None:
    """[start, end) of a bucket; None for a name that is not a bucket (left alone)."""
    try:
        start = datetime.strptime(name, BUCKET_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return start, start + timedelta(hours=1)


def entry_name(user_id: str, credential_id: str) -> str:
    return f"{user_id}.{credential_id}"


@dataclass(frozen=True)
class Entry:
    """One record version in the index: enough to end it without reading the user."""

    group_id: str
    bucket: str
    user_id: str
    credential_id: str
    username: str
    until_raw: str
    granted_raw: str
    by: str
    reason: str
    reset_device: bool
    claimed: bool

    @property
    def until(self) -> datetime | None:
        return parse_strict_time(self.until_raw)

    @property
    def granted_at(self) -> datetime | None:
        return parse_strict_time(self.granted_raw)


def entry_from_group(group: JSON, bucket: str) -> Entry | None:
    name = str(group.get("name") or "")
    user_id, dot, cred = name.partition(".")
    if not (dot and user_id and cred):
        return None
    attrs = group.get("attributes") or {}

    def a(key: str) -> str:
        values = attrs.get(key) or [""]
        return str(values[0])

    return Entry(str(group["id"]), bucket, user_id, cred, a("username"), a("until"), a("granted_at"), a("by"),
                 a("reason"), a("reset_device") == "true", int(group.get("subGroupCount") or 0) > 0)


def root_id(kc: KeycloakClient, create: bool = False) -> str | None:
    group = kc.find_group_by_path(BYPASS_INDEX_GROUP)
    if group is not None:
        return str(group["id"])
    return kc.create_group(BYPASS_INDEX_GROUP) if create else None


def buckets(kc: KeycloakClient, root: str, page_size: int = 100) -> list[JSON]:
    return list(kc.iter_child_groups(root, page_size, brief=True))


def entries(kc: KeycloakClient, bucket: JSON, page_size: int = 100) -> Iterator[Entry]:
    for group in kc.iter_child_groups(str(bucket["id"]), page_size, brief=False):
        entry = entry_from_group(group, str(bucket.get("name")))
        if entry is not None:
            yield entry


def _bucket_id(kc: KeycloakClient, root: str, name: str) -> str:
    for group in kc.iter_child_groups(root, 100, brief=True, search=name, exact="true"):
        if group.get("name") == name:
            return str(group["id"])
    try:
        return kc.create_child_group(root, name)
    except Conflict:  # created meanwhile by another grant
        for group in kc.iter_child_groups(root, 100, brief=True, search=name, exact="true"):
            if group.get("name") == name:
                return str(group["id"])
        raise


def add(kc: KeycloakClient, user_id: str, credential_id: str, fields: dict[str, str], username: str) -> str:
    """Index one record version (after its credential was written). Idempotent: a re-run that finds
    the entry keeps it. A bucket deleted between the look-up and the create (its hour was over:
    only a record that ends in the past lands there) is made again once."""
    until = parse_strict_time(fields.get("until", "")) or datetime.now(UTC)
    attrs = {"until": [fields.get("until", "")], "granted_at": [fields.get("granted_at", "")],
             "username": [username], "by": [fields.get("by", "")[:REASON_MAX]],
             "reason": [fields.get("reason", "")[:REASON_MAX]],
             "reset_device": [fields.get("reset_device", "false")]}
    root = root_id(kc, create=True)
    assert root is not None
    for attempt in (1, 2):
        bucket = _bucket_id(kc, root, bucket_name(until))
        try:
            return kc.create_child_group(bucket, entry_name(user_id, credential_id), attrs)
        except Conflict:
            return ""  # already indexed (a re-run)
        except NotFound:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def of_user(kc: KeycloakClient, user_id: str) -> list[tuple[str, str]]:
    """(id, name) of every entry of one user (any bucket): one search request."""
    found: list[tuple[str, str]] = []

    def walk(groups: list[JSON], depth: int) -> None:
        for g in groups:
            name = str(g.get("name") or "")
            if depth == 2 and name.startswith(user_id + "."):
                found.append((str(g["id"]), name))
            elif depth < 2:
                walk(list(g.get("subGroups") or []), depth + 1)

    roots = [g for g in kc.search_groups(user_id) if g.get("name") == BYPASS_INDEX_GROUP]
    walk(roots, 0)
    return found


def remove(kc: KeycloakClient, group_id: str) -> None:
    try:
        kc.delete_group(group_id)
    except NotFound:
        pass  # removed meanwhile (its bucket was dropped, or another run)


def remove_user(kc: KeycloakClient, user_id: str, keep: str = "") -> None:
    for gid, _name in of_user(kc, user_id):
        if gid != keep:
            remove(kc, gid)


def claim(kc: KeycloakClient, entry: Entry, now: datetime, actor: str) -> bool:
    """True for the one caller that claims this record version; False when another run did (409)
    or the entry is gone (revoked, extended, or ended and its bucket dropped: 404)."""
    try:
        kc.create_child_group(entry.group_id, CLAIM, {"at": [utc_iso(now)], "by": [actor[:REASON_MAX]]})
        return True
    except (Conflict, NotFound):
        return False
    except KeycloakUnavailable as outage:
        # Two creates of one name at the same instant can meet the database's unique constraint
        # (HTTP 500, as with the lock roles on H2): lost when the claim now exists.
        try:
            rows = list(kc.iter_child_groups(entry.group_id, 10, brief=True, search=CLAIM, exact="true"))
        except NotFound:
            return False
        if any(r.get("name") == CLAIM for r in rows):
            return False
        raise outage from None
