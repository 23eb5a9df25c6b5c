"""Python reads the kinds of bypass as the provider does (BypassKindsTest, AccessPassTest): the policy's
`bypass_kinds` / `bypass_default`, the record's `kind` / `pass_use` / `pass_used`, and the pass's hash as
docs/formats.md defines it."""

from __future__ import annotations

import json

import pytest
from twostep.bypass_kinds import bypass_kinds_of, choose_kind, grant_default, parse_bypass_kinds
from twostep.errors import InvalidInput
from twostep.policy import RealmPolicy
from twostep.realm_policy import policy_of
from twostep.records import record_from_fields

from tests.support.access_pass import secret_data

BASE = {"backup_codes": "required", "bypass_max_s": 604800, "decided_by": "provider", "record_store": "credential",
        "enforce_since": "2026-01-01T00:00:00Z", "enforcement": {"grace_days": 0, "groups": [], "mode": "all"}}


@pytest.mark.parametrize(("extra", "expect"), [
    ({}, (("pass", "password"), "pass")),
    ({"bypass_kinds": ["password", "pass"]}, (("pass", "password"), "pass")),
    ({"bypass_kinds": ["password"]}, (("password",), "password")),
    ({"bypass_default": "password"}, (("pass", "password"), "password")),
    ({"bypass_default": "sms"}, (("pass", "password"), "pass")),
    ({"bypass_kinds": ["pass"]}, (("pass",), "pass")),
    ({"bypass_kinds": ["password", "pass"], "bypass_default": "pass"}, (("pass", "password"), "pass")),
    ({"bypass_kinds": ["password"], "bypass_default": "pass"}, (("password",), "password")),
    ({"bypass_kinds": []}, (("pass",), "pass")),
    ({"bypass_kinds": "pass,password"}, (("pass",), "pass")),
    ({"bypass_kinds": ["pass", "sms"]}, (("pass",), "pass")),
    ({"bypass_kinds": [1]}, (("pass",), "pass")),
])
def test_policy_kinds_as_the_provider_reads_them(extra: dict[str, object], expect: tuple[object, str]) -> None:
    assert bypass_kinds_of({**BASE, **extra}) == expect
    policy = RealmPolicy.from_json(json.dumps({**BASE, **extra}))
    assert policy is not None and (policy.bypass_kinds, policy.bypass_default) == expect


def test_a_damaged_policy_allows_the_pass_only_and_setup_writes_nothing_for_the_defaults() -> None:
    reading = policy_of({"attributes": {"twostep.policy": "{broken"}})
    policy = reading.policy
    assert not reading.intact and (policy.bypass_kinds, policy.bypass_default) == (("pass",), "pass")
    assert "bypass_kinds" not in json.loads(RealmPolicy().to_json()), "records before the keys stay byte-identical"
    assert (RealmPolicy().bypass_kinds, RealmPolicy().bypass_default) == (("pass", "password"), "pass")
    back = RealmPolicy.from_json(RealmPolicy().to_json())
    assert back is not None and back.bypass_default == "pass", "no keys: the access pass by default"
    kept = json.loads(RealmPolicy(bypass_default="password").to_json())
    assert kept["bypass_default"] == "password", "a realm that wants the password by default says so"
    written = json.loads(RealmPolicy(bypass_kinds=("pass",), bypass_default="pass").to_json())
    assert (written["bypass_kinds"], written["bypass_default"]) == (["pass"], "pass")


def test_the_cli_choice() -> None:
    assert parse_bypass_kinds("password, pass") == ("pass", "password")
    with pytest.raises(InvalidInput):
        parse_bypass_kinds("sms")
    assert choose_kind(("pass", "password"), "password", None, False) == "password"
    assert choose_kind(("pass", "password"), "pass", None, False) == "pass"
    assert grant_default("pass", provider_mode=True) == "pass"
    assert grant_default("pass", provider_mode=False) == "password", "fallback mode: no provider, no pass"
    assert choose_kind(("pass", "password"), "password", "once", False) == "pass"
    with pytest.raises(InvalidInput, match="forbids password-only"):
        choose_kind(("pass",), "pass", None, True)
    with pytest.raises(InvalidInput, match="not both"):
        choose_kind(("pass", "password"), "pass", "once", True)


def test_the_record_kinds_as_the_provider_reads_them() -> None:
    def rec(**kw: str) -> tuple[str, bool]:
        r = record_from_fields({"id": "u"}, kw)
        return r.kind_label, r.pass_live

    assert rec() == ("password", False)
    assert rec(kind="pass", pass_use="once") == ("pass once", True)
    assert rec(kind="pass", pass_use="once", pass_used="1") == ("pass once", False)
    assert rec(kind="pass", pass_use="once", pass_used="00") == ("pass once", False), "unreadable: used"
    assert rec(kind="pass", pass_use="multi", pass_used="5") == ("pass multi", True)


def test_the_hash_is_the_written_definition() -> None:
    """The example of docs/formats.md, also in AccessPassTest."""
    assert json.loads(secret_data("K7QF-2M9X-PT4A-WC8E", "0011"))["hash"] == (
        "9a42c02845f3d9f86670a5440e41ddad99ebdff3e9746d9f0b7f8ee71d66a958")
