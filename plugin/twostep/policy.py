"""The two-step policy as data, no I/O: the record `RealmPolicy` (what `setup` writes into the realm
attribute `twostep.policy`), its JSON codec (read as strictly as the provider reads it, docs/formats.md),
and the names and limits every layer shares (attribute and credential names, bypass limits).

Three modules, one policy: this one is the format; `realm_policy` is the one reader (it fetches the
record from Keycloak and says what a missing or damaged one means: the fail-closed policy);
`provider_decision` is the provider's per-login decision mirrored in Python, for the tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .bypass_kinds import BYPASS_KINDS, bypass_kinds_of
from .errors import InvalidInput

# The bypass marker: an admin-only user attribute that the login flow's condition reads with
# `not=true`. Missing attribute, renamed attribute, or a group attribute all evaluate to "not
# bypassed" (the second factor runs); a deleted condition config makes the login fail, never open.
BYPASS_ATTR = "twostep_bypass"
BYPASS_VALUE = "true"
RECORD_ATTRS = (
    "twostep_bypass_until",
    "twostep_bypass_by",
    "twostep_bypass_reason",
    "twostep_bypass_granted_at",
    "twostep_bypass_extended",
    "twostep_bypass_reset_device",
)
CODES_ATTRS = ("twostep_codes_by", "twostep_codes_at")
ADMIN_ONLY_ATTRS = (BYPASS_ATTR, *RECORD_ATTRS, *CODES_ATTRS)
PROFILE_GROUP = "twostep"

POLICY_ATTR = "twostep.policy"
BROWSER_FLOW = "twostep browser"
RESET_FLOW = "twostep reset credentials"
DIRECT_GRANT_FLOW = "twostep direct grant"
# Realm field -> the twostep flow setup binds there, and Keycloak's built-in flow it falls back to.
REALM_FLOWS = {"browserFlow": (BROWSER_FLOW, "browser"), "resetCredentialsFlow": (RESET_FLOW, "reset credentials"),
               "directGrantFlow": (DIRECT_GRANT_FLOW, "direct grant")}
SERVICE_CLIENT_ID = "twostep-cli"
# What the day-to-day CLI and sync need, and no more (docs/operations.md, "Who needs which role"):
# read and change users, their credentials and twostep's groups (manage-users), read the realm, its
# policy record and flows (view-realm). No manage-realm: only `twostep setup` (a bootstrap admin) changes
# the realm, its flows and its user profile; sync reports such drift as "needs setup". Setup grants
# exactly these and removes any other realm-management role the account holds (an older setup granted
# manage-realm and view-events).
SERVICE_ROLES = ("manage-users", "view-users", "query-users", "query-groups", "view-realm")
# Fallback mode (no provider JAR) serialises bypass changes and sync's ends with a lock that is a realm
# role (lock.py): creating and deleting roles needs manage-realm, so there the account needs it too.
FALLBACK_ROLES = (*SERVICE_ROLES, "manage-realm")


def service_roles(provider_mode: bool) -> tuple[str, ...]:
    """The realm-management roles of the day-to-day account (twostep-cli) in this mode: exactly these."""
    return SERVICE_ROLES if provider_mode else FALLBACK_ROLES

DEFAULT_BYPASS_MAX_S = 7 * 24 * 3600
HARD_BYPASS_MAX_S = 30 * 24 * 3600
FAIL_CLOSED_BYPASS_MAX_S = 3600

# docs/formats.md: the identifiers the Keycloak provider (plugin/keycloak) shares with us.
CONDITION_PROVIDER = "twostep-condition-second-factor"
BYPASS_CREDENTIAL = "twostep-bypass"
CODES_PROVENANCE_CREDENTIAL = "twostep-codes-provenance"
BYPASS_INDEX_GROUP = "twostep-bypass"
HELP_CREDENTIAL = "twostep-help-request"
HELP_INDEX_GROUP = "twostep-help-requests"
# What the last sync pass saw (pass_summary.py): attributes of this top-level group, which the
# day-to-day account writes with manage-users (a realm attribute would need manage-realm).
STATE_GROUP = "twostep-state"
HELP_ADMIN_KINDS = ("group", "role")
BACKUP_CODES_CHOICES = ("required", "offered", "off")
STORE_CREDENTIAL = "credential"  # provider mode: records are credentials, the provider decides
STORE_ATTRIBUTES = "attributes"  # fallback mode: records are user attributes, sync ends bypasses


@dataclass(frozen=True)
class Enforcement:
    """Who must have a second factor: everyone, members of named groups, or nobody (opt-in)."""

    mode: str = "all"  # all | groups | none
    groups: tuple[str, ...] = ()
    grace_days: int = 0

    @classmethod
    def parse(cls, specs: tuple[str, ...], grace_days: int) -> Enforcement:
        if grace_days < 0 or grace_days > 365:
            raise InvalidInput("--grace-days must be between 0 and 365")
        if not specs or specs == ("all",):
            return cls("all", (), grace_days)
        if specs == ("none",):
            return cls("none", (), grace_days)
        groups: list[str] = []
        for spec in specs:
            if not spec.startswith("group:") or not spec[6:].strip():
                raise InvalidInput(f"--enforce takes all, none or group:NAME, got {spec!r}")
            groups.append(spec[6:].strip())
        return cls("groups", tuple(sorted(set(groups))), grace_days)

    def describe(self) -> str:
        who = {"all": "everyone", "none": "nobody (opt-in)"}.get(self.mode, "groups " + ", ".join(self.groups))
        return f"{who}, grace {self.grace_days} day(s)"


@dataclass(frozen=True)
class RealmPolicy:
    """What we keep in the realm attribute `twostep.policy` (Keycloak is the only store)."""

    enforcement: Enforcement = field(default_factory=Enforcement)
    enforce_since: str = ""
    bypass_max_s: int = DEFAULT_BYPASS_MAX_S
    previous_browser_flow: str | None = None
    previous_reset_flow: str | None = None
    backup_codes: str = "required"
    record_store: str = STORE_ATTRIBUTES
    decided_by: str = "sync"
    # Fingerprints (flows.digest) of the realm's own flows that setup adapted: status compares
    # them with the source flows now, to say when an admin changed a source after setup.
    browser_source_digest: str = ""
    reset_source_digest: str = ""
    # Python-only (the provider reads its limit from the step's config): whether setup put the
    # help-request step ("I lost my phone") into the browser flow, and the limit it configured.
    help_requests: str = "off"
    help_max_per_hour: int = 20
    # Shared with the provider (docs/formats.md, "Help requests"): the per-user limit (filings a day),
    # the per-address limit (filings an hour; 0 = none) and after how many days a request expires.
    # Written only when not the default, so records written before stay byte-identical.
    help_max_per_user_day: int = 3
    help_max_per_address_hour: int = 5
    help_expiry_days: int = 7
    # Python only (docs/formats.md, "Help requests"): who is e-mailed about a new help request,
    # `group:<path>` or `role:<realm role>`; empty: nobody (the queue is still shown).
    help_admins: str = ""
    # The realm's own direct-grant flow before setup and its fingerprint (docs/formats.md, "Doors").
    previous_direct_grant_flow: str | None = None
    direct_grant_source_digest: str = ""
    # Python only: the clients whose browser / direct_grant override setup bound to an adapted
    # copy, and the flow (alias) each pointed at before (teardown binds it back).
    client_overrides: tuple[tuple[str, str, str], ...] = ()  # (clientId, browser|direct_grant, alias)
    # Python only: each identity provider's first- and post-broker-login flows before setup ("" none).
    idp_flows: tuple[tuple[str, str, str], ...] = ()  # (alias, first broker flow, post broker flow)
    # Both readers (docs/formats.md): identity providers whose logins need no second factor here.
    trusted_idps: tuple[str, ...] = ()
    # Python only: `setup --kerberos`: second-factor (a Kerberos ticket alone signs nobody in) | trusted.
    kerberos: str = "second-factor"
    # Shared with the provider (docs/formats.md): `off` switches the provider's expiry task off for
    # this realm (sync then ends its bypasses, as in fallback mode); anything else is on.
    expiry_task: str = "on"
    # Both readers (docs/formats.md, "Kinds of bypass"): which kinds admins may grant, pass first, and
    # the one a grant gets when it names none. Absent (the defaults below): both, the access pass.
    bypass_kinds: tuple[str, ...] = BYPASS_KINDS
    bypass_default: str = "pass"

    def previous_flow(self, key: str) -> str | None:
        """What was bound in the realm field `key` before setup (None: not recorded)."""
        return {"browserFlow": self.previous_browser_flow, "resetCredentialsFlow": self.previous_reset_flow,
                "directGrantFlow": self.previous_direct_grant_flow}.get(key)

    def source_digest(self, key: str) -> str:
        return {"browserFlow": self.browser_source_digest, "resetCredentialsFlow": self.reset_source_digest,
                "directGrantFlow": self.direct_grant_source_digest}.get(key, "")

    @property
    def provider_mode(self) -> bool:
        return self.record_store == STORE_CREDENTIAL

    def to_json(self) -> str:
        data = asdict(self)
        data["enforcement"]["groups"] = list(self.enforcement.groups)
        if not self.help_admins:
            del data["help_admins"]  # absent means nobody: records written before it stay byte-identical
        for key in ("previous_direct_grant_flow", "direct_grant_source_digest"):
            if not data[key]:
                del data[key]
        del data["client_overrides"], data["idp_flows"], data["trusted_idps"]
        if self.kerberos == "second-factor":
            del data["kerberos"]
        if self.idp_flows:
            data["idp_flows"] = {a: {"first": f, "post": p} for a, f, p in self.idp_flows}
        if self.trusted_idps:
            data["trusted_idps"] = sorted(self.trusted_idps)
        if self.client_overrides:
            overrides: dict[str, dict[str, str]] = {}
            for client, kind, alias in self.client_overrides:
                overrides.setdefault(client, {})[kind] = alias
            data["client_overrides"] = overrides
        if self.expiry_task != "off":
            del data["expiry_task"]  # absent means on
        for key, default in HELP_LIMIT_DEFAULTS.items():
            if data[key] == default:
                del data[key]
        data["bypass_kinds"] = list(self.bypass_kinds)
        if self.bypass_kinds == BYPASS_KINDS and self.bypass_default == "pass":
            del data["bypass_kinds"], data["bypass_default"]  # absent means both, the access pass
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> RealmPolicy | None:
        """None when missing or damaged: callers then fail closed (realm_policy.policy_of). Read exactly as
        strictly as the provider reads it (docs/formats.md), so both agree on what is readable."""
        if not text:
            return None
        try:
            data = json.loads(text)
            if not readable(data):
                return None
            enf = data["enforcement"]
            return cls(
                enforcement=Enforcement(str(enf["mode"]), tuple(enf.get("groups", ())), int(enf["grace_days"])),
                enforce_since=str(data.get("enforce_since", "")),
                bypass_max_s=min(int(data.get("bypass_max_s", DEFAULT_BYPASS_MAX_S)), HARD_BYPASS_MAX_S),
                previous_browser_flow=data.get("previous_browser_flow"),
                previous_reset_flow=data.get("previous_reset_flow"),
                backup_codes=_choice(data.get("backup_codes", "required"), BACKUP_CODES_CHOICES),
                record_store=_choice(data.get("record_store", STORE_ATTRIBUTES), (STORE_ATTRIBUTES, STORE_CREDENTIAL)),
                decided_by=_choice(data.get("decided_by", "sync"), ("sync", "provider")),
                browser_source_digest=str(data.get("browser_source_digest", "")),
                reset_source_digest=str(data.get("reset_source_digest", "")),
                # Lenient: a key the provider ignores never makes the record unreadable.
                help_requests="on" if data.get("help_requests") == "on" else "off",
                help_max_per_hour=_help_rate(data.get("help_max_per_hour")),
                help_max_per_user_day=_help_limit(data, "help_max_per_user_day", 0, HELP_RATE_MAX),
                help_max_per_address_hour=_help_limit(data, "help_max_per_address_hour", 0, HELP_RATE_MAX),
                help_expiry_days=_help_limit(data, "help_expiry_days", 1, HELP_EXPIRY_MAX_DAYS),
                # Strict value, lenient record: anything but a well-formed spec is "nobody" (status
                # says so), never a reason to read the whole record as damaged.
                help_admins=data["help_admins"] if help_admins_valid(data.get("help_admins")) else "",
                previous_direct_grant_flow=_opt_str(data.get("previous_direct_grant_flow")),
                direct_grant_source_digest=str(data.get("direct_grant_source_digest", "")),
                client_overrides=_overrides(data.get("client_overrides")),
                idp_flows=_idp_flows(data.get("idp_flows")),
                trusted_idps=trusted_idps(data.get("trusted_idps")),
                kerberos="trusted" if data.get("kerberos") == "trusted" else "second-factor",
                expiry_task="off" if data.get("expiry_task") == "off" else "on",
                bypass_kinds=bypass_kinds_of(data)[0],
                bypass_default=bypass_kinds_of(data)[1],
            )
        except (ValueError, KeyError, TypeError):
            return None


_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_CHOICES = (("backup_codes", "required", BACKUP_CODES_CHOICES),
            ("record_store", STORE_ATTRIBUTES, (STORE_ATTRIBUTES, STORE_CREDENTIAL)),
            ("decided_by", "sync", ("sync", "provider")))


def parse_strict_time(text: Any) -> datetime | None:
    """The one time format twostep writes (`YYYY-MM-DDTHH:MM:SSZ`, whole string); anything else is None."""
    if not isinstance(text, str) or not _TIME.fullmatch(text) or text.startswith("0000"):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def readable(data: Any) -> bool:
    """The policy record's shape as the provider accepts it; anything else is damaged (fail closed)."""
    if not isinstance(data, dict) or not isinstance(data.get("enforcement"), dict):
        return False
    enf = data["enforcement"]
    grace, groups = enf.get("grace_days"), enf.get("groups", [])
    max_s, since = data.get("bypass_max_s", DEFAULT_BYPASS_MAX_S), data.get("enforce_since", "")
    return (enf.get("mode") in ("all", "groups", "none") and _is_int(grace) and 0 <= grace <= 365
            and isinstance(groups, list) and all(isinstance(g, str) for g in groups)
            and _is_int(max_s) and max_s >= 0
            and isinstance(since, str) and (since == "" or parse_strict_time(since) is not None)
            and all(data.get(k, absent) in allowed for k, absent, allowed in _CHOICES))


