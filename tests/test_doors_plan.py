"""The door planners are pure: overrides, identity providers and the policy record's new fields as
values (no Keycloak here)."""

from __future__ import annotations

import json

import pytest
from twostep import client_doors, idp_doors
from twostep.errors import InvalidInput
from twostep.policy import RealmPolicy
from twostep.realm_setup import plan_teardown
from twostep.setup_actions import Kind

OLD_RECORD = ('{"backup_codes":"required","browser_source_digest":"","bypass_max_s":604800,"decided_by":"sync",'
              '"enforce_since":"","enforcement":{"grace_days":0,"groups":[],"mode":"all"},"help_max_per_hour":20,'
              '"help_requests":"off","previous_browser_flow":null,"previous_reset_flow":null,'
              '"record_store":"attributes","reset_source_digest":""}')


def test_records_without_doors_stay_byte_identical_and_new_fields_round_trip() -> None:
    assert RealmPolicy().to_json() == OLD_RECORD, "absent door fields are not written"
    p = RealmPolicy(previous_direct_grant_flow="direct grant", direct_grant_source_digest="ab" * 8,
                    client_overrides=(("api", "direct_grant", "legacy grant"), ("web", "browser", "browser")),
                    idp_flows=(("corp", "first broker login", ""),), trusted_idps=("corp",), kerberos="trusted")
    data = json.loads(p.to_json())
    assert data["client_overrides"] == {"api": {"direct_grant": "legacy grant"}, "web": {"browser": "browser"}}
    assert data["idp_flows"] == {"corp": {"first": "first broker login", "post": ""}}
    assert data["trusted_idps"] == ["corp"] and data["kerberos"] == "trusted"
    assert RealmPolicy.from_json(p.to_json()) == p


@pytest.mark.parametrize("bad", ['"corp"', '[1]', '[""]', '{"corp": true}'])
def test_a_malformed_trust_list_trusts_nobody_and_keeps_the_record_readable(bad: str) -> None:
    text = OLD_RECORD[:-1] + f',"trusted_idps":{bad}}}'
    p = RealmPolicy.from_json(text)
    assert p is not None and p.trusted_idps == ()


def test_trust_is_checked_against_the_realms_providers() -> None:
    idps = [idp_doors.IdpDoor("corp", "first broker login", "", "first broker login", "")]
    current = RealmPolicy(trusted_idps=("corp",))
    assert idp_doors.trusted(None, idps, current) == ("corp",), "no flag: keep the record"
    assert idp_doors.trusted(("none",), idps, current) == ()
    with pytest.raises(InvalidInput, match="no identity provider 'corpp'"):
        idp_doors.trusted(("corpp",), idps, current)


def test_teardown_binds_overrides_and_providers_back_before_deleting_the_copies() -> None:
    policy = RealmPolicy(client_overrides=(("api", "direct_grant", "legacy grant"),),
                         idp_flows=(("corp", "first broker login", ""),))
    realm = {"realm": "acme", "attributes": {"twostep.policy": policy.to_json()}}
    existing = {"legacy grant": "id-legacy", "twostep client direct grant legacy grant": "id-copy",
                "first broker login": "id-fbl", "twostep idp first broker login": "id-fcopy",
                "twostep post broker login": "id-post"}
    clients = [{"id": "u-api", "clientId": "api", "authenticationFlowBindingOverrides": {"direct_grant": "id-copy"}},
               {"id": "u-other", "clientId": "other", "authenticationFlowBindingOverrides": {"browser": "id-legacy"}}]
    idps = [{"alias": "corp", "firstBrokerLoginFlowAlias": "twostep idp first broker login",
             "postBrokerLoginFlowAlias": "twostep post broker login"}]
    actions = plan_teardown(realm, existing, clients, idps)
    kinds = [(a.kind, a.target) for a in actions]
    assert kinds[:2] == [(Kind.BIND_CLIENT_FLOW, "api"), (Kind.BIND_IDP_FLOWS, "corp")]
    assert actions[0].payload == ("u-api", "direct_grant", "legacy grant")
    assert actions[1].payload == ("corp", {"firstBrokerLoginFlowAlias": "first broker login",
                                           "postBrokerLoginFlowAlias": ""})
    deleted = [a.target for a in actions if a.kind is Kind.DELETE_FLOW]
    assert set(deleted) == {"twostep client direct grant legacy grant", "twostep idp first broker login",
                            "twostep post broker login"}
    assert ("other" not in {a.target for a in actions}), "an override that is not ours is left alone"


def test_override_bindings_point_at_the_realms_flow_when_the_source_is_the_same() -> None:
    sources = {"browserFlow": "browser", "directGrantFlow": "direct grant"}
    stock = client_doors.Override("u1", "web", "browser", "browser", "browser")
    own = client_doors.Override("u2", "api", "direct_grant", "legacy grant", "legacy grant")
    done = client_doors.Override("u3", "app", "browser", "twostep browser", "browser")
    actions = client_doors.plan_bindings([stock, own, done], sources)
    assert [a.payload for a in actions] == [("u1", "browser", "twostep browser"),
                                           ("u2", "direct_grant", "twostep client direct grant legacy grant")]
    assert client_doors.copies([stock, own, done], sources) == {("direct_grant", "legacy grant"): ["api"]}
    assert client_doors.plan_bindings(None, sources) == [], "clients not readable: nothing planned"
