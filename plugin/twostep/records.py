"""The bypass record and where it lives (docs/formats.md is the definition the Keycloak provider shares).

Two stores hold the same fields:
  CredentialStore  provider mode: one `twostep-bypass` credential per user (its credentialData), and
                   membership in the group `twostep-bypass` as the index sync finds records by.
                   Keycloak accepts credentials for LDAP users in every edit mode.
  AttributeStore   fallback mode (no provider): admin-only user attributes `twostep_bypass*`.

The marker has three meanings: "true" (bypassed), "ending" (over, clean-up pending), absent (none).
Any other value, or a record that cannot be read, is no bypass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from . import bypass_index, federation
from .errors import Conflict, Forbidden, NotFound, TwostepError
from .keycloak_adapter import JSON, KeycloakClient
from .policy import (
    BYPASS_ATTR,
    BYPASS_CREDENTIAL,
    BYPASS_INDEX_GROUP,
    BYPASS_VALUE,
    CONDITION_PROVIDER,
    HARD_BYPASS_MAX_S,
    RECORD_ATTRS,
    STORE_CREDENTIAL,
    RealmPolicy,
    parse_strict_time,
)
from .realm_policy import read_policy

ENDING_VALUE = "ending"
FIELDS = ("marker", "until", "granted_at", "by", "reason", "extended", "reset_device")
# The attribute that holds each field in the fallback store.
ATTRIBUTE_OF = {"marker": BYPASS_ATTR, **{f: f"twostep_bypass_{f}" for f in FIELDS[1:]}}
assert set(ATTRIBUTE_OF.values()) == {BYPASS_ATTR, *RECORD_ATTRS}
CREDENTIAL_LABEL = "twostep bypass"
STORE_CREDENTIAL_NAME = "credential"
parse_time = parse_strict_time


@dataclass(frozen=True)
class Record:
    user_id: str
    username: str
    marker: str | None
    until_raw: str
    granted_raw: str
    by: str
    reason: str
    extended: int
    reset_device: bool
    # The kind (docs/formats.md, "Kinds of bypass"): password (absent in the record) or pass, with
    # the pass's use (once | multi) and how often it was accepted. The pass's hash is never read here.
    kind: str = "password"
    pass_use: str = ""
    pass_used: int = 0

    @property
    def pass_live(self) -> bool:
        """A pass that may still be used (the provider's AccessPass.live)."""
        return self.kind == "pass" and (self.pass_use == "multi" or (self.pass_use == "once" and self.pass_used == 0))

    @property
    def kind_label(self) -> str:
        """`password`, `pass once`, `pass multi` (an unknown kind as stored)."""
        return f"{self.kind} {self.pass_use}".strip() if self.kind == "pass" else self.kind

    @property
    def until(self) -> datetime | None:
        return parse_time(self.until_raw)

    @property
    def granted_at(self) -> datetime | None:
        return parse_time(self.granted_raw)

    @property
    def active(self) -> bool:
        """The marker says "bypassed" (whether the record honours it is `counts`)."""
        return self.marker == BYPASS_VALUE

    @property
    def valid(self) -> bool:
        """A record that explains the marker: well-formed times in order, a granter, a reason."""
        u, g = self.until, self.granted_at
        return u is not None and g is not None and g <= u and bool(self.by.strip()) and bool(self.reason.strip())

    def counts(self, now: datetime, bypass_max_s: int) -> bool:
        """The rule the provider applies at sign-in (docs/formats.md, "A bypass counts only if")."""
        u, g = self.until, self.granted_at
        if not (self.active and self.valid and u is not None and g is not None):
            return False
        window = (u - g).total_seconds()
        return g <= now < u and window <= min(bypass_max_s, HARD_BYPASS_MAX_S)

    def state(self, now: datetime, bypass_max_s: int = HARD_BYPASS_MAX_S) -> str:
        if self.marker is None:
            return "none"
        if self.marker == ENDING_VALUE:
            return "ending"
        if not self.active:
            return "damaged-marker"
        if not self.valid:
            return "no-valid-record"
        assert self.until is not None and self.granted_at is not None
        if self.until <= now:
            return "expired"
        if self.granted_at > now:
            return "granted-in-future"
        if (self.until - self.granted_at).total_seconds() > min(bypass_max_s, HARD_BYPASS_MAX_S):
            return "too-long"
        return "active"

    def as_dict(self, now: datetime, bypass_max_s: int = HARD_BYPASS_MAX_S) -> dict[str, Any]:
        until = self.until
        live = self.state(now, bypass_max_s) == "active"
        return {
            "user_id": self.user_id, "username": self.username, "bypassed": live,
            "state": self.state(now, bypass_max_s), "until": self.until_raw or None,
            "seconds_left": max(0, int((until - now).total_seconds())) if until and live else None,
            "granted_by": self.by or None, "granted_at": self.granted_raw or None,
            "reason": self.reason or None,
            "extended": self.extended, "reset_device": self.reset_device,
            "kind": self.kind_label, "pass_used": self.pass_used if self.kind == "pass" else None,
        }

    def lock_key(self) -> str:
        return f"{self.user_id}|{self.granted_raw}|{self.until_raw}"

    def fields(self) -> dict[str, str]:
        return {"marker": self.marker or "", "until": self.until_raw, "granted_at": self.granted_raw,
                "by": self.by, "reason": self.reason, "extended": str(self.extended),
                "reset_device": "true" if self.reset_device else "false"}


def record_from_fields(user: JSON, fields: dict[str, Any] | None) -> Record:
    f = fields or {}

    def s(name: str) -> str:
        v = f.get(name)
        return v if isinstance(v, str) else ""

    try:
        extended = int(s("extended") or 0)
    except ValueError:
        extended = 0
    raw = s("pass_used")  # as the provider reads it: unused only when absent or exactly "0"
    used = 0 if raw in ("", "0") else int(raw) if raw.isdigit() and int(raw) > 0 else 1
    return Record(str(user["id"]), str(user.get("username", "")), s("marker") or None, s("until"),
                  s("granted_at"), s("by"), s("reason"), extended, s("reset_device") == "true",
                  s("kind") or "password", s("pass_use"), used)


class RecordStore(Protocol):
    name: str

    def read(self, kc: KeycloakClient, user: JSON, credentials: list[JSON] | None = None) -> Record: ...

    def write(self, kc: KeycloakClient, user: JSON, fields: dict[str, str],
              required_actions: list[str] | None = None) -> None: ...

    def clear(self, kc: KeycloakClient, user_id: str) -> None: ...

    def find(self, kc: KeycloakClient, page_size: int = 100) -> Iterator[tuple[JSON, Record]]: ...


class AttributeStore:
    """Fallback mode: admin-only user attributes (local users; LDAP users in READ_ONLY mode can't)."""

    name = "attributes"

    def read(self, kc: KeycloakClient, user: JSON, credentials: list[JSON] | None = None) -> Record:
        attrs = user.get("attributes") or {}
        fields = {}
        for name, attr in ATTRIBUTE_OF.items():
            values = attrs.get(attr) or []
            if values:
                fields[name] = str(values[0])
        return record_from_fields(user, fields)

    def write(self, kc: KeycloakClient, user: JSON, fields: dict[str, str],
              required_actions: list[str] | None = None) -> None:
        attrs = dict(user.get("attributes") or {})
        attrs.update({ATTRIBUTE_OF[k]: [v] for k, v in fields.items()})
        user["attributes"] = attrs
        if required_actions is not None:
            user["requiredActions"] = required_actions
        kc.update_user(str(user["id"]), user)

    def clear(self, kc: KeycloakClient, user_id: str) -> None:
        user = kc.get_user(user_id)
        attrs = {k: v for k, v in (user.get("attributes") or {}).items() if k not in ATTRIBUTE_OF.values()}
        user["attributes"] = attrs
        kc.update_user(user_id, user)

    def find(self, kc: KeycloakClient, page_size: int = 100) -> Iterator[tuple[JSON, Record]]:
        for marker in (BYPASS_VALUE, ENDING_VALUE):
            for user in kc.iter_users_with_attribute(BYPASS_ATTR, marker, page_size):
                yield user, self.read(kc, user)


class CredentialStore:
    """Provider mode: the record is a `twostep-bypass` credential; the group is the index."""

    name = STORE_CREDENTIAL_NAME

    def read(self, kc: KeycloakClient, user: JSON, credentials: list[JSON] | None = None) -> Record:
        creds = kc.user_credentials(str(user["id"])) if credentials is None else credentials
        mine = [c for c in creds if c.get("type") == BYPASS_CREDENTIAL]
        if not mine:
            return record_from_fields(user, None)
        try:
            data = json.loads(str(mine[0].get("credentialData") or ""))
        except ValueError:
            data = None
        if not isinstance(data, dict):
            # A record no one can read: not a bypass, but something to clean up (marker "damaged").
            return record_from_fields(user, {"marker": "damaged"})
        return record_from_fields(user, data)

    def _group_id(self, kc: KeycloakClient, create: bool) -> str | None:
        group = kc.find_group_by_path(BYPASS_INDEX_GROUP)
        if group is not None:
            return str(group["id"])
        if not create:
            return None
        return kc.create_group(BYPASS_INDEX_GROUP)

    def write(self, kc: KeycloakClient, user: JSON, fields: dict[str, str],
              required_actions: list[str] | None = None) -> None:
        uid = str(user["id"])
        refuse_directory_write(kc, user)
        full = {k: fields.get(k, "") for k in FIELDS}
        user = dict(user)
        user["credentials"] = [{"type": BYPASS_CREDENTIAL, "userLabel": CREDENTIAL_LABEL, "secretData": "{}",
                                "credentialData": json.dumps(full, sort_keys=True, separators=(",", ":"))}]
        if required_actions is not None:
            user["requiredActions"] = required_actions
        kc.update_user(uid, user)
        # Then the index entry of this record version (it names the credential Keycloak just made),
        # and the user's older entries go. A crash in between leaves a record without an entry: it
        # still ends on time at sign-in, and the next grant, revoke or `bypass index` run indexes it.
        reindex(kc, uid, str(user.get("username") or ""))

    def clear(self, kc: KeycloakClient, user_id: str) -> None:
        kc.delete_credentials(user_id, BYPASS_CREDENTIAL)
        bypass_index.remove_user(kc, user_id)
        gid = self._group_id(kc, create=False)
        if gid is not None:
            try:  # the index before 0.3 was membership of the root group
                kc.leave_group(user_id, gid)
            except NotFound:
                pass

    def find(self, kc: KeycloakClient, page_size: int = 100) -> Iterator[tuple[JSON, Record]]:
        """Every user with an index entry (one credentials read each), then the users still indexed
        the old way (members of the root group)."""
        root = bypass_index.root_id(kc)
        if root is None:
            return
        seen: set[str] = set()
        for bucket in bypass_index.buckets(kc, root, page_size):
            for entry in bypass_index.entries(kc, bucket, page_size):
                if entry.user_id in seen or entry.claimed:
                    continue
                seen.add(entry.user_id)
                user = {"id": entry.user_id, "username": entry.username}
                try:
                    yield user, self.read(kc, user)
                except NotFound:
                    continue  # user deleted; its entry goes with its bucket
        for user in list(kc.iter_group_members(root, page_size, brief=False)):
            if str(user["id"]) not in seen:
                seen.add(str(user["id"]))
                yield user, self.read(kc, user)


def reindex(kc: KeycloakClient, user_id: str, username: str) -> None:
    """Make the index match the user's record: one entry for an active record, none otherwise.
    Idempotent: a re-run converges."""
    creds = [c for c in kc.user_credentials(user_id) if c.get("type") == BYPASS_CREDENTIAL]
    want = ""
    if len(creds) == 1:
        rec = CredentialStore().read(kc, {"id": user_id, "username": username}, creds)
        if rec.active:
            want = bypass_index.entry_name(user_id, str(creds[0]["id"]))
            bypass_index.add(kc, user_id, str(creds[0]["id"]), rec.fields(), username)
    for gid, name in bypass_index.of_user(kc, user_id):
        if name != want:
            bypass_index.remove(kc, gid)


def refuse_directory_write(kc: KeycloakClient, user: JSON) -> None:
    """Joining the index group must not reach an LDAP directory: a group-ldap-mapper in LDAP_ONLY
    mode whose groups path covers it would create the group and the membership in the directory,
    even for a READ_ONLY federation (see federation.py). Refuse before anything is written."""
    link = user.get("federationLink")
    if not link:
        return
    try:
        mappers = kc.components("list the federation's mappers", parent=link, type=federation.LDAP_MAPPER)
    except Forbidden:
        # Someone with manage-users but not view-realm (web pages): they cannot see the mappers;
        # `twostep status` reports such a mapper to whoever can.
        return
    owners = [m for m in mappers if federation.manages_index_group(m)]
    if owners:
        raise Conflict(f"{user.get('username')}'s directory would be written: the federation's group mapper "
                       f"{owners[0].get('name')!r} keeps top-level groups in LDAP (mode LDAP_ONLY, groups path "
                       f"'/'), the bypass index group {BYPASS_INDEX_GROUP!r} included; set its Groups Path to a "
                       "subgroup such as /ldap (or its mode to READ_ONLY or IMPORT), then try again")


def provider_loaded(kc: KeycloakClient) -> bool:
    return CONDITION_PROVIDER in kc.authenticator_providers()


def store_for(kc: KeycloakClient, policy: RealmPolicy | None = None) -> RecordStore:
    """The store the realm's policy names. A missing or damaged policy: the credential store when the
    provider is loaded (it decides at sign-in from there), else the attributes."""
    if policy is None:
        policy = read_policy(kc).recorded
    if policy is not None:
        return CredentialStore() if policy.record_store == STORE_CREDENTIAL else AttributeStore()
    try:
        loaded = provider_loaded(kc)
    except TwostepError:
        loaded = False
    return CredentialStore() if loaded else AttributeStore()


def realm_context(kc: KeycloakClient) -> tuple[RealmPolicy, RecordStore]:
    """The policy to act on (fail-closed when damaged) and the store that holds the records."""
    reading = read_policy(kc)
    policy, intact = reading.policy, reading.intact
    return policy, store_for(kc, policy if intact else None)