def trusted_idps(value: Any) -> tuple[str, ...]:
    """`trusted_idps` as the provider reads it: a list of non-blank strings, anything else trusts none."""
    if not isinstance(value, list) or not all(isinstance(a, str) and a.strip() for a in value):
        return ()
    return tuple(value)


def help_admins_valid(value: Any) -> bool:
    """`group:<path>` or `role:<realm role>` with a non-blank name, or empty (nobody)."""
    if not isinstance(value, str):
        return False
    if value == "":
        return True
    kind, sep, name = value.partition(":")
    return bool(sep) and kind in HELP_ADMIN_KINDS and bool(name.strip()) and name == name.strip()


def parse_help_admins(spec: str) -> str:
    """What `setup --help-admins` takes: group:PATH, role:NAME or none (empty)."""
    text = spec.strip()
    if text == "none":
        return ""
    if not help_admins_valid(text):
        raise InvalidInput(f"--help-admins takes group:PATH, role:NAME or none, got {spec!r}")
    return text


OVERRIDE_KINDS = ("browser", "direct_grant")


def _overrides(value: Any) -> tuple[tuple[str, str, str], ...]:
    """Lenient: entries that are not {clientId: {browser|direct_grant: alias}} are left out."""
    if not isinstance(value, dict):
        return ()
    out = [(c, k, a) for c, kinds in value.items() if isinstance(c, str) and isinstance(kinds, dict)
           for k, a in kinds.items() if k in OVERRIDE_KINDS and isinstance(a, str) and a]
    return tuple(sorted(out))


def _idp_flows(value: Any) -> tuple[tuple[str, str, str], ...]:
    if not isinstance(value, dict):
        return ()
    out = [(a, str(v.get("first") or ""), str(v.get("post") or "")) for a, v in value.items()
           if isinstance(a, str) and isinstance(v, dict)]
    return tuple(sorted(out))


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _help_rate(value: Any) -> int:
    return value if _is_int(value) and 0 <= value <= HELP_RATE_MAX else 20


HELP_RATE_MAX = 100_000
HELP_EXPIRY_MAX_DAYS = 365
HELP_LIMIT_DEFAULTS = {"help_max_per_user_day": 3, "help_max_per_address_hour": 5, "help_expiry_days": 7}


def _help_limit(data: dict[str, Any], key: str, low: int, high: int) -> int:
    """As the provider reads it (HelpRequestLimits.fromPolicy): an integer in range, else the default."""
    value: Any = data.get(key)
    if _is_int(value) and low <= int(value) <= high:
        return int(value)
    return HELP_LIMIT_DEFAULTS[key]


def _choice(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {allowed}")
    return str(value)


def utc_iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
