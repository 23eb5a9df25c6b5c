"""The lock's one atomic step is creating a uniquely named role. When two runs create the same name at
the same instant, Keycloak on H2 answers the loser with HTTP 500 (its unique constraint) instead of 409:
that is a lost race (busy), not an outage; a 500 with no role behind it still is an outage."""

from __future__ import annotations

from typing import Any

import pytest
from twostep import lock
from twostep.errors import KeycloakUnavailable, NotFound


class RacingKeycloak:
    def __init__(self, role_exists: bool) -> None:
        self.role_exists = role_exists

    def create_role(self, name: str, description: str) -> None:
        raise KeycloakUnavailable(f"create role {name!r}: Keycloak answered HTTP 500 (unknown_error)")

    def get_role(self, name: str) -> dict[str, Any]:
        if not self.role_exists:
            raise NotFound(f"role {name!r}: not found")
        return {"name": name, "description": "twostep sync lock; lease until 99999999999.000"}


def test_a_500_for_a_role_that_now_exists_is_a_lost_race() -> None:
    assert lock._acquire(RacingKeycloak(True), "d" * 24, 30.0, lambda: 1000.0) is None  # type: ignore[arg-type]


def test_a_500_without_a_role_is_an_outage() -> None:
    with pytest.raises(KeycloakUnavailable):
        lock._acquire(RacingKeycloak(False), "d" * 24, 30.0, lambda: 1000.0)  # type: ignore[arg-type]
