"""Who must have a second factor, and who must enroll one now."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from .errors import NotFound
from .keycloak_adapter import JSON, KeycloakClient
from .policy import BYPASS_ATTR, BYPASS_VALUE, RealmPolicy, parse_iso

CONFIGURE_TOTP = "CONFIGURE_TOTP"


def scope_groups(kc: KeycloakClient, names: tuple[str, ...]) -> list[JSON]:
    """The named groups and all their subgroups. A named group that is missing is an error:
    silently enforcing on fewer people would ask for less."""
    out: list[JSON] = []
    for name in names:
        group = kc.find_group_by_path(name)
        if group is None:
            raise NotFound(f"enforcement group {name!r} does not exist in realm {kc.realm!r}")
        stack = [group]
        while stack:
            g = stack.pop()
            out.append(g)
            stack.extend(kc.group_children(g["id"]))
    return out


def users_in_scope(kc: KeycloakClient, policy: RealmPolicy, page_size: int = 100) -> Iterator[JSON]:
    """Full representations (they carry `totp` and `requiredActions`), page by page."""
    enf = policy.enforcement
    if enf.mode == "none":
        return
    if enf.mode == "all":
        yield from kc.iter_users(page_size, briefRepresentation="false")
        return
    seen: set[str] = set()
    for group in scope_groups(kc, enf.groups):
        for user in kc.iter_group_members(group["id"], page_size, brief=False):
            if user["id"] not in seen:
                seen.add(user["id"])
                yield user


def user_in_scope(kc: KeycloakClient, user_id: str, policy: RealmPolicy) -> bool:
    """Whether the policy requires a second factor of this one user (a named group or any subgroup)."""
    enf = policy.enforcement
    if enf.mode != "groups":
        return enf.mode == "all"
    wanted = [g.strip("/") for g in enf.groups]
    paths = [str(g.get("path", "")).strip("/") for g in kc.user_groups(user_id)]
    return any(p == w or p.startswith(w + "/") for p in paths for w in wanted)


def is_bypassed(user: JSON) -> bool:
    return BYPASS_VALUE in (user.get("attributes") or {}).get(BYPASS_ATTR, [])


def grace_deadline(user: JSON, policy: RealmPolicy) -> datetime:
    """The end of the user's grace: from their creation or the policy's start, whichever is later. A
    user Keycloak does not store itself (a federated user not imported: id `f:<component>:<name>`)
    is made anew at every read, so its creation time is not kept: the grace starts at enforce_since
    (docs/formats.md, "Doors"), as the provider decides."""
    local = not str(user.get("id", "")).startswith("f:")  # Keycloak's StorageId.isLocalStorage
    created = datetime.fromtimestamp(int(user.get("createdTimestamp") or 0) / 1000 if local else 0).astimezone()
    start = created
    if policy.enforce_since:
        start = max(created, parse_iso(policy.enforce_since))
    return start + timedelta(days=policy.enforcement.grace_days)


def needs_enrollment(user: JSON, policy: RealmPolicy, now: datetime) -> bool:
    """In scope, no OTP device, not bypassed (a bypass means 'not now'), grace over, not yet asked."""
    if user.get("totp") or is_bypassed(user):
        return False
    if CONFIGURE_TOTP in (user.get("requiredActions") or []):
        return False
    return now >= grace_deadline(user, policy)


DEVICE_CREDENTIALS = ("otp", "webauthn")


def has_device(kc: KeycloakClient, user: JSON) -> bool:
    """An OTP app or a security key: either is a second factor, and a user with a key is not made
    to add an app. Full representations carry `totp`; a key needs one credentials read."""
    if user.get("totp"):
        return True
    return any(c.get("type") in DEVICE_CREDENTIALS for c in kc.user_credentials(str(user["id"])))


def require_totp(kc: KeycloakClient, user_id: str) -> bool:
    """Add CONFIGURE_TOTP; fetch-modify-put because a PUT replaces the whole set. False if already there."""
    user = kc.get_user(user_id)
    actions = list(user.get("requiredActions") or [])
    if CONFIGURE_TOTP in actions:
        return False
    user["requiredActions"] = [*actions, CONFIGURE_TOTP]
    kc.update_user(user_id, user)
    return True
