"""A lease lock in Keycloak: grant, extend and revoke of one user's bypass (and, in fallback mode,
its expiry) take it so that exactly one of them acts.

Keycloak has no compare-and-set, but realm role names are unique: creating the role
`twostep-lock-<hash>-<generation>` succeeds for exactly one caller. The lock takes the clock it
compares leases with (`wall`, epoch seconds): the caller's, so that a test or a pass that runs "as of"
another time needs no sleeping.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .errors import Conflict, KeycloakUnavailable, NotFound, TwostepError
from .keycloak_adapter import JSON, KeycloakClient
from .settings import Settings

LOCK_PREFIX = "twostep-lock-"
LOCK_GENERATIONS = 6
# The sweep holds a stale chain only for the moment it takes to delete it.
MIN_SWEEP_LEASE_S = 30.0
Wall = Callable[[], float]


@dataclass
class Lock:
    names: list[str]
    acquired: float
    lease_s: float

    def time_left(self) -> float:
        return self.lease_s - (time.monotonic() - self.acquired)


def lease_seconds(settings: Settings) -> float:
    # A request may be retried (see the adapter): 4 timeouts and a margin bound one decisive write.
    return 4 * settings.timeout + 5


def user_lock_key(user_id: str) -> str:
    """Grant, extend, revoke and expiry of one user's bypass all take this one lock."""
    return f"user|{user_id}"


def acquire_lock(kc: KeycloakClient, key: str, lease_s: float, wall: Wall = time.time) -> Lock | None:
    """Keycloak has no compare-and-set, but realm role names are unique: creating the role
    `twostep-lock-<hash>-<generation>` succeeds for exactly one caller. A lock whose lease is over
    (its holder died or lost Keycloak) is taken over by creating the next generation, which again
    only one caller can do. None: another run holds it."""
    return _acquire(kc, hashlib.sha256(key.encode()).hexdigest()[:24], lease_s, wall)


def _acquire(kc: KeycloakClient, digest: str, lease_s: float, wall: Callable[[], float]) -> Lock | None:
    names: list[str] = []
    for gen in range(1, LOCK_GENERATIONS + 1):
        name = f"{LOCK_PREFIX}{digest}-{gen}"
        names.append(name)
        start = time.monotonic()
        try:
            kc.create_role(name, f"twostep sync lock; lease until {wall() + lease_s:.3f}")
            return Lock(names, start, lease_s)
        except KeycloakUnavailable as outage:
            # Two creates of one name at the same instant: Keycloak on H2 answers the loser with a
            # 500 (the unique constraint), not a 409. When the role now exists, that was a lost race.
            try:
                kc.get_role(name)
            except NotFound:
                raise outage from None
            return None  # taken (or, at worst, ours: its lease runs out and the sweep removes it)
        except Conflict:
            try:
                desc = str(kc.get_role(name).get("description") or "")
            except NotFound:
                return None  # released between our create and read: the holder finished
            if wall() < lease_end(desc):
                return None
    return None


def lease_end(description: str) -> float:
    """The lease end a lock role carries (epoch seconds); 0 when unreadable (a lock no one can
    honour is over)."""
    try:
        return float(description.rsplit(" ", 1)[-1])
    except ValueError:
        return 0.0


def sweep_stale_locks(kc: KeycloakClient, now: datetime) -> list[str]:
    """Remove the lock roles whose lease is over at `now` (a run killed while holding one leaves it
    behind; it would only be taken over the next time that user's bypass changes, and a chain of
    LOCK_GENERATIONS stale ones would block that user for good). The removal follows the lock's own
    rule: a stale chain is taken over (creating the next generation, which only one caller can do)
    and released, so a holder that took it over a moment ago is never robbed. Returns the names removed."""
    chains: dict[str, list[JSON]] = {}
    for role in kc.roles_named(LOCK_PREFIX):
        name = str(role.get("name") or "")
        digest, _, gen = name[len(LOCK_PREFIX):].rpartition("-")
        if name.startswith(LOCK_PREFIX) and digest and gen.isdigit():
            chains.setdefault(digest, []).append(role)
    removed: list[str] = []
    at = now.timestamp()
    for digest, roles in sorted(chains.items()):
        if any(at < lease_end(str(r.get("description") or "")) for r in roles):
            continue  # someone holds it (or took it over): theirs to release
        lock = _acquire(kc, digest, MIN_SWEEP_LEASE_S, lambda: at)
        if lock is not None:
            release_lock(kc, lock)
            found = {str(r.get("name")) for r in roles}
            removed.extend(n for n in lock.names if n in found)  # not the generation the sweep made
        elif len(roles) >= LOCK_GENERATIONS:
            # Every generation stale: no one can take it over any more, so nothing can race this.
            for name in sorted((str(r["name"]) for r in roles), reverse=True):
                try:
                    kc.delete_role(name)
                    removed.append(name)
                except NotFound:
                    pass
    return removed


def release_lock(kc: KeycloakClient, lock: Lock) -> None:
    for name in lock.names:
        try:
            kc.delete_role(name)
        except NotFound:
            pass
        except TwostepError:
            return  # a lease runs out by itself
