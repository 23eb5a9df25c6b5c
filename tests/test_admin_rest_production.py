"""The admin extension's per-user serialisation on PostgreSQL with two production-mode nodes: grants to
one user sent at once through both nodes give one 200, the others 409, one record, one index entry,
one admin event (the row lock is in the shared database, not in a node). Run: `pytest -m production`."""

from __future__ import annotations

import threading

import pytest
import requests

from tests.conftest import Admin, Keycloak, MakeUser, Twostep, User, lock_roles
from tests.support.bypass_helpers import record_fields
from tests.support.cluster import Cluster
from tests.support.personas import HELPDESK_ROLES, call, give_roles, personal_token
from tests.test_admin_rest import _events, _index_entries

pytestmark = pytest.mark.production


@pytest.fixture(scope="session")
def keycloak(cluster: Cluster) -> Keycloak:
    return cluster.nodes[0]


@pytest.fixture(scope="session")
def admin(keycloak: Keycloak) -> Admin:
    return keycloak.admin()


def test_grants_at_once_through_both_nodes_serialise_on_postgresql(
        cluster: Cluster, keycloak: Keycloak, admin: Admin, realm: str, make_user: MakeUser, twostep: Twostep) -> None:
    # A day's grace: hilde (no device yet) signs in on each node with her password; each node accepts
    # only tokens it issued under its own URL (the issuer), so she signs in once per node.
    r = twostep("setup", "--no-service-client", "--backup-codes", "offered", "--grace-days", "1")
    assert r.code == 0, r.err
    hilde: User = make_user("hilde")
    give_roles(admin, realm, hilde.id, HELPDESK_ROLES)
    carol: User = make_user("carol", otp=True)
    tokens = [personal_token(node.url, realm, hilde) for node in cluster.nodes]
    results: list[requests.Response] = []
    start = threading.Barrier(4)

    def one(i: int) -> None:
        node = cluster.nodes[i % 2]
        start.wait()
        results.append(call(node.url, realm, tokens[i % 2], f"/users/{carol.id}/bypass/grant",
                            {"seconds": 3600 + i * 60, "reason": f"race {i}", "by": "hilde"}))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409], [(r.status_code, r.text[:200])
                                                                            for r in results]
    winner = next(r.json() for r in results if r.status_code == 200)
    assert record_fields(admin, realm, carol.id)["until"] == winner["until"]
    creds = [c for c in admin.get(f"/{realm}/users/{carol.id}/credentials") if c["type"] == "twostep-bypass"]
    assert _index_entries(admin, realm, carol.id) == [f"{carol.id}.{creds[0]['id']}"]
    assert len(_events(admin, realm, carol.id, "bypass.grant")) == 1
    assert lock_roles(admin, realm) == []
