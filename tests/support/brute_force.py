"""Waiting for Keycloak's brute-force protector, which records a failed sign-in off the request thread.

Keycloak 26's `DefaultBlockingBruteForceProtector` hands every failure to an executor and treats
the user as "login in progress" (temporarily disabled, every credential refused without a word)
until that job has committed. The job also stamps the failure with its own clock, which is what the
quick-login check (`quickLoginCheckMilliSeconds`) compares. So a test that types the next attempt
right after a failure races that job: on a busy machine the right code is refused. The test waits
for the failure to be recorded (observable through the admin API) instead of for a fixed time.
"""

from __future__ import annotations

import time
from typing import Any


def failures(admin: Any, realm: str, user_id: str) -> int:
    """The user's failure count as Keycloak's attack detection has recorded it so far."""
    data = admin.get(f"/{realm}/attack-detection/brute-force/users/{user_id}") or {}
    return int(data.get("numFailures") or 0)


def wait_recorded(admin: Any, realm: str, user_id: str, count: int, deadline_s: float = 30.0) -> None:
    """Until Keycloak's record of the user's failures is exactly `count` (its job for the last
    attempt committed; a successful sign-in's job sets it back to 0)."""
    end = time.monotonic() + deadline_s
    seen = failures(admin, realm, user_id)
    while seen != count:
        assert time.monotonic() < end, f"Keycloak recorded {seen} failed attempts, not {count}, in {deadline_s:.0f} s"
        time.sleep(0.05)
        seen = failures(admin, realm, user_id)
