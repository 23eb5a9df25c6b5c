"""Python reads the stored formats exactly as the provider does: the same table of cases
(docs/formats/decision-vectors.json) runs here and in the provider's JUnit test (DecisionTest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from twostep.policy import RealmPolicy
from twostep.provider_decision import Door, SignInPolicy, decide
from twostep.records import parse_time

VECTORS = json.loads((Path(__file__).resolve().parent.parent / "docs" / "formats" / "decision-vectors.json")
                     .read_text())


def test_the_table_is_substantial() -> None:
    assert len(VECTORS) >= 30
    assert {v["expect"] for v in VECTORS} == {"BYPASS", "REQUIRED", "ENROLL", "GRACE", "NOT_IN_SCOPE", "TRUSTED_IDP",
                                              "REFUSED", "PASS"}


@pytest.mark.parametrize("case", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(case: dict[str, Any]) -> None:
    now = parse_time(case["now"])
    created = None if case["created"] is None else parse_time(case["created"])
    assert now is not None and (created is not None or case["created"] is None)
    d = case.get("door") or {}
    door = Door(d.get("idp"), bool(d.get("direct_grant")), bool(d.get("has_otp")))
    outcome, actions = decide(now, SignInPolicy.parse(case["policy"]), created, case["in_scope"], case["record"],
                              case["has_device"], case["has_codes"], door)
    assert (outcome, actions) == (case["expect"], case["actions"])


@pytest.mark.parametrize("case", [v for v in VECTORS if v["policy"] is not None],
                         ids=[v["name"] for v in VECTORS if v["policy"] is not None])
def test_setup_and_sync_read_the_policy_as_strictly(case: dict[str, Any]) -> None:
    """The policy reader the CLI and sync use finds a record readable exactly when the provider does."""
    assert (RealmPolicy.from_json(case["policy"]) is not None) == SignInPolicy.parse(case["policy"]).intact
